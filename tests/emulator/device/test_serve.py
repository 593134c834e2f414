"""``printer-emu serve`` as a real process, over a pty, TCP and RFC 2217.

The host here is the minimum: pyserial's ``serial_for_url`` and a host-role
``LinkEndpoint``. Every wait is bounded; every process and port is closed by its fixture.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import serial

from boards import load_board
from hal.serial import (
    ErrorCode,
    ErrorReply,
    Event,
    Frame,
    FrameType,
    LinkEndpoint,
    LinkEstablished,
    LinkEvent,
    LinkState,
    NotSupported,
    Request,
    Response,
    Role,
)

# pyserial's own RFC 2217 client uses deprecated threading calls.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:serial.rfc2217")

REPO = Path(__file__).resolve().parents[3]
MS = 1_000_000
S = 1_000_000_000
START_TIMEOUT_S = 20.0
HOST_TIMINGS: dict[str, Any] = {
    "rto_ns": 100 * MS,
    "heartbeat_ns": 200 * MS,
    "dead_after_ns": 2 * S,
}


SERVE = [sys.executable, "-m", "emulator", "serve"]


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 5.0) -> tuple[int, float]:
        """Send ``signum``; the exit status and how long the process took to exit."""
        start = time.monotonic()
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=timeout_s)
        return code, time.monotonic() - start

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode()


def _read_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    line = b""
    deadline = time.monotonic() + timeout_s
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no first line within {timeout_s} s: {line!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 1)
            if not chunk:
                raise AssertionError(f"serve exited before its first line: {line!r}")
            line += chunk
    return line.decode().strip()


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> Served:
        proc = subprocess.Popen(
            [*SERVE, *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        return Served(proc, _read_line(proc, START_TIMEOUT_S))

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


class Host:
    """A minimal host: a pyserial port and a host-role link endpoint."""

    def __init__(self, url: str, **timings: Any) -> None:
        self.port = serial.serial_for_url(url, timeout=0.01)
        self.link = LinkEndpoint(Role.HOST, **{**HOST_TIMINGS, **timings})
        self._t0 = time.monotonic_ns()
        self.events: list[LinkEvent] = []
        self._rid = 0

    def now(self) -> int:
        return time.monotonic_ns() - self._t0

    def step(self) -> None:
        out = self.link.outgoing(self.now())
        if out:
            self.port.write(out)
        data = self.port.read(max(1, self.port.in_waiting))
        if data:
            self.link.receive(data, self.now())
        self.events.extend(self.link.events())

    def until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s")
            self.step()

    def up(self, timeout_s: float = 5.0) -> LinkEstablished:
        self.until(lambda: self.link.state is LinkState.UP, timeout_s)
        return [e for e in self.events if isinstance(e, LinkEstablished)][-1]

    def call(self, cmd: str, timeout_s: float = 5.0, **args: Any) -> Any:
        self._rid += 1
        rid = self._rid
        self.link.send(FrameType.REQUEST, Request(cmd, args).to_payload(), rid)

        def answer() -> Frame | None:
            for e in self.events:
                if isinstance(e, Frame) and e.request_id == rid and e.type is not FrameType.EVENT:
                    return e
            return None

        self.until(lambda: answer() is not None, timeout_s)
        frame = answer()
        assert frame is not None
        if frame.type is FrameType.ERROR:
            raise ErrorReply.from_payload(frame.payload).to_exception()
        return Response.from_payload(frame.payload).result

    def event_data(self, kind: str) -> list[dict[str, Any]]:
        out = []
        for e in self.events:
            if isinstance(e, Frame) and e.type is FrameType.EVENT:
                event = Event.from_payload(e.payload)
                if event.kind == kind:
                    out.append(event.data)
        return out

    def close(self) -> None:
        self.port.close()


@pytest.fixture
def host() -> Iterator[Callable[..., Host]]:
    hosts: list[Host] = []

    def open_host(url: str, **timings: Any) -> Host:
        h = Host(url, **timings)
        hosts.append(h)
        return h

    try:
        yield open_host
    finally:
        for h in hosts:
            h.close()


TRANSPORTS = {
    "pty": ["--pty"],
    "tcp": ["--tcp", "0"],
    "rfc2217": ["--rfc2217", "0"],
}


# -- the three transports -----------------------------------------------------------------


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_hello_snapshot_and_a_sim_event(
    transport: str, serve: Callable[..., Served], host: Callable[..., Host]
) -> None:
    served = serve(*TRANSPORTS[transport])
    if transport == "pty":
        assert served.url.startswith("/dev/")
    else:
        assert served.url.startswith(
            f"{'socket' if transport == 'tcp' else 'rfc2217'}://127.0.0.1:"
        )
        assert not served.url.endswith(":0")
    h = host(served.url)
    hello = h.up().peer
    assert hello.role is Role.DEVICE
    assert hello.board == "lp-2000"
    assert "sim" in hello.capabilities
    snap = h.call("board.snapshot")
    assert snap["inputs"]["cover_open"] is False
    assert snap["reset_cause"] == "power_on"
    h.call("sim.cover", open=True)
    h.until(lambda: {"name": "cover_open", "level": True} in h.event_data("input"))
    assert h.call("board.snapshot")["inputs"]["cover_open"] is True
    code, took_s = served.stop()
    assert code == 0
    assert took_s < 3.0


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_reconnect_gets_a_fresh_hello(
    transport: str, serve: Callable[..., Served], host: Callable[..., Host]
) -> None:
    served = serve(*TRANSPORTS[transport])
    first = host(served.url)
    hello1 = first.up().peer
    first.call("output.set", output="heater", on=True)
    first.close()
    second = host(served.url)
    hello2 = second.up().peer
    assert hello2.boot_nonce == hello1.boot_nonce  # the same boot: a reconnection
    assert hello2.session != hello1.session  # a new session
    snap = second.call("board.snapshot")
    assert snap["outputs"]["heater"] is False  # the device made itself safe meanwhile
    assert served.proc.poll() is None


def test_a_new_hello_on_an_open_pty_restarts_the_session(
    serve: Callable[..., Served], host: Callable[..., Host]
) -> None:
    served = serve("--pty")
    h = host(served.url)
    hello1 = h.up().peer
    h.call("watchdog.kick")  # the device is up too (it heard our HELLO_ACK)
    # A new host process on the same open port: a new endpoint, a new HELLO.
    h.link = LinkEndpoint(Role.HOST, **HOST_TIMINGS)
    h.events.clear()
    hello2 = h.up().peer
    assert hello2.boot_nonce == hello1.boot_nonce
    assert hello2.session != hello1.session
    assert h.call("analog.read", channel="toner_pct") == {"value": 100.0}


def test_no_sim_device(serve: Callable[..., Served], host: Callable[..., Host]) -> None:
    served = serve("--tcp", "0", "--no-sim")
    h = host(served.url)
    assert "sim" not in h.up().peer.capabilities
    with pytest.raises(NotSupported) as err:
        h.call("sim.cover", open=True)
    assert err.value.code is ErrorCode.NOT_SUPPORTED


def test_baud_paces_the_line(serve: Callable[..., Served], host: Callable[..., Host]) -> None:
    served = serve("--pty", "--baud", "9600")
    slow = {"rto_ns": 2 * S, "heartbeat_ns": 1 * S, "dead_after_ns": 10 * S}
    h = host(served.url, **slow)
    h.up(timeout_s=10.0)
    start = time.monotonic()
    snap = h.call("board.snapshot", timeout_s=10.0)
    took_s = time.monotonic() - start
    # The answer is ~300 bytes: ~0.3 s at 960 bytes a second (an unpaced pty: < 10 ms).
    answer_bytes = len(Response(snap).to_payload()) + 16
    assert took_s >= 0.8 * answer_bytes / 960
    assert took_s < 5.0
    # The other way: a long request (~800 bytes) crosses at the same rate.
    rows = ["x" * 400, "y" * 400]
    request_bytes = len(Request("display.show", {"rows": rows}).to_payload()) + 16
    start = time.monotonic()
    h.call("display.show", timeout_s=10.0, rows=rows)
    took_s = time.monotonic() - start
    assert took_s >= 0.8 * request_bytes / 960
    assert took_s < 5.0


def test_trace_file(
    serve: Callable[..., Served], host: Callable[..., Host], tmp_path: Path
) -> None:
    trace = tmp_path / "serve.jsonl"
    served = serve("--tcp", "0", "--trace", str(trace))
    h = host(served.url)
    h.up()
    h.call("sim.cover", open=True)
    h.until(lambda: bool(h.event_data("input")))
    code, _ = served.stop(signal.SIGINT)
    assert code == 0
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert any(
        r["scope"] == "panel" and r["signal"] == "cover_open" and r["value"] is True
        for r in records
    )


def test_smp_on_the_same_port(serve: Callable[..., Served], tmp_path: Path) -> None:
    from smp import os_management as smpos

    from emulator.flash import SmpFrameDecoder as SmpDecoder
    from emulator.flash import encode_smp_frame as smp_frame

    served = serve("--pty", "--flash", str(tmp_path / "flash.bin"))
    port = serial.serial_for_url(served.url, timeout=0.05)
    try:
        port.write(smp_frame(bytes(smpos.EchoWriteRequest(d="over serve"))))
        decoder = SmpDecoder()
        deadline = time.monotonic() + 5.0
        packet = None
        while packet is None and time.monotonic() < deadline:
            line = port.read_until(b"\n")
            at = max(line.find(b"\x06\x09"), line.find(b"\x04\x14"))
            if at >= 0:
                packet = decoder.feed_line(line[at:])
        assert packet is not None
        assert smpos.EchoWriteResponse.loads(packet).r == "over serve"
    finally:
        port.close()


# -- the device's loop: one thread reads, answers and writes ------------------------------


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    ("args", "threads"),
    [
        (["--pty"], 2),
        (["--tcp", "0"], 2),
        (["--rfc2217", "0"], 2),
        (["--pty", "--baud", "115200"], 3),
    ],
)
def test_one_thread_serves_the_line(
    args: list[str], threads: int, serve: Callable[..., Served], host: Callable[..., Host]
) -> None:
    # The main thread (signals) and the scheduler's, which also reads the line; with
    # --baud the paced writer too. No reader thread.
    served = serve(*args)
    h = host(served.url)
    h.up()
    h.call("board.snapshot")
    assert _threads(served.proc.pid) == threads


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_a_request_after_a_quiet_spell_is_answered_at_once(
    transport: str, serve: Callable[..., Served], host: Callable[..., Host]
) -> None:
    # The device's loop sleeps until its next timer (a heartbeat, 200 ms on lp-2000): the
    # request's bytes must wake it, not that timer.
    served = serve(*TRANSPORTS[transport])
    h = host(served.url)
    h.up()
    took_s = []
    for _ in range(5):
        h.step()
        time.sleep(0.25)  # the host's quiet spell, not the device's clock
        start = time.monotonic()
        assert h.call("analog.read", channel="toner_pct") == {"value": 100.0}
        took_s.append(time.monotonic() - start)
    assert sorted(took_s)[2] < 0.05, took_s


def _closed_by_peer(sock: socket.socket, timeout_s: float) -> tuple[bytes, float]:
    """Read ``sock`` until the peer closes it: what it said, and when it closed."""
    start = time.monotonic()
    said = b""
    sock.settimeout(timeout_s)
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return said, time.monotonic() - start
        said += chunk


@pytest.mark.parametrize("transport", ["tcp", "rfc2217"])
def test_a_second_client_is_told_busy_while_the_first_works(
    transport: str, serve: Callable[..., Served], host: Callable[..., Host]
) -> None:
    served = serve(*TRANSPORTS[transport])
    first = host(served.url)
    first.up()
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as second:
        # Busy: accepted and closed at once, before a byte is written.
        assert _closed_by_peer(second, 5.0)[0] == b""
    first.call("board.snapshot")  # the first is served all along, untouched
    assert first.link.state is LinkState.UP
    first.close()
    third = host(served.url)
    assert third.up().peer.role is Role.DEVICE
    third.call("board.snapshot")
    assert served.proc.poll() is None


def test_the_host_reports_a_busy_device_in_one_line(
    serve: Callable[..., Served], host: Callable[..., Host]
) -> None:
    served = serve("--board", "devkit", "--tcp", "0")
    first = host(served.url)
    first.up()
    second = subprocess.Popen(
        [sys.executable, "-m", "emulator", "run", "--port", served.url, "--pages", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first.until(lambda: second.poll() is not None, timeout_s=60)  # the first keeps talking
    _, stderr = second.communicate()
    assert second.returncode == 2
    assert stderr.count("\n") == 1
    assert f"device at {served.url} is busy (another host is connected)" in stderr
    first.call("board.snapshot")


def test_an_idle_client_is_dropped_after_the_dead_time(
    serve: Callable[..., Served], host: Callable[..., Host]
) -> None:
    dead_s = load_board("devkit").serial.link_dead_ms / 1000
    served = serve("--board", "devkit", "--tcp", "0")
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as idle:
        said, closed_after_s = _closed_by_peer(idle, 10 * dead_s)
    assert said  # the device's HELLO: it was served, then dropped for saying nothing
    assert dead_s <= closed_after_s < dead_s + 1.0
    after = host(served.url)
    assert after.up().peer.role is Role.DEVICE
    after.call("board.snapshot")


@pytest.mark.parametrize("args", [["--pty", "--baud", "115200"], ["--rfc2217", "0"]])
def test_sigterm_with_a_client_connected_exits_0_promptly(
    args: list[str], serve: Callable[..., Served], host: Callable[..., Host]
) -> None:
    served = serve(*args)
    h = host(served.url)
    h.up()
    h.call("board.snapshot")
    code, took_s = served.stop(signal.SIGTERM)
    assert code == 0
    assert took_s < 3.0


# -- the process ---------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_0_promptly(serve: Callable[..., Served], signum: int) -> None:
    served = serve("--pty")
    time.sleep(0.2)
    code, took_s = served.stop(signum)
    assert code == 0
    assert took_s < 2.0
    assert not Path(served.url).exists() or served.url.startswith("/dev/pts/")


def test_bind_another_address(serve: Callable[..., Served], host: Callable[..., Host]) -> None:
    served = serve("--tcp", "0", "--bind", "0.0.0.0")
    assert served.url.startswith("socket://0.0.0.0:")
    port = served.url.rsplit(":", 1)[1]
    h = host(f"socket://127.0.0.1:{port}")
    h.up()


def _run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVE, *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_address_in_use_exits_2_with_one_line(busy_port: int) -> None:
    result = _run_serve("--tcp", str(busy_port))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(busy_port) in lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--board", "no-such-board"], "no-such-board"),
        (["--baud", "0"], "--baud"),
        (["--baud", "fast"], "--baud"),
        (["--tcp", "notaport"], "--tcp"),
        (["--tcp", "70000"], "--tcp"),
        (["--pty", "--tcp", "0"], "--tcp"),
        (["--bind", "0.0.0.0"], "--bind"),
        (["--frobnicate"], "frobnicate"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], words: str) -> None:
    result = _run_serve(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert words in lines[0]


# -- the device protects itself -----------------------------------------------------------


def test_a_silent_host_cannot_overheat_the_fuser(
    serve: Callable[..., Served], host: Callable[..., Host], tmp_path: Path
) -> None:
    # The heater on, then the host goes silent for 5 s (as a SIGSTOPped host does): the
    # thermostat holds the fuser at the board's cutoff while the link lives, the device's
    # failsafe cuts the heater when it dies, and no instant of the device's trace is past
    # the cutoff.
    cutoff_c = load_board("devkit").fuser.cutoff_c
    trace = tmp_path / "serve.jsonl"
    served = serve("--board", "devkit", "--pty", "--trace", str(trace))
    h = host(served.url)
    h.up()
    h.call("output.set", output="heater", on=True)
    h.until(lambda: h.call("analog.read", channel="fuser_c")["value"] == cutoff_c)
    time.sleep(5.0)  # silent: no byte, no heartbeat, for five times the dead time
    h.close()
    after = host(served.url)
    after.up()
    snap = after.call("board.snapshot")
    assert snap["outputs"] == {**snap["outputs"], "heater": False, "laser": False, "motor": False}
    assert snap["analog"]["fuser_c"] < cutoff_c  # cooling since the failsafe
    code, _ = served.stop(signal.SIGINT)
    assert code == 0
    temps = [
        r["value"] for r in map(json.loads, trace.read_text().splitlines())
        if r["scope"] == "fuser" and r["signal"] == "temp_c"
    ]
    assert temps and max(temps) <= cutoff_c
