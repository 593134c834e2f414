"""The C reference device's link, on every device (the host build on a pty, C on QEMU
microbit and mps2), driven by the project's own host, :class:`hal.serial.SerialBoard`:
the handshake and HELLO, reboots, many requests in one session (through a clean line and
through a damaging one), an idle link, and what host silence does to the outputs.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable

import pytest

from boards import BoardConfig
from hal import ResetCause, Scheduler, WallClock
from hal.serial import Event, PortTransport, PrinterLinkError, SerialBoard, Transport
from tests.mcu._mcu import DEVICE_KINDS, McuDevice, build, serial_board

S = 1_000_000_000




def _device_stats(board: SerialBoard) -> dict[str, int]:
    stats = board.query("device.stats", timeout_s=5.0)
    assert isinstance(stats, dict)
    return stats


# -- the handshake ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", DEVICE_KINDS)
def test_the_link_comes_up_within_2_s_of_launch_with_a_valid_hello(
    kind: str, devkit: BoardConfig
) -> None:
    build(kind)  # not timed
    started = time.monotonic()
    with McuDevice(kind) as device, serial_board(device, devkit, open_timeout_s=2.0) as board:
        took_s = time.monotonic() - started
        hello = board.hello
    assert took_s < 2.0
    assert hello is not None
    assert hello.version == 0x10
    assert str(hello.role) == "device"
    assert hello.board == "devkit"
    assert hello.device_id.startswith("printer-mcu-")
    assert "plant" in hello.capabilities and "sim" not in hello.capabilities
    assert hello.max_payload >= 512 and 1 <= hello.window <= 32767
    assert hello.dead_after_ns >= round(devkit.serial.link_dead_ms * 1_000_000)
    assert 0 < hello.session < 1 << 32 and 0 <= hello.boot_nonce < 1 << 64


def test_the_host_build_serves_a_tcp_port_too(devkit: BoardConfig) -> None:
    with McuDevice("host-tcp") as device, serial_board(device, devkit) as board:
        assert device.url.startswith("socket://127.0.0.1:")
        assert board.query("board.snapshot", timeout_s=2.0)["reset_cause"] == "power_on"
    with McuDevice("host-tcp") as device:
        with serial_board(device, devkit) as board:  # one client, then the next
            board.query("analog.read", {"channel": "fuser_c"}, timeout_s=2.0)
        with serial_board(device, devkit) as board:
            board.query("analog.read", {"channel": "fuser_c"}, timeout_s=2.0)


def test_boot_nonces_differ_across_launches(mcu_device: McuDevice, devkit: BoardConfig) -> None:
    nonces = []
    with serial_board(mcu_device, devkit) as board:
        assert board.hello is not None
        nonces.append(board.hello.boot_nonce)
    with McuDevice(mcu_device.kind) as again, serial_board(again, devkit) as board:
        assert board.hello is not None
        nonces.append(board.hello.boot_nonce)
    assert nonces[0] != nonces[1]


def test_board_reset_reboots_with_a_new_nonce_and_cause_software(
    mcu_device: McuDevice, devkit: BoardConfig
) -> None:
    with serial_board(mcu_device, devkit) as board:
        assert board.hello is not None
        first = board.hello.boot_nonce
        events: list[Event] = []
        board.add_event_listener(lambda event, _t_ns: events.append(event))
        with contextlib.suppress(PrinterLinkError):
            board.query("board.reset", timeout_s=2.0)  # answered first; it may race the reboot

        def rebooted() -> bool:
            return board.synced and board.hello is not None and board.hello.boot_nonce != first

        assert board.scheduler.run_until(rebooted, timeout_ns=5 * S)
        snapshot = board.query("board.snapshot", timeout_s=2.0)
    assert board.reset_cause is ResetCause.SOFTWARE
    assert snapshot["reset_cause"] == "software"
    assert snapshot["resets"] == 1
    assert [e.data for e in events if e.kind == "reset"][-1] == {"cause": "software"}


# -- many requests ---------------------------------------------------------------------


def _ask_many(board: SerialBoard, count: int, timeout_s: float) -> list[int]:
    """Send ``count`` requests at once (the link windows them); return the order in which
    their answers came, failing on any error."""
    answers: list[int] = []
    errors: list[tuple[int, PrinterLinkError]] = []
    channels = ("toner_pct", "fuser_c")
    for i in range(count):
        board.request(
            "analog.read", {"channel": channels[i % 2]},
            on_result=lambda _result, i=i: answers.append(i),  # type: ignore[misc]
            on_error=lambda error, i=i: errors.append((i, error)),  # type: ignore[misc]
        )
    board.scheduler.run_until(lambda: len(answers) + len(errors) >= count,
                              timeout_ns=round(timeout_s * S))
    assert errors == []
    return answers


DEVICES_AND_ASAN = pytest.mark.parametrize("kind", ["host", "host-asan", "microbit", "mps2"])


@DEVICES_AND_ASAN
def test_1000_requests_are_answered_exactly_once_in_order_in_one_session(
    kind: str, devkit: BoardConfig
) -> None:
    with McuDevice(kind) as device, serial_board(device, devkit, analog_poll_s=None) as board:
        answers = _ask_many(board, 1000, timeout_s=120.0)
        assert answers == list(range(1000))
        # Every request of the session (the board's own board.clock too) answered once.
        host = board.stats
        board.scheduler.run_until(lambda: host.answered >= host.requests, timeout_ns=5 * S)
        assert host.answered == host.requests
        assert board.stats.link_losses == 0 and board.link.stats.sessions == 1
        stats = _device_stats(board)
        assert stats["sessions"] == 1 and stats["sessions_lost"] == 0
        status = device.stop()
    assert status == 0, device.stderr_text()[-3000:]


class _Damage:
    """Damages one byte in ``rate`` of the frames that pass (never making or removing a
    0x00, so frames stay delimited): what a noisy UART does."""

    def __init__(self, rng: random.Random) -> None:
        self.rate = 0.0
        self.damaged = 0
        self._rng = rng
        self._countdown: int | None = None

    def __call__(self, data: bytes) -> bytes:
        out = bytearray(data)
        for i, byte in enumerate(out):
            if byte == 0:
                # The next frame is damaged, at a random byte, with probability ``rate``.
                self._countdown = self._rng.randrange(1, 24) if self._rng.random() < self.rate \
                    else None
                continue
            if self._countdown is not None:
                self._countdown -= 1
                if self._countdown == 0:
                    mask = self._rng.choice([m for m in range(1, 256) if m != byte])
                    out[i] = byte ^ mask
                    self._countdown = None
                    self.damaged += 1
        return bytes(out)


class _DamagingTransport:
    """A :class:`hal.serial.PortTransport` whose bytes are damaged both ways."""

    def __init__(self, inner: PortTransport, to_device: _Damage, to_host: _Damage) -> None:
        self._inner = inner
        self._to_device = to_device
        self._to_host = to_host

    @property
    def name(self) -> str:
        return self._inner.name

    def start(self, on_bytes: Callable[[bytes], None], on_lost: Callable[[Exception], None],
              on_reopened: Callable[[], None]) -> None:
        self._inner.start(lambda data: on_bytes(self._to_host(data)), on_lost, on_reopened)

    def write(self, data: bytes) -> None:
        self._inner.write(self._to_device(data))

    def close(self) -> None:
        self._inner.close()


@DEVICES_AND_ASAN
def test_1000_requests_survive_5_percent_damaged_frames_each_way(
    kind: str, devkit: BoardConfig
) -> None:
    rng = random.Random(18)
    to_device, to_host = _Damage(rng), _Damage(rng)
    scheduler = Scheduler(WallClock())
    with McuDevice(kind) as device:
        transport: Transport = _DamagingTransport(PortTransport(device.url, scheduler),
                                                  to_device, to_host)
        with serial_board(device, devkit, scheduler=scheduler, transport=transport,
                    analog_poll_s=None) as board:
            to_device.rate = to_host.rate = 0.05
            answers = _ask_many(board, 1000, timeout_s=240.0)
            to_device.rate = to_host.rate = 0.0
            assert answers == list(range(1000))
            assert board.stats.link_losses == 0 and board.link.stats.sessions == 1
            stats = _device_stats(board)
        assert device.stop() == 0, device.stderr_text()[-3000:]
    assert to_device.damaged > 0 and to_host.damaged > 0
    host = board.link.stats
    assert host.retransmitted > 0 and host.corrupt > 0
    assert stats["corrupt"] > 0 and stats["retransmitted"] > 0 and stats["sessions"] == 1


# -- liveness ---------------------------------------------------------------------------


def test_an_idle_link_is_held_by_heartbeats(mcu_device: McuDevice, devkit: BoardConfig) -> None:
    with serial_board(mcu_device, devkit, analog_poll_s=None) as board:
        assert board.hello is not None
        dead_after_s = board.hello.dead_after_ns / S
        before = _device_stats(board)
        board.scheduler.run_until(lambda: False, timeout_ns=round(3 * dead_after_s * S))
        after = _device_stats(board)
        assert board.stats.link_losses == 0 and board.link.stats.sessions == 1
        assert board.link.stats.heartbeats_sent > 0
    assert after["sessions"] == before["sessions"] == 1
    assert after["sessions_lost"] == 0
    # Only heartbeats (and the two stats requests) crossed the line meanwhile.
    assert after["frames_received"] - before["frames_received"] >= 3


def test_host_silence_ends_the_session_and_makes_the_outputs_safe(
    mcu_device: McuDevice, devkit: BoardConfig
) -> None:
    """docs/protocol.md: a device MUST turn the outputs with a safe state off when its end
    of the link goes down. Heater, motor and laser go off — on the pins, not only in the
    snapshot: the plant's fuser cools, and a sheet fed after the host returns is not
    imaged (the laser is dark) — while the panel's lamps stay as they were."""
    commanded = ("heater", "motor", "laser", "led_ready")
    hot_c = 150.0
    with serial_board(mcu_device, devkit) as board:
        assert board.hello is not None
        boot = board.hello.boot_nonce
        dead_after_s = board.hello.dead_after_ns / S
        for output in commanded:
            board.query("output.set", {"output": output, "on": True}, timeout_s=2.0)
        before = board.query("board.snapshot", timeout_s=2.0)

        def hot() -> bool:
            return bool(board.query("analog.read", {"channel": "fuser_c"},
                                    timeout_s=2.0)["value"] >= hot_c)

        assert board.scheduler.run_until(hot, timeout_ns=5 * S)
    assert all(before["outputs"][name] for name in commanded)
    time.sleep(dead_after_s * 1.5)  # the host is gone: the device hears nothing
    imaging: list[Event] = []
    with serial_board(mcu_device, devkit) as board:
        assert board.hello is not None and board.hello.boot_nonce == boot  # no reboot
        after = board.query("board.snapshot", timeout_s=2.0)
        stats = _device_stats(board)
        board.add_event_listener(
            lambda event, _t_ns: imaging.append(event) if event.kind == "imaging" else None)
        board.query("output.set", {"output": "motor", "on": True}, timeout_s=2.0)
        board.query("imaging.submit", {"handle": 1, "job": 1, "page": 1, "coverage_pct": 5.0},
                    timeout_s=2.0)
        board.query("pickup.pulse", timeout_s=2.0)
        assert board.scheduler.run_until(lambda: bool(imaging), timeout_ns=5 * S)
        board.query("output.set", {"output": "motor", "on": False}, timeout_s=2.0)
    assert not after["outputs"]["heater"]
    assert not after["outputs"]["motor"]
    assert not after["outputs"]["laser"]
    assert after["outputs"]["led_ready"]  # the panel's lamps are not a hazard
    assert after["analog"]["fuser_c"] < hot_c  # the element cooled: its power was cut
    assert imaging[0].data["state"] == "failed"
    assert "laser off" in imaging[0].data["error"]
    assert stats["sessions_lost"] >= 1


def test_the_device_clock_keeps_wall_time(mcu_device: McuDevice, devkit: BoardConfig) -> None:
    with serial_board(mcu_device, devkit) as board:
        first_ns = board.query("board.snapshot", timeout_s=2.0)["t_ns"]
        host_first = time.monotonic_ns()
        board.scheduler.run_until(lambda: False, timeout_ns=1 * S)
        last_ns = board.query("board.snapshot", timeout_s=2.0)["t_ns"]
        host_elapsed_ns = time.monotonic_ns() - host_first
    # The answers' own latency is in both; a few milliseconds either way.
    assert abs((last_ns - first_ns) - host_elapsed_ns) < 50_000_000


def test_the_watchdog_resets_the_device_when_the_kicks_stop(
    mcu_device: McuDevice, devkit: BoardConfig
) -> None:
    with serial_board(mcu_device, devkit) as board:
        assert board.hello is not None
        first = board.hello.boot_nonce
        board.query("watchdog.kick", timeout_s=2.0)  # counting from now; no kick follows

        def rebooted() -> bool:
            return board.synced and board.hello is not None and board.hello.boot_nonce != first

        timeout_s = devkit.engine.watchdog_timeout_ms / 1000 + 3.0
        assert board.scheduler.run_until(rebooted, timeout_ns=round(timeout_s * S))
        snapshot = board.query("board.snapshot", timeout_s=2.0)
    assert board.reset_cause is ResetCause.WATCHDOG
    assert snapshot["reset_cause"] == "watchdog"
