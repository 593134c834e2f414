"""A device of either implementation, spoken to frame by frame on its raw pty, as an
implementer of another host would: the frames checked here with COBS, zlib's CRC-32 and
CBOR from their own libraries.

* :func:`device` launches ``c`` (the C device's host build, ``mcu/``) or ``python``
  (``printer-emu serve``) and yields its pty;
* :func:`open_session` brings a session up by hand and returns the :class:`Session`:
  the line, and every frame the device sent up to its first event.
"""

from __future__ import annotations

import contextlib
import os
import select
import struct
import time
import tty
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cbor2
from cobs import cobs

from emulator.device import ServeProcess
from hal.serial import Frame, FrameType
from tests.mcu._mcu import McuDevice

IMPLEMENTATIONS = ("c", "python")
RETRANSMIT = 0x01
HOST_SESSION = 0x1111


class RawLine:
    """A device's pty, opened raw: bytes in, checked frames out (COBS, CRC, length)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self._buffer = b""

    def close(self) -> None:
        os.close(self.fd)

    def send(self, data: bytes) -> None:
        """``data`` (one or more encoded frames) after a delimiter."""
        os.write(self.fd, b"\x00" + data)

    def frames(self, timeout_s: float,
               until: FrameType | Callable[[dict[str, Any]], bool] | None = None,
               ) -> list[dict[str, Any]]:
        """What arrives within ``timeout_s`` (or until a frame of type ``until``, or one
        for which ``until(frame)`` holds), each as its header fields, its payload and its
        exact line bytes."""
        if isinstance(until, FrameType):
            frame_type = until
            until = lambda frame: frame["type"] == frame_type  # noqa: E731
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            if select.select([self.fd], [], [], remaining)[0]:
                self._buffer += os.read(self.fd, 4096)
            *chunks, self._buffer = self._buffer.split(b"\x00")
            out.extend(_decode(chunk) for chunk in chunks if chunk)
            if until is not None and any(until(frame) for frame in out):
                break
        return out


def _decode(chunk: bytes) -> dict[str, Any]:
    body = cobs.decode(chunk)
    assert zlib.crc32(body) == 0x2144DF1C  # the CRC over a frame and its own CRC
    _, _, frame_type, flags, seq, ack, rid, length = struct.unpack_from("<BBBBHHHH", body)
    assert length == len(body) - 16
    return {"type": frame_type, "flags": flags, "seq": seq, "ack": ack, "rid": rid,
            "payload": body[12:12 + length], "line": chunk + b"\x00"}


def host_hello(frame_type: FrameType, session: int, peer_session: int, *,
               version: int = 0x10, version_first: bool = True) -> bytes:
    """A host's HELLO or HELLO_ACK, encoded; ``version_first=False`` puts ``"version"``
    last (as a peer that breaks the page's rule would)."""
    fields: dict[str, Any] = {
        "role": "host",
        "limits": {"max_payload": 1024, "window": 8, "dead_after_ns": 3_000_000_000},
        "boot": 1234, "session": session, "peer_session": peer_session,
    }
    ordered = {"version": version, **fields} if version_first else {**fields, "version": version}
    return Frame(frame_type, cbor2.dumps(ordered)).encode()


@contextlib.contextmanager
def device(kind: str) -> Iterator[str]:
    """Launch a device of implementation ``kind``; yield its pty's path."""
    if kind == "c":
        with McuDevice("host") as mcu:
            yield mcu.url
        return
    served = ServeProcess("devkit")
    try:
        yield served.start()
    finally:
        served.stop()


@dataclass
class Session:
    """A device of implementation ``kind`` on ``line``, and what it ``sent`` up to its
    first event."""

    kind: str
    line: RawLine
    sent: list[dict[str, Any]]


def open_session(kind: str, line: RawLine, **hello_options: Any) -> Session:
    """Bring a session up by hand (HELLO, the device's HELLO_ACK, our HELLO_ACK) and wait
    for the device's first event."""
    sent = line.frames(2.0, until=FrameType.HELLO)
    line.send(host_hello(FrameType.HELLO, HOST_SESSION, 0, **hello_options))
    sent += line.frames(2.0, until=FrameType.HELLO_ACK)
    ack = next(f for f in sent if f["type"] == FrameType.HELLO_ACK)
    device_session = cbor2.loads(ack["payload"])["session"]
    line.send(host_hello(FrameType.HELLO_ACK, HOST_SESSION, device_session, **hello_options))
    sent += line.frames(2.0, until=FrameType.EVENT)
    return Session(kind, line, sent)


def first(frames: list[dict[str, Any]], frame_type: FrameType) -> dict[str, Any]:
    """The first frame of ``frame_type`` that is not a retransmission."""
    return next(f for f in frames if f["type"] == frame_type and not f["flags"] & RETRANSMIT)


class Asker:
    """Requests of a session, sent one at a time with the next ``seq`` and a fresh
    ``request_id``, each acknowledging what the device sent so far."""

    def __init__(self, session: Session) -> None:
        self._line = session.line
        self._seq = 0
        self._rid = 0
        self._ack = max(f["seq"] for f in session.sent if f["type"] >= FrameType.REQUEST)

    def ask(self, payload: bytes) -> dict[str, Any]:
        """Send a REQUEST of ``payload`` (raw CBOR); return the device's answer."""
        self._rid += 1
        rid = self._rid
        self._line.send(Frame(FrameType.REQUEST, payload, seq=self._seq, ack=self._ack,
                              request_id=rid).encode())
        self._seq += 1
        frames = self._line.frames(
            2.0, lambda f: f["type"] in (FrameType.RESPONSE, FrameType.ERROR) and f["rid"] == rid)
        data = [f for f in frames if f["type"] >= FrameType.REQUEST and not f["flags"] & RETRANSMIT]
        if data:
            self._ack = data[-1]["seq"]
        answers = [f for f in frames
                   if f["type"] in (FrameType.RESPONSE, FrameType.ERROR) and f["rid"] == rid]
        assert answers, f"no answer to request {rid} within 2 s"
        return answers[0]
