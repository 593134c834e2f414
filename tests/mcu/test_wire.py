"""The C device's bytes on the wire, read and written here with nothing of ``hal`` (COBS,
zlib's CRC-32 and CBOR from their own libraries), as an implementer of another host
would: its HELLO, a raw handshake, and docs/protocol.md's worked example frame sent
byte for byte.
"""

from __future__ import annotations

import os
import select
import struct
import time
import tty
import zlib
from typing import Any

import cbor2
from cobs import cobs

from tests.mcu._mcu import McuDevice

HELLO, HELLO_ACK, ACK, REQUEST, RESPONSE, ERROR, EVENT = 0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13

# docs/protocol.md, "Worked examples" 5: REQUEST {"cmd": "ping"}, seq 1, ack 65535, rid 7.
WORKED_EXAMPLE = bytes.fromhex(
    "04 a5 10 10 02 01 04 ff ff 07 02 0a 0f a1 63 63 6d 64 64 70 69 6e 67 2b 20 4d 92 00"
)


def _frame(frame_type: int, payload: bytes = b"", *, seq: int = 0, ack: int = 0,
           rid: int = 0, flags: int = 0) -> bytes:
    body = struct.pack("<BBBBHHHH", 0xA5, 0x10, frame_type, flags, seq, ack, rid,
                       len(payload)) + payload
    encoded: bytes = cobs.encode(body + struct.pack("<I", zlib.crc32(body)))
    return b"\x00" + encoded + b"\x00"


class _RawLine:
    """The device's pty opened raw; frames in and out, decoded and checked here."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self._buffer = b""

    def close(self) -> None:
        os.close(self.fd)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def frames(self, timeout_s: float) -> list[dict[str, Any]]:
        """Every frame that arrives within ``timeout_s`` (each checked: CRC, length)."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            if select.select([self.fd], [], [], remaining)[0]:
                self._buffer += os.read(self.fd, 4096)
            *chunks, self._buffer = self._buffer.split(b"\x00")
            for chunk in chunks:
                if chunk:
                    out.append(_decode(chunk))
        return out


def _decode(chunk: bytes) -> dict[str, Any]:
    body = cobs.decode(chunk)
    assert zlib.crc32(body) == 0x2144DF1C  # the CRC over the frame and its own CRC
    marker, version, frame_type, flags, seq, ack, rid, length = struct.unpack_from(
        "<BBBBHHHH", body)
    assert marker == 0xA5 and version == 0x10 and length == len(body) - 16
    payload = body[12:12 + length]
    return {"type": frame_type, "flags": flags, "seq": seq, "ack": ack, "rid": rid,
            "payload": payload, "value": cbor2.loads(payload) if payload else None}


def _host_hello(session: int, peer_session: int) -> bytes:
    return cbor2.dumps({
        "version": 0x10, "role": "host", "caps": [],
        "limits": {"max_payload": 1024, "window": 8, "dead_after_ns": 3_000_000_000},
        "device_id": "", "board": "devkit", "boot": 1234, "session": session,
        "peer_session": peer_session,
    })


def _handshake(line: _RawLine) -> dict[str, Any]:
    """Bring a session up by hand; return the device's HELLO_ACK."""
    line.send(_frame(HELLO, _host_hello(0x1111, 0)))
    device_session = 0
    for frame in line.frames(2.0):
        if frame["type"] in (HELLO, HELLO_ACK) and frame["value"]["peer_session"] == 0x1111:
            device_session = frame["value"]["session"]
            break
    assert device_session
    line.send(_frame(HELLO_ACK, _host_hello(0x1111, device_session)))
    return {"session": device_session}


def test_the_device_hello_is_well_formed_and_names_its_version_first() -> None:
    with McuDevice("host") as device:
        line = _RawLine(device.url)
        try:
            frames = line.frames(0.5)
        finally:
            line.close()
    hellos = [f for f in frames if f["type"] == HELLO]
    assert hellos, frames
    hello = hellos[0]
    assert hello["seq"] == hello["ack"] == hello["rid"] == 0
    assert hello["payload"][0] >> 5 == 5  # a map ...
    assert hello["payload"][1:9] == b"\x67version"  # ... whose first key is "version"
    value = hello["value"]
    assert next(iter(value)) == "version" and value["version"] == 0x10
    assert value["role"] == "device" and value["peer_session"] == 0
    assert value["limits"]["max_payload"] >= 512


def test_the_worked_example_of_the_protocol_page_is_answered() -> None:
    with McuDevice("host") as device:
        line = _RawLine(device.url)
        try:
            _handshake(line)
            # seq 0 first (an unknown command too), so that the example's seq 1 is next.
            line.send(_frame(REQUEST, cbor2.dumps({"cmd": "nop"}), seq=0, ack=0xFFFF, rid=6))
            line.send(WORKED_EXAMPLE)
            # Nothing is acknowledged here: what the device sends again (RETRANSMIT) is left
            # out.
            answers = [f for f in line.frames(1.0)
                       if f["type"] in (RESPONSE, ERROR) and not f["flags"] & 0x01]
        finally:
            line.close()
    assert [(f["type"], f["rid"]) for f in answers] == [(ERROR, 6), (ERROR, 7)]
    assert answers[1]["value"]["code"] == 1  # UNKNOWN_COMMAND: "ping" is no board command
    assert answers[1]["seq"] == 2  # the reset event took seq 0
