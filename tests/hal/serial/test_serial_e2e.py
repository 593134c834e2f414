"""End to end: the firmware's jobs over ``printer-emu serve`` (a subprocess) on a pty and
on TCP, in wall time, through a fault-injecting relay for the link faults.

Every page must be delivered exactly once: in order in the firmware's page log, and
physically (the device's ``sim.observe``: sheets delivered = pages + spoiled sheets).
Each test is bounded (``max_run_ns``) and closes every process, thread and port it
opened, however it ends.

The relay (:class:`FaultyRelay`) sits between the host and the device: a pty pair (or a
TCP listener) on the host's side, the served pty (or TCP port) on the device's side; it
flips bits, drops bytes and whole frames (from a seeded RNG), stalls the line, and drops
the connection (TCP).
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import socket
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from boards import BoardConfig, load_board
from emulator.device import ServeProcess
from emulator.run import JobSpec, Outcome, PrintRun
from firmware import StatusEvent
from hal import Button, ResetCause
from hal.serial import SerialBoard

S = 1_000_000_000
PAGES = 20
MAX_RUN_NS = 25 * S


Endpoint = int | socket.socket


class FaultyRelay:
    """Forwards bytes between the host's end and the device's, damaging them.

    ``bit_flip`` and ``drop_byte`` are per byte, ``drop_frame`` per frame (everything
    up to the next 0x00), all drawn from ``random.Random(seed)``. :meth:`stall` holds
    both directions back; :meth:`disconnect` (TCP) closes both connections: the host
    sees its socket close, the device its client leave; the next connection the host
    makes is relayed to a fresh connection to the device.
    """

    def __init__(self, device_url: str, *, seed: int = 0) -> None:
        self.device_url = device_url
        self.tcp = device_url.startswith("socket://")
        self.rng = random.Random(seed)
        self.bit_flip = 0.0
        self.drop_byte = 0.0
        self.drop_frame = 0.0
        self.counts = dict.fromkeys(
            ("flipped", "bytes_dropped", "frames_dropped", "stalls", "disconnects"), 0)
        self._stalled_until = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._dropping = {"up": False, "down": False}
        self._held = {"up": bytearray(), "down": bytearray()}
        self._host: Endpoint | None = None
        self._device: Endpoint | None = None
        self._listener: socket.socket | None = None
        self._host_slave: int | None = None
        if self.tcp:
            self._listener = socket.socket()
            self._listener.bind(("127.0.0.1", 0))
            self._listener.listen(1)
            self.host_url = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        else:
            master, slave = os.openpty()
            tty.setraw(master)
            tty.setraw(slave)
            self._host, self._host_slave = master, slave
            self.host_url = os.ttyname(slave)
            self._device = self._open_device()
        self._thread = threading.Thread(target=self._run, name="faulty-relay", daemon=True)
        self._thread.start()

    def _open_device(self) -> Endpoint:
        if self.tcp:
            host, port = self.device_url.removeprefix("socket://").rsplit(":", 1)
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        fd = os.open(self.device_url, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        return fd

    # -- faults ------------------------------------------------------------------------

    def stall(self, seconds: float) -> None:
        with self._lock:
            self._stalled_until = time.monotonic() + seconds
            self.counts["stalls"] += 1
        os.write(self._wake_w, b"x")

    def disconnect(self) -> None:
        assert self.tcp, "only a TCP line can be dropped"
        with self._lock:
            self.counts["disconnects"] += 1
            for end in (self._host, self._device):
                if isinstance(end, socket.socket):
                    with contextlib.suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)
                    end.close()
            self._host = self._device = None
        os.write(self._wake_w, b"x")

    def _damage(self, direction: str, data: bytes) -> bytes:
        rng, out = self.rng, bytearray()
        dropping = self._dropping[direction]
        for byte in data:
            if byte == 0:
                if not dropping:
                    out.append(0)
                dropping = bool(self.drop_frame) and rng.random() < self.drop_frame
                self.counts["frames_dropped"] += dropping
                continue
            if dropping:
                continue
            if self.drop_byte and rng.random() < self.drop_byte:
                self.counts["bytes_dropped"] += 1
                continue
            if self.bit_flip and rng.random() < self.bit_flip:
                byte ^= 1 << rng.randrange(8)
                self.counts["flipped"] += 1
            out.append(byte)
        self._dropping[direction] = dropping
        return bytes(out)

    # -- the loop ----------------------------------------------------------------------

    @staticmethod
    def _fileno(end: Endpoint) -> int:
        return end if isinstance(end, int) else end.fileno()

    @staticmethod
    def _read(end: Endpoint) -> bytes | None:
        """Bytes read; ``None`` when there was nothing after all; ``b""`` at the end."""
        try:
            return os.read(end, 65536) if isinstance(end, int) else end.recv(65536)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    @staticmethod
    def _write(end: Endpoint, data: bytes) -> None:
        deadline = time.monotonic() + 1.0
        while data and time.monotonic() < deadline:
            try:
                n = os.write(end, data) if isinstance(end, int) else end.send(data)
            except BlockingIOError:
                time.sleep(0.0005)
                continue
            except OSError:
                return
            data = data[n:]

    def _accept(self) -> None:
        assert self._listener is not None
        ready, _, _ = select.select([self._listener, self._wake_r], [], [], 0.05)
        if self._wake_r in ready:
            os.read(self._wake_r, 100)
        if self._listener in ready:
            conn, _ = self._listener.accept()
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            device = self._open_device()
            with self._lock:
                self._host, self._device = conn, device

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                host, device = self._host, self._device
                stalled = time.monotonic() < self._stalled_until
            if host is None or device is None:
                self._accept()
                continue
            if not stalled:
                for direction, end in (("up", device), ("down", host)):
                    if self._held[direction]:
                        self._write(end, bytes(self._held[direction]))
                        self._held[direction].clear()
            try:
                ready, _, _ = select.select(
                    [self._fileno(host), self._fileno(device), self._wake_r], [], [],
                    0.002 if stalled else 0.05)
            except (OSError, ValueError):
                continue  # a connection was dropped under us
            if self._wake_r in ready:
                os.read(self._wake_r, 100)
            for src, dst, direction in ((host, device, "up"), (device, host, "down")):
                if self._fileno(src) not in ready:
                    continue
                data = self._read(src)
                if data is None:
                    continue
                if not data:
                    if self.tcp:
                        self.disconnect()
                    break
                data = self._damage(direction, data)
                if stalled or time.monotonic() < self._stalled_until:
                    self._held[direction] += data
                else:
                    self._write(dst, data)

    def close(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        for end in (self._host, self._device):
            if isinstance(end, int):
                with contextlib.suppress(OSError):
                    os.close(end)
            elif end is not None:
                end.close()
        if self._listener is not None:
            self._listener.close()
        if self._host_slave is not None:
            os.close(self._host_slave)
        os.close(self._wake_r)
        os.close(self._wake_w)


@contextlib.contextmanager
def relayed(device_url: str, seed: int = 0) -> Iterator[FaultyRelay]:
    relay = FaultyRelay(device_url, seed=seed)
    try:
        yield relay
    finally:
        relay.close()


@contextlib.contextmanager
def connected(url: str, config: BoardConfig, **kwargs: object) -> Iterator[SerialBoard]:
    board = SerialBoard(url, config, strict=True, **kwargs)  # type: ignore[arg-type]
    try:
        yield board
    finally:
        board.close()


class Job:
    """A PrintRun of one job of :data:`PAGES` pages on ``board``, its status recorded."""

    def __init__(self, board: SerialBoard, pages: int = PAGES) -> None:
        self.board = board
        self.run = PrintRun(board, seed=0)
        self.run.add_job(JobSpec(pages=pages, coverage_pct=5.0))
        self.pages = pages
        self.status: list[StatusEvent] = []
        self.run.status_listeners.append(self.status.append)

    def kinds(self, kind: str) -> list[StatusEvent]:
        return [e for e in self.status if e.kind == kind]

    def execute(self) -> None:
        outcome = self.run.run(max_run_ns=MAX_RUN_NS)
        notable = [(round((e.t_ns - self.run.start_ns) / S, 3), e.kind, e.detail)
                   for e in self.status if e.kind not in ("state", "page_feeding",
                                                          "page_delivered")]
        assert outcome is Outcome.COMPLETED, (
            f"{outcome}: {self.run.pages_delivered} pages; states "
            f"{self.run.printer.states()}; events {notable}")

    def assert_every_page_once(self) -> None:
        assert [p["page"] for p in self.run.page_log] == list(range(1, self.pages + 1))
        (job,) = self.run.result()["jobs"]
        assert job["delivered"] == self.pages and job["state"] == "completed"
        observed = self.board.observe()
        assert observed is not None
        spoiled = len(self.kinds("page_spoiled"))
        assert observed["sheets_delivered"] == self.pages + spoiled, observed


# -- clean lines -----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_a_job_over_serve(transport: str) -> None:
    config = load_board("devkit")
    with ServeProcess("devkit", transport=transport) as device, \
            connected(device.url, config) as board:
        job = Job(board)
        job.execute()
        job.assert_every_page_once()
        assert board.stats.link_losses == 0 and board.stats.rejected == 0
        # In real time: the rated 600 ppm, plus the warm-up.
        assert job.run.sim_time_s < PAGES * 60 / config.engine.rated_ppm + 1.5


def test_a_job_over_a_line_paced_at_115200_baud() -> None:
    config = load_board("devkit")
    with ServeProcess("devkit", extra_args=["--baud", "115200"]) as device, \
            connected(device.url, config, baud=115200, pace=True) as board:
        job = Job(board)
        job.execute()
        job.assert_every_page_once()


# -- link faults -------------------------------------------------------------------------------


def _board_for_a_lossy_pty(tmp_path: Path) -> Path:
    """devkit, described for a lossy pty (same board name: both ends load this file).

    * ``retransmit_ms = 15``: a pty answers in well under a millisecond; devkit's 60 ms
      is sized for a 115200-baud UART. A request lost at the end of a burst is resent
      only when this runs out, and an ``imaging.submit`` later than its sheet's passage
      under the drum (about 40 ms on devkit) binds to the next sheet.
    * ``edge_margin_min_ms = 150``: stock devkit allows an edge 25 ms late; an event
      lost at the end of a burst arrives a retransmission later, and would be taken for
      a jam or a misfeed.
    """
    path = tmp_path / "devkit-lossy-pty.toml"
    path.write_text('extends = "devkit"\n\n[engine]\nedge_margin_min_ms = 150.0\n\n'
                    '[serial]\nretransmit_ms = 15.0\n')
    return path


def test_a_lossy_line_loses_no_page_and_prints_none_twice(tmp_path: Path) -> None:
    board_file = _board_for_a_lossy_pty(tmp_path)
    config = load_board(board_file)
    with ServeProcess(board_file) as device, relayed(device.url, seed=7) as relay, \
            connected(relay.host_url, config) as board:
        relay.bit_flip = 2e-4
        relay.drop_byte = 1e-4
        relay.drop_frame = 0.01
        stall_every_ns = S // 4

        def stall() -> None:
            relay.stall(0.01)
            board.scheduler.call_later(stall_every_ns, stall)

        board.scheduler.call_later(stall_every_ns, stall)
        job = Job(board)
        job.execute()
        job.assert_every_page_once()
        counts = relay.counts
        assert counts["flipped"] and counts["frames_dropped"] and counts["stalls"] > 4, counts
        link = board.link.stats
        assert link.corrupt + link.out_of_order + link.naks_sent > 0
        assert board.stats.link_losses == 0


def test_a_dropped_connection_mid_job_loses_no_page_and_prints_none_twice() -> None:
    config = load_board("devkit")
    with ServeProcess("devkit", transport="tcp") as device, relayed(device.url) as relay, \
            connected(relay.host_url, config) as board:
        board.scheduler.call_later(9 * S // 10, relay.disconnect)  # while printing
        job = Job(board)
        job.execute()
        job.assert_every_page_once()
        assert [e.kind for e in job.status if e.kind.startswith("link_")] == [
            "link_down", "link_up"]
        assert board.stats.port_losses == 1 and board.stats.resyncs == 1


def _reset_by_the_watchdog(board: SerialBoard, job: Job, when: str) -> None:
    """At the first ``when`` status event the firmware's panel task hangs, and a press of
    its button leaves it an event it never takes: the supervisor stops kicking and the
    device's watchdog resets the board. Once the firmware has rebooted (a fresh panel
    task) the tray is refilled."""
    faults = board.faults
    assert faults is not None

    def hang_the_panel() -> None:
        job.run.printer.hang("panel")
        faults.press(Button.CONTINUE)

    def on_status(event: StatusEvent) -> None:
        if event.kind == when and board.resets == 0:
            board.scheduler.call_soon(hang_the_panel)
        elif event.kind == "boot" and event.detail["reset_cause"] == "watchdog":
            board.scheduler.call_later(S // 5, lambda: faults.set_tray(100))

    job.run.status_listeners.append(on_status)


def test_a_device_reset_mid_job_loses_no_page_and_prints_none_twice() -> None:
    config = load_board("devkit")
    with ServeProcess("devkit") as device, connected(device.url, config) as board:
        faults = board.faults
        assert faults is not None
        faults.set_tray(PAGES // 2)  # the job waits for paper half way: the path is empty
        job = Job(board)
        _reset_by_the_watchdog(board, job, "paper_out")
        job.execute()
        job.assert_every_page_once()
        assert board.resets == 1 and board.reset_cause is ResetCause.WATCHDOG
        assert len(job.kinds("watchdog_reset")) == 1


def test_a_device_reset_while_sheets_are_in_the_path() -> None:
    config = load_board("devkit")
    with ServeProcess("devkit") as device, connected(device.url, config) as board:
        job = Job(board)
        _reset_by_the_watchdog(board, job, "fuser_ready")
        job.execute()
        job.assert_every_page_once()
        assert board.resets == 1 and board.reset_cause is ResetCause.WATCHDOG


# -- printer-emu run --port -------------------------------------------------------------------


def _printer_emu(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    """``printer-emu ARGV`` in-process."""
    from emulator.cli import _main as _cli

    return _cli.main(list(argv))


def test_run_on_a_port_keeps_the_json_contract(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert _printer_emu(monkeypatch, "run", "--board", "devkit", "--pages", "5", "--json") == 0
    emulated = json.loads(capsys.readouterr().out)
    with ServeProcess("devkit") as device:
        assert _printer_emu(monkeypatch, "run", "--port", device.url, "--pages", "5",
                            "--json") == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    # The emulated board's keys, and the device's own part (a serial board's only).
    assert set(result) == set(emulated) | {"device"}
    assert result["device"]["new_boot_nonce"] is False
    assert result["board"] == "devkit" and result["outcome"] == "completed"
    assert result["pages_delivered"] == 5 and result["sheets_used"] == 5
    assert [p["page"] for p in result["page_log"]] == [1, 2, 3, 4, 5]
    assert result["toner_pct"] == pytest.approx(emulated["toner_pct"], abs=0.01)
    assert result["tray_sheets"] == emulated["tray_sheets"]
    assert result["sim_time_s"] == pytest.approx(emulated["sim_time_s"], abs=0.5)


def test_run_with_a_scenario_on_a_port(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    import json

    scenario = tmp_path / "toner.toml"
    scenario.write_text('[[job]]\npages = 6\ncoverage = 5\n[[at]]\npage = 2\ntoner_pct = 4\n')
    with ServeProcess("devkit") as device:
        status = _printer_emu(monkeypatch, "run", "--port", device.url, "--scenario",
                              str(scenario), "--json")
    result = json.loads(capsys.readouterr().out)
    assert status == 0, result
    assert "toner_low" in [e["kind"] for e in result["events"]]
    assert result["pages_delivered"] == 6


def test_run_on_a_missing_port_is_one_line_and_status_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _printer_emu(monkeypatch, "run", "--port", "/dev/printer-emu-nothing") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/dev/printer-emu-nothing" in err


def test_a_scenario_needs_a_device_with_simulation_commands(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    scenario = tmp_path / "jam.toml"
    scenario.write_text('[[at]]\npage = 2\njam = "feed"\n')
    with ServeProcess("devkit", extra_args=["--no-sim"]) as device:
        assert _printer_emu(monkeypatch, "run", "--port", device.url, "--scenario",
                            str(scenario)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sim" in err and device.url in err


# -- the benchmark's plumbing (never its timings) -------------------------------------------


def test_the_serial_benchmark_runs_at_a_tiny_scale() -> None:
    from benchmarks import print_result
    from benchmarks._serial import run

    result = run(scale=0.001)
    assert result["name"] == "serial"
    assert set(result["targets_met"]) == {
        "round_trip_p50_within_2x_echo", "event_p99_under_1ms", "job_event_p99_under_1ms",
        "same_ppm_at_line_rate", "devkit_keeps_90pct_up_to_10ms",
        "devkit_zero_faults_at_every_latency"}
    assert result["round_trip"]["echo_p50_ns"] > 0 and result["round_trip"]["request_p50_ns"] > 0
    events = result["event_to_isr"]
    assert events["samples"] > 0
    assert events["press"]["samples"] == events["release"]["samples"] == events["samples"] // 2
    assert events["raw_pty_hop_after_idle"]["samples"] == 10
    assert events["job"]["samples"] >= 3 * 2  # at least a feed and an exit edge a page
    assert 0 < events["raw_pty_hop_after_idle"]["p50_ns"] < 1_000_000_000
    assert result["pages_per_minute"]["in_process"] > 0
    assert result["pages_per_minute"]["on_line"] > 0
    devices = result["more_tables"][0]
    assert devices["columns"][:3] == ["measure", "raw echo", "Python serve"]
    assert [row[0] for row in devices["rows"]][:2] == ["request round trip p50 (us)",
                                                       "request round trip p99 (us)"]
    with open(os.devnull, "w") as sink:
        print_result(result, file=sink)  # the table follows the runner's interface


def test_the_serial_benchmark_runs_each_far_end_on_a_cpu_of_its_own() -> None:
    from benchmarks import _serial

    if _serial.FAR_END_CPU is None:
        pytest.skip("one CPU (or no affinity here): the benchmark leaves placement to the OS")
    with _serial._device() as device:
        assert device.process is not None
        threads = os.listdir(f"/proc/{device.process.pid}/task")
        assert threads
        for tid in threads:
            assert os.sched_getaffinity(int(tid)) == {_serial.FAR_END_CPU}
    # The host side stays where the OS puts it.
    assert os.sched_getaffinity(0) != {_serial.FAR_END_CPU}
