"""A bounded fuzz test of the virtual device over TCP: what a broken or hostile host can
send — random bytes, damaged frames, well-framed requests of broken CBOR, broken SMP
lines, HELLOs with hostile limits — to one ``printer-emu serve --tcp``. Afterwards a
well-behaved host (``SerialBoard``) still works, and serve's log is bounded (warnings
rate-limited) with no traceback.

Bounded: a fixed number of examples (each one connection), no deadline per example, and
a wall-clock budget after which hypothesis is not asked for more.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boards import load_board
from emulator.device import ServeProcess
from emulator.flash import encode_smp_frame
from hal.serial import (
    Frame,
    FrameDecoder,
    FrameType,
    Hello,
    LinkEndpoint,
    LinkState,
    Role,
    SerialBoard,
)

EXAMPLES = 120
BUDGET_S = 12.0
MS = 1_000_000


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    flash = tmp_path_factory.mktemp("fuzz") / "devkit.flash"
    with ServeProcess("devkit", transport="tcp", extra_args=["--flash", str(flash)]) as served:
        yield served


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    return host, int(port)


def _hostile_hello(limits: dict[str, Any], session: int) -> bytes:
    fields = cbor2.loads(Hello(Role.HOST, boot_nonce=1, session=1).to_payload())
    fields["limits"] = limits
    fields["session"] = session
    return Frame(FrameType.HELLO, cbor2.dumps(fields)).encode()


def _damaged(frame: bytes, at: int, value: int) -> bytes:
    data = bytearray(frame)
    data[at % len(data)] = value
    return bytes(data)


_uint = st.one_of(st.integers(0, 5), st.integers(0, 2**64 - 1), st.just(-1))
_limits = st.fixed_dictionaries(
    {}, optional={"max_payload": _uint, "window": _uint, "dead_after_ns": _uint,
                  "extra": st.text(max_size=8)})
_request = Frame(FrameType.REQUEST, cbor2.dumps({"cmd": "board.snapshot", "args": {}}),
                 seq=1, request_id=1).encode()
_piece = st.one_of(
    st.binary(max_size=300),  # random bytes
    st.builds(_damaged, st.just(_request), st.integers(0, 200), st.integers(0, 255)),
    st.builds(lambda b: Frame(FrameType.REQUEST, b, seq=1, request_id=9).encode(),
              st.binary(max_size=200)),  # well framed, broken CBOR, no session
    st.builds(encode_smp_frame, st.binary(max_size=200)),  # SMP framing, broken packet
    st.builds(lambda b: b"\x06\x09" + b + b"\n", st.binary(max_size=150)),  # broken SMP line
    st.builds(_hostile_hello, _limits, st.integers(0, 2**32)),
)


_sessions_up: list[int] = []
"""How many fuzzed hosts got a session (the fuzz must reach inside one)."""


def _in_session_garbage(url: str, payloads: list[bytes]) -> None:
    """A host that comes UP, then sends requests of broken CBOR inside the session."""
    host, port = _address(url)
    link = LinkEndpoint(Role.HOST, rto_ns=100 * MS, heartbeat_ns=200 * MS,
                        dead_after_ns=1000 * MS)
    t0 = time.monotonic_ns()
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.settimeout(0.01)
        deadline = time.monotonic() + 2.0
        sent = False
        while time.monotonic() < deadline:
            now = time.monotonic_ns() - t0
            out = link.outgoing(now)
            if out:
                sock.sendall(out)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                data = b""
            except ConnectionResetError:
                return  # dropped (its HELLOs gave it no session): fine, the device lives
            if data:
                link.receive(data, now)
            link.events()
            if link.state is LinkState.UP and not sent:
                _sessions_up.append(1)
                for rid, payload in enumerate(payloads, 1):
                    link.send(FrameType.REQUEST, payload, rid)
                sent = True
                deadline = time.monotonic() + 0.1
            elif not data and sent:
                break


def test_a_hostile_host_does_not_break_the_device_and_its_log_stays_bounded(
    device: ServeProcess,
) -> None:
    """The fuzz, then a well-behaved host on the same device: one test, so that xdist
    cannot run the check on another worker's device, and the budget starts with the fuzz
    (not at import: a loaded worker may collect long before it runs this)."""
    started = time.monotonic()
    _sessions_up.clear()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(pieces=st.lists(_piece, max_size=6),
           in_session=st.lists(st.binary(max_size=64), max_size=4))
    def fuzz(pieces: list[bytes], in_session: list[bytes]) -> None:
        if time.monotonic() - started > BUDGET_S:
            return  # the budget is spent: the rest of the examples pass through
        host, port = _address(device.url)
        with socket.create_connection((host, port), timeout=2) as sock:
            for piece in pieces:
                sock.sendall(piece)
        if in_session:
            _in_session_garbage(device.url, in_session)
        assert device.process is not None and device.process.poll() is None, (
            device.stderr_text())

    fuzz()
    assert len(_sessions_up) >= 5, "the fuzz never reached inside a session"
    with SerialBoard(device.url, load_board("devkit"), open_timeout_s=5) as board:
        assert board.hello is not None and board.hello.board == "devkit"
        board.faults.set_toner_pct(42.0)  # a request, answered
    log = device.stderr_text()
    assert "Traceback" not in log, log
    lines = log.strip().splitlines()
    # One line per kind of warning per 10 s (plus a "suppressed" count): a handful of
    # kinds, whatever the number of examples.
    assert len(lines) <= 20, "\n".join(lines)


def _frames_in(data: bytes) -> list[Frame]:
    return [item for item in FrameDecoder().feed(data) if isinstance(item, Frame)]


def test_a_hello_asking_for_a_5_ns_dead_time_gets_heartbeats_at_the_floor(
    device: ServeProcess,
) -> None:
    """Over TCP: a session whose host says it is dead after 5 ns of silence. The device
    heartbeats at most every 10 ms (docs/protocol.md), not every ns."""
    host, port = _address(device.url)
    limits = {"max_payload": 1024, "window": 8, "dead_after_ns": 5}
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(_hostile_hello(limits, session=0x51))
        received = b""
        deadline = time.monotonic() + 2.0
        while not any(f.type is FrameType.HELLO for f in _frames_in(received)):
            assert time.monotonic() < deadline, "no HELLO from the device"
            received += sock.recv(65536)
        hello = next(f for f in _frames_in(received) if f.type is FrameType.HELLO)
        fields = cbor2.loads(hello.payload)
        answer = cbor2.loads(Hello(Role.HOST, boot_nonce=1, session=0x51,
                                   peer_session=fields["session"]).to_payload())
        answer["limits"] = limits
        sock.sendall(Frame(FrameType.HELLO, cbor2.dumps(answer)).encode())
        received = b""
        sock.settimeout(0.05)
        until = time.monotonic() + 0.3
        while time.monotonic() < until and len(received) < 1_000_000:
            with contextlib.suppress(TimeoutError):
                received += sock.recv(65536)
    heartbeats = [f for f in _frames_in(received) if f.type is FrameType.HEARTBEAT]
    assert 1 <= len(heartbeats) <= 40, len(heartbeats)  # 0.3 s at one per 10 ms at most
