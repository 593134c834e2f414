"""SerialBoard (hal/serial/_board.py) against the virtual device
(emulator/device/_virtual_device.py),
both on one virtual-time scheduler, joined by an in-memory serial line with latency and
faults. Deterministic and fast: nothing here touches a port or a thread, except the few
tests at the end that open real pyserial URLs (loop://, a missing device, a closed TCP
port) to check the errors.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from boards import BoardConfig, load_board
from emulator.board import EmulatedBoard
from emulator.device import VirtualDevice
from emulator.run import JobSpec, Outcome, PrintRun
from hal import (
    AnalogChannel,
    Board,
    Button,
    Crossing,
    DigitalInput,
    FaultInjector,
    ImagePage,
    IoState,
    IrqEvent,
    LinkChange,
    Output,
    ResetCause,
    Scheduler,
    WallClock,
    WindowCrossing,
)
from hal.serial import (
    BadArgument,
    BoardMismatch,
    DeviceBusy,
    DeviceRejected,
    ErrorCode,
    IncompatiblePeer,
    InvalidState,
    NoDeviceAnswer,
    PortUnavailable,
    PrinterLinkError,
    SerialBoard,
    UnknownCommand,
    rejection_for,
)

MS = 1_000_000
S = 1_000_000_000
DEVKIT = load_board("devkit")


class Line:
    """Both directions of a serial line, in the scheduler's (virtual) time.

    ``cut`` loses every byte silently (a cable pulled with nobody noticing);
    :meth:`disconnect`/:meth:`reconnect` are a transport both ends see go (a socket
    closed, a USB adapter unplugged). ``bit_flip`` (per byte) and ``drop_frame`` (per
    write) damage the host→device and device→host bytes from a seeded RNG.
    """

    name = "mem://line"

    def __init__(self, scheduler: Scheduler, latency_ns: int = 200_000, seed: int = 0) -> None:
        self.scheduler = scheduler
        self.latency_ns = latency_ns
        self.rng = random.Random(seed)
        self.cut = False
        self.bit_flip = 0.0
        self.drop_frame = 0.0
        self.device: VirtualDevice | None = None
        self.bytes_to_device = 0
        self.bytes_to_host = 0
        self._on_bytes: Callable[[bytes], None] | None = None
        self._on_lost: Callable[[Exception], None] | None = None
        self._on_reopened: Callable[[], None] | None = None

    def attach(self, device: VirtualDevice) -> None:
        self.device = device
        device.connection_made(self._to_host)

    # -- the host's Transport --------------------------------------------------------

    def start(self, on_bytes: Callable[[bytes], None], on_lost: Callable[[Exception], None],
              on_reopened: Callable[[], None]) -> None:
        self._on_bytes, self._on_lost, self._on_reopened = on_bytes, on_lost, on_reopened

    def write(self, data: bytes) -> None:
        data = self._damage(data)
        if data:
            self.bytes_to_device += len(data)
            device = self.device
            if device is not None:
                self.scheduler.call_later(self.latency_ns, lambda: device.receive(data))

    def close(self) -> None:
        self._on_bytes = None

    # -- the device's writer -----------------------------------------------------------

    def _to_host(self, data: bytes) -> object:
        data = self._damage(data)
        if data:
            self.bytes_to_host += len(data)
            self.scheduler.call_later(self.latency_ns, lambda: self._deliver(data))
        return None

    def _deliver(self, data: bytes) -> None:
        if self._on_bytes is not None:
            self._on_bytes(data)

    def _damage(self, data: bytes) -> bytes:
        if self.cut:
            return b""
        if self.drop_frame and self.rng.random() < self.drop_frame:
            return b""
        if self.bit_flip:
            out = bytearray(data)
            for i in range(len(out)):
                if self.rng.random() < self.bit_flip:
                    out[i] ^= 1 << self.rng.randrange(8)
            data = bytes(out)
        return data

    # -- a transport both ends see fail ------------------------------------------------

    def disconnect(self) -> None:
        self.cut = True
        assert self.device is not None and self._on_lost is not None
        self.device.connection_lost()
        self._on_lost(ConnectionError("unplugged"))

    def reconnect(self) -> None:
        self.cut = False
        assert self.device is not None and self._on_reopened is not None
        self.device.connection_made(self._to_host)
        self._on_reopened()


class Rig:
    """A virtual device (an EmulatedBoard behind the device end of the link) and a
    SerialBoard on the host end, on one virtual scheduler. ``raises`` records every line
    the host board raises: ``(t_ns, line name, value)``."""

    def __init__(self, config: BoardConfig = DEVKIT, *, host_config: BoardConfig | None = None,
                 use_host_config: bool = True, sim: bool = True, strict: bool = True,
                 seed: int = 1, **board_kwargs: Any) -> None:
        self.scheduler = Scheduler()
        self.device_board = EmulatedBoard(config, self.scheduler, seed=seed)
        self.device = VirtualDevice(self.device_board, sim=sim, rng=random.Random(seed))
        self.line = Line(self.scheduler, seed=seed)
        self.line.attach(self.device)
        cfg = (host_config or config) if use_host_config else None
        self.board = SerialBoard(self.line.name, cfg, self.scheduler, transport=self.line,
                                 strict=strict, **board_kwargs)
        self.raises: list[tuple[int, str, object]] = []
        self.board.irq.add_listener(self._on_irq)

    def _on_irq(self, kind: str, event: IrqEvent) -> None:
        if kind == "raise":
            self.raises.append((event.t_ns, event.name, event.value))

    def raised(self, name: str) -> list[object]:
        return [value for _, line, value in self.raises if line == name]

    @property
    def now(self) -> int:
        return self.scheduler.now_ns

    def run_for(self, ns: int) -> None:
        self.scheduler.run_until(self.scheduler.now_ns + ns)

    def run_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        reached = self.scheduler.run_until(predicate, timeout_ns=round(timeout_s * S))
        assert reached, f"not reached within {timeout_s} s (t={self.now / S:.3f} s)"

    def settle(self) -> None:
        """Long enough for any request and its answer to cross the line."""
        self.run_for(20 * MS)


@pytest.fixture
def rig() -> Rig:
    return Rig()


# -- opening ------------------------------------------------------------------------------


def test_opens_synchronised_with_the_devices_state(rig: Rig) -> None:
    board, device_board = rig.board, rig.device_board
    assert isinstance(board, Board)
    assert board.synced
    assert board.config.name == "devkit"
    assert board.reset_cause is ResetCause.POWER_ON
    assert board.capabilities == frozenset({"faults", "remote", "regulator"})
    assert isinstance(board.faults, FaultInjector)
    for pin in DigitalInput:
        assert board.read_input(pin) == device_board.read_input(pin), pin
    assert board.read_input(DigitalInput.PAPER_PRESENT)
    assert board.read_analog(AnalogChannel.TONER_PCT) == pytest.approx(
        device_board.toner_level_pct, abs=1.0)
    assert board.read_analog(AnalogChannel.FUSER_C) == pytest.approx(
        DEVKIT.fuser.ambient_c, abs=2.0)
    assert not any(board.output(o) for o in Output)
    assert board.hello is not None and board.hello.board == "devkit"
    assert rig.now < 10 * MS  # a handshake and one snapshot: a few line latencies


def test_without_a_board_file_the_devices_own_is_loaded() -> None:
    rig = Rig(use_host_config=False)
    assert rig.board.config.name == "devkit"
    assert rig.board.irq.line("link").name == "link"


def test_a_device_of_another_board_is_refused_naming_both() -> None:
    with pytest.raises(BoardMismatch) as info:
        Rig(DEVKIT, host_config=load_board("lp-2000"))
    assert "'devkit'" in str(info.value) and "'lp-2000'" in str(info.value)
    assert isinstance(info.value, IncompatiblePeer)


def test_silence_on_the_line_is_a_bounded_error() -> None:
    scheduler = Scheduler()
    line = Line(scheduler)  # nobody at the other end
    with pytest.raises(NoDeviceAnswer) as info:
        SerialBoard("mem://nobody", DEVKIT, scheduler, transport=line, open_timeout_s=1.5)
    assert "mem://nobody" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    assert scheduler.now_ns == pytest.approx(1.5 * S, abs=1 * MS)


def test_a_device_without_sim_offers_no_faults() -> None:
    rig = Rig(sim=False)
    assert rig.board.faults is None
    assert rig.board.capabilities == frozenset({"remote", "regulator"})
    assert rig.board.observe() is None


# -- outputs, inputs, analog, display --------------------------------------------------------


def test_outputs_reach_the_device_in_order_and_read_back(rig: Rig) -> None:
    board = rig.board
    for output in Output:
        board.set_output(output, True)
        assert board.output(output)
    board.set_output(Output.LED_TONER, False)
    rig.settle()
    expected = {o: o is not Output.LED_TONER for o in Output}
    assert rig.device_board.outputs == expected
    assert {o: board.output(o) for o in Output} == expected
    assert rig.board.query("board.snapshot")["outputs"] == {str(o): v for o, v in expected.items()}


def test_the_display_is_cut_at_sixteen_columns(rig: Rig) -> None:
    rig.board.show("0123456789abcdefXYZ", "ready")
    rig.settle()
    assert rig.device_board.display == ("0123456789abcdef", "ready")
    assert rig.board.display == ("0123456789abcdef", "ready")


def test_a_pickup_pulse_takes_a_sheet(rig: Rig) -> None:
    before = rig.device_board.tray_sheets
    rig.board.pulse_pickup()
    rig.settle()
    assert rig.device_board.sheets_picked == 1
    assert rig.device_board.tray_sheets == before - 1


def test_input_edges_raise_their_lines_with_the_new_level(rig: Rig) -> None:
    faults = rig.board.faults
    assert faults is not None
    faults.set_cover(True)
    rig.run_until(lambda: rig.board.read_input(DigitalInput.COVER_OPEN))
    faults.press(Button.CANCEL)
    faults.set_cover(False)
    rig.run_until(lambda: len(rig.raised("cover_open")) == 2)
    rig.run_until(lambda: len(rig.raised("button_cancel")) == 2)
    assert rig.raised("cover_open") == [True, False]
    assert rig.raised("button_cancel") == [True, False]
    faults.set_tray(0)
    rig.run_until(lambda: not rig.board.read_input(DigitalInput.PAPER_PRESENT))
    assert rig.raised("paper_present") == [False]


def test_a_window_crossing_raises_its_comparator_line_once(rig: Rig) -> None:
    faults = rig.board.faults
    assert faults is not None
    faults.set_toner_pct(4.0)
    rig.run_until(lambda: rig.board.read_analog(AnalogChannel.TONER_PCT) < 10.0)
    rig.board.set_window(AnalogChannel.TONER_PCT, 10.0, 100.0)
    rig.run_until(lambda: bool(rig.raised("toner")))
    rig.run_for(100 * MS)
    (crossing,) = rig.raised("toner")
    assert isinstance(crossing, WindowCrossing)
    assert crossing.channel is AnalogChannel.TONER_PCT
    assert crossing.crossing is Crossing.BELOW
    assert crossing.reading == pytest.approx(4.0, abs=1.0)
    with pytest.raises(ValueError, match="empty"):
        rig.board.set_window(AnalogChannel.FUSER_C, 10.0, 5.0)


def test_the_fuser_comparator_fires_when_the_heater_warms_it(rig: Rig) -> None:
    rig.board.set_output(Output.HEATER, True)
    rig.board.set_window(AnalogChannel.FUSER_C, -1000.0, DEVKIT.fuser.ready_c)
    rig.run_until(lambda: bool(rig.raised("fuser")), timeout_s=3.0)
    (crossing,) = rig.raised("fuser")
    assert isinstance(crossing, WindowCrossing) and crossing.crossing is Crossing.ABOVE
    # The poll (a channel every 250 ms, in turn) keeps read_analog within a cycle of it.
    before_c = rig.device_board.fuser_temp_c
    rig.run_for(600 * MS)
    reading_c = rig.board.read_analog(AnalogChannel.FUSER_C)
    assert before_c - 3.0 <= reading_c <= rig.device_board.fuser_temp_c + 3.0


# -- imaging --------------------------------------------------------------------------------


def _feed_a_sheet(rig: Rig) -> None:
    rig.board.set_output(Output.MOTOR, True)
    rig.board.pulse_pickup()


def test_an_imaging_request_posts_started_then_completes(rig: Rig) -> None:
    rig.board.set_output(Output.LASER, True)
    handle = rig.board.submit(ImagePage(7, 3, 5.0))
    assert handle.state is IoState.PENDING
    _feed_a_sheet(rig)
    rig.run_until(lambda: handle.done, timeout_s=2.0)
    assert handle.state is IoState.DONE
    assert handle.result == ImagePage(7, 3, 5.0)
    assert [e.kind for e in handle.events] == ["imaging_started"]
    rig.run_until(lambda: rig.device_board.sheets_delivered == 1)
    assert rig.device_board.delivered[0] is not None
    assert rig.device_board.delivered[0][1:] == (7, 3)


def test_an_imaging_request_fails_when_the_laser_is_off(rig: Rig) -> None:
    handle = rig.board.submit(ImagePage(1, 1, 5.0))
    _feed_a_sheet(rig)
    rig.run_until(lambda: handle.done, timeout_s=2.0)
    assert handle.state is IoState.FAILED
    assert handle.error is not None and "laser" in str(handle.error)


def test_cancelling_a_request_cancels_it_on_the_device(rig: Rig) -> None:
    handle = rig.board.submit(ImagePage(1, 1, 5.0))
    rig.settle()
    assert rig.device.pending_handles == [1]
    assert handle.cancel()
    rig.settle()
    assert handle.state is IoState.CANCELLED
    assert rig.device.pending_handles == []


# -- errors ----------------------------------------------------------------------------------


def test_error_answers_map_to_the_documented_exceptions(rig: Rig) -> None:
    with pytest.raises(UnknownCommand) as unknown:
        rig.board.query("no.such.command")
    assert unknown.value.code is ErrorCode.UNKNOWN_COMMAND
    with pytest.raises(BadArgument) as bad:
        rig.board.query("output.set", {"output": "coffee", "on": True})
    assert isinstance(bad.value, DeviceRejected) and isinstance(bad.value, PrinterLinkError)
    assert "coffee" in str(bad.value)
    assert rig.board.query("analog.read", {"channel": "toner_pct"})["value"] > 0


def _refuse_pickups(rig: Rig) -> None:
    def refuse(args: dict[str, Any], rid: int) -> Any:
        raise rejection_for(ErrorCode.INVALID_STATE, "pickup jammed shut")

    rig.device.commands["pickup.pulse"] = refuse


def test_a_refused_firmware_command_is_raised_in_strict_mode(rig: Rig) -> None:
    _refuse_pickups(rig)
    rig.board.pulse_pickup()
    with pytest.raises(InvalidState, match="pickup jammed shut"):
        rig.settle()


def test_a_refused_firmware_command_is_logged_and_counted(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    rig = Rig(strict=False)
    _refuse_pickups(rig)
    with caplog.at_level(logging.ERROR, logger="printer_emu.serial_board"):
        rig.board.pulse_pickup()
        rig.settle()
    assert rig.board.stats.rejected == 1
    assert isinstance(rig.board.last_error, InvalidState)
    assert "pickup.pulse" in rig.board.errors[-1]
    assert any("pickup.pulse" in r.getMessage() for r in caplog.records)


# -- link loss, resync, device reset -----------------------------------------------------------


def test_link_loss_and_resync(rig: Rig) -> None:
    board, line = rig.board, rig.line
    board.set_output(Output.LED_READY, True)
    rig.settle()
    line.cut = True
    rig.run_until(lambda: rig.raised("link") != [], timeout_s=3.0)
    (down,) = rig.raised("link")
    assert isinstance(down, LinkChange) and not down.up and down.reason == "silence"
    assert not board.synced
    # While the link is down: the world changes, the firmware commands things.
    rig.device_board.set_tray(0)
    rig.device_board.set_cover(True)
    board.set_output(Output.LED_ATTENTION, True)
    board.show("offline", "")
    sent = line.bytes_to_device
    line.cut = False
    rig.run_until(lambda: len(rig.raised("link")) == 2, timeout_s=3.0)
    assert line.bytes_to_device > sent
    names = [name for _, name, _ in rig.raises]
    # Every input that changed is raised, then the link comes back up.
    assert names[-3:] == ["paper_present", "cover_open", "link"]
    assert rig.raised("paper_present") == [False] and rig.raised("cover_open") == [True]
    up = rig.raised("link")[-1]
    assert isinstance(up, LinkChange) and up.up
    rig.settle()
    # The device had gone safe; the commanded state is applied again.
    assert rig.device_board.outputs[Output.LED_READY]
    assert rig.device_board.outputs[Output.LED_ATTENTION]
    assert rig.device_board.display == ("offline", "")
    assert board.stats.link_losses == 1 and board.stats.resyncs == 1


def test_an_imaging_request_lost_with_the_link_fails_at_the_resync(rig: Rig) -> None:
    handle = rig.board.submit(ImagePage(1, 1, 5.0))
    rig.settle()
    rig.line.disconnect()
    rig.run_for(50 * MS)
    assert handle.state is IoState.PENDING
    rig.line.reconnect()
    rig.run_until(lambda: handle.done)
    assert handle.state is IoState.FAILED
    assert "link" in str(handle.error)


def test_a_refused_snapshot_is_asked_again(rig: Rig) -> None:
    real = rig.device.commands["board.snapshot"]
    refusals: list[int] = []

    def busy_once(args: dict[str, Any], rid: int) -> Any:
        if not refusals:
            refusals.append(rid)
            raise rejection_for(ErrorCode.BUSY, "busy reading the sensors")
        return real(args, rid)

    rig.device.commands["board.snapshot"] = busy_once
    rig.line.disconnect()
    rig.settle()
    rig.line.reconnect()
    rig.run_until(lambda: rig.board.synced)
    assert len(refusals) == 1
    assert isinstance(rig.board.last_error, DeviceBusy)
    assert rig.raised("link")[-1] == LinkChange(True)


def test_simulation_commands_wait_for_the_link(rig: Rig) -> None:
    faults = rig.board.faults
    assert faults is not None
    rig.line.disconnect()
    rig.settle()
    faults.set_tray(3)
    faults.set_toner_pct(42.0)
    rig.run_for(100 * MS)
    assert rig.device_board.tray_sheets != 3
    rig.line.reconnect()
    rig.run_until(lambda: rig.device_board.tray_sheets == 3)
    assert rig.device_board.toner_level_pct == pytest.approx(42.0)


def test_a_device_reboot_resets_the_board_and_runs_the_reset_handler(rig: Rig) -> None:
    board = rig.board
    causes: list[ResetCause] = []
    board.set_reset_handler(causes.append)
    board.irq.attach("cover_open", lambda e: None)
    board.set_output(Output.LASER, True)
    handle = board.submit(ImagePage(1, 1, 5.0))
    board.kick_watchdog()  # the device's watchdog counts from the first kick
    rig.run_until(lambda: bool(causes), timeout_s=3.0)
    assert causes == [ResetCause.WATCHDOG]
    assert board.reset_cause is ResetCause.WATCHDOG
    assert handle.state is IoState.FAILED and "reset" in str(handle.error)
    assert not any(board.output(o) for o in Output)
    assert board.synced and board.resets == 1
    assert rig.device.boots == 2
    # The host's interrupt controller was reset: ISRs are detached.
    board.faults.set_cover(True)  # type: ignore[union-attr]
    rig.run_until(lambda: board.read_input(DigitalInput.COVER_OPEN))
    rig.settle()
    assert board.irq.spurious >= 1


def test_a_reset_counted_while_away_resets_the_board(rig: Rig) -> None:
    """A device that reset its board without rebooting (same boot nonce) while the link
    was down: its snapshot counts one more reset, with the cause."""
    board = rig.board
    causes: list[ResetCause] = []
    board.set_reset_handler(causes.append)
    real = rig.device.commands["board.snapshot"]

    def one_more_reset(args: dict[str, Any], rid: int) -> Any:
        result = dict(real(args, rid))
        result["resets"] += 1
        result["reset_cause"] = "watchdog"
        return result

    board.set_output(Output.LED_READY, True)
    rig.line.disconnect()
    rig.settle()
    rig.device.commands["board.snapshot"] = one_more_reset
    rig.line.reconnect()
    rig.run_until(lambda: bool(causes))
    assert causes == [ResetCause.WATCHDOG]
    assert board.synced and board.resets == 1
    assert not board.output(Output.LED_READY)
    assert rig.raised("link") == [LinkChange(False, "local_reset")]  # no "up": a reboot


def test_power_cycle_gives_a_fresh_device(rig: Rig) -> None:
    faults = rig.board.faults
    assert faults is not None
    faults.set_tray(2)
    faults.set_toner_pct(3.0)
    faults.set_cover(True)
    rig.board.set_output(Output.MOTOR, True)
    rig.board.pulse_pickup()
    rig.settle()
    rig.board.power_cycle()
    assert rig.device.boots == 2  # sim.power_cycle: the models anew, then a reboot
    assert rig.board.reset_cause is ResetCause.POWER_ON
    observed = rig.board.observe()
    assert observed is not None
    assert observed["tray_sheets"] == DEVKIT.tray.loaded_sheets
    assert observed["toner_pct"] == pytest.approx(100.0)
    assert not rig.board.read_input(DigitalInput.COVER_OPEN)
    assert not rig.board.read_input(DigitalInput.FEED_SENSOR)
    assert rig.device_board.sheets_in_path == 0


# -- the firmware over the line --------------------------------------------------------------


def _job(rig: Rig, pages: int) -> PrintRun:
    run = PrintRun(rig.board, seed=0)
    run.add_job(JobSpec(pages=pages, coverage_pct=5.0))
    return run


def _physical_pages(rig: Rig) -> list[int]:
    return [d[2] for d in rig.device_board.delivered if d is not None]


def test_a_job_over_a_noisy_line_delivers_every_page_once() -> None:
    rig = Rig()
    rig.line.bit_flip = 2e-5
    rig.line.drop_frame = 0.002
    run = _job(rig, 30)
    assert run.run(max_run_ns=60 * S) is Outcome.COMPLETED
    assert [p["page"] for p in run.page_log] == list(range(1, 31))
    assert _physical_pages(rig) == list(range(1, 31))
    stats = rig.board.link.stats
    assert stats.corrupt + stats.out_of_order + stats.retransmitted > 0  # it was noisy


def test_a_disconnect_mid_job_loses_no_page_and_prints_none_twice() -> None:
    rig = Rig()
    run = _job(rig, 20)
    rig.scheduler.call_at(900 * MS, rig.line.disconnect)
    rig.scheduler.call_at(1500 * MS, rig.line.reconnect)
    assert run.run(max_run_ns=60 * S) is Outcome.COMPLETED
    assert [p["page"] for p in run.page_log] == list(range(1, 21))
    assert _physical_pages(rig) == list(range(1, 21))
    kinds = [e["kind"] for e in run.events]
    assert kinds.count("link_down") == 1 and kinds.count("link_up") == 1


# -- tracing and closing -------------------------------------------------------------------------


def test_the_trace_hook_sees_every_frame_both_ways() -> None:
    frames: list[tuple[int, str, str, int, int]] = []
    rig = Rig(trace=lambda *f: frames.append(f))
    rig.board.query("analog.read", {"channel": "fuser_c"})
    tx = [f for f in frames if f[1] == "tx"]
    rx = [f for f in frames if f[1] == "rx"]
    assert tx[0][2] == "HELLO"
    assert {"HELLO_ACK", "RESPONSE", "EVENT"} <= {f[2] for f in rx}
    request = [f for f in tx if f[2] == "REQUEST"][-1]
    response = [f for f in rx if f[2] == "RESPONSE"][-1]
    assert request[4] == response[4] != 0  # the request id ties them together
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(frames))


def test_close_is_idempotent_and_stops_the_timers(rig: Rig) -> None:
    rig.board.close()
    rig.board.close()
    with rig.board:
        pass
    sent = rig.line.bytes_to_device
    rig.run_for(2 * S)
    assert rig.line.bytes_to_device == sent


# -- real pyserial URLs (wall time; each well under a second) ----------------------------------


def test_a_virtual_scheduler_is_refused_for_a_real_port() -> None:
    with pytest.raises(ValueError, match="wall time"):
        SerialBoard("loop://", DEVKIT, Scheduler())


def test_a_missing_device_is_a_clear_error_naming_the_port() -> None:
    start = time.monotonic()
    with pytest.raises(PortUnavailable) as info:
        SerialBoard("/dev/printer-emu-no-such-port", DEVKIT)
    assert "/dev/printer-emu-no-such-port" in str(info.value)
    assert isinstance(info.value, ConnectionError)
    assert time.monotonic() - start < 1.0


def test_a_closed_tcp_port_is_a_clear_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PortUnavailable, match=f"socket://127.0.0.1:{port}"):
        SerialBoard(f"socket://127.0.0.1:{port}", DEVKIT, open_timeout_s=1.0)


def test_a_line_that_echoes_is_refused_at_once() -> None:
    start = time.monotonic()
    with pytest.raises(IncompatiblePeer, match="echoes"):
        SerialBoard("loop://", DEVKIT, Scheduler(WallClock()), open_timeout_s=3.0)
    assert time.monotonic() - start < 1.0


def test_a_silent_port_times_out_within_the_bound() -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"socket://127.0.0.1:{server.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(NoDeviceAnswer, match=url):
            SerialBoard(url, DEVKIT, open_timeout_s=0.5)
        assert time.monotonic() - start < 1.5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux ptys only")
def test_only_a_linux_pty_yields_after_a_write() -> None:
    from hal.serial._transport import is_linux_pty

    master, slave = os.openpty()
    r, w = os.pipe()
    try:
        assert is_linux_pty(slave)
        assert not is_linux_pty(r)
        assert not is_linux_pty(None)
    finally:
        for fd in (master, slave, r, w):
            os.close(fd)
