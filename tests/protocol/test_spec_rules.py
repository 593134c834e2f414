"""The rules docs/protocol.md makes normative, checked on the wire on both devices (the
C device's host build and ``printer-emu serve``), with requests written byte by byte:
numbers of any width, non-minimal encodings and unknown keys accepted, bad names and
malformed payloads refused with the page's codes, display rows cut at 16 code points,
``board.snapshot`` always naming its pending imaging, ``"version"`` found wherever it
sits in a HELLO, and another major version refused.
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2

from hal.serial import ErrorCode, FrameType
from tests.protocol._line import (
    HOST_SESSION,
    Asker,
    RawLine,
    Session,
    device,
    host_hello,
    open_session,
)


def _text(value: str) -> bytes:
    return bytes(cbor2.dumps(value))


def _map(*items: bytes) -> bytes:
    """A CBOR map of ``items`` (alternating encoded keys and values)."""
    assert len(items) % 2 == 0
    return bytes([0xA0 + len(items) // 2]) + b"".join(items)


def _result(answer: dict[str, Any]) -> Any:
    assert answer["type"] == FrameType.RESPONSE, cbor2.loads(answer["payload"])
    return cbor2.loads(answer["payload"])["result"] if answer["payload"] else None


def _error_code(answer: dict[str, Any]) -> int:
    assert answer["type"] == FrameType.ERROR
    code: int = cbor2.loads(answer["payload"])["code"]
    return code


def _window_set(low: bytes, high: bytes) -> bytes:
    args = _map(_text("channel"), _text("fuser_c"), _text("low"), low, _text("high"), high)
    return _map(_text("cmd"), _text("window.set"), _text("args"), args)


HALF_1000 = b"\xf9" + struct.pack(">e", 1000.0)
SINGLE_MINUS_1000 = b"\xfa" + struct.pack(">f", -1000.0)
DOUBLE_1000 = b"\xfb" + struct.pack(">d", 1000.0)


def test_a_number_is_an_integer_or_a_float_of_any_width(session: Session) -> None:
    asker = Asker(session)
    assert _result(asker.ask(_window_set(bytes(cbor2.dumps(-1000)), HALF_1000))) is None
    assert _result(asker.ask(_window_set(SINGLE_MINUS_1000, DOUBLE_1000))) is None
    assert _result(asker.ask(_window_set(b"\x18\x00", b"\x19\x03\xe8"))) is None  # 0, 1000
    reading = _result(asker.ask(bytes(cbor2.dumps(
        {"cmd": "analog.read", "args": {"channel": "fuser_c"}}))))["value"]
    assert isinstance(reading, float | int) and not isinstance(reading, bool)


def test_non_minimal_encodings_are_accepted(session: Session) -> None:
    cmd_key = b"\x78\x03cmd"  # a text string's length in a longer head than needed
    handle = b"\x1b" + (5).to_bytes(8, "big")  # a uint in a 64-bit head
    request = _map(cmd_key, _text("imaging.cancel"), _text("args"),
                   _map(_text("handle"), handle))
    assert _result(Asker(session).ask(request)) == {"cancelled": False}


def test_unknown_keys_are_ignored(session: Session) -> None:
    request = {"cmd": "analog.read", "args": {"channel": "toner_pct"}, "later": [1, 2]}
    assert "value" in _result(Asker(session).ask(bytes(cbor2.dumps(request))))


def test_an_unknown_name_is_a_bad_argument(session: Session) -> None:
    request = {"cmd": "output.set", "args": {"output": "nozzle", "on": True}}
    assert _error_code(Asker(session).ask(bytes(cbor2.dumps(request)))) == \
        ErrorCode.BAD_ARGUMENT


def test_a_malformed_request_is_a_bad_argument(session: Session) -> None:
    asker = Asker(session)
    assert _error_code(asker.ask(bytes(cbor2.dumps({"cmd": 1})))) == ErrorCode.BAD_ARGUMENT
    assert _error_code(asker.ask(b"\x01")) == ErrorCode.BAD_ARGUMENT  # not a map
    assert _error_code(asker.ask(b"\xa1\x63cmd")) == ErrorCode.BAD_ARGUMENT  # cut short


def test_an_unknown_command_is_unknown(session: Session) -> None:
    answer = Asker(session).ask(bytes(cbor2.dumps({"cmd": "laser.fire"})))
    assert _error_code(answer) == ErrorCode.UNKNOWN_COMMAND


def test_device_commands_are_optional(session: Session) -> None:
    answer = Asker(session).ask(bytes(cbor2.dumps({"cmd": "device.stats"})))
    if answer["type"] == FrameType.ERROR:
        assert _error_code(answer) == ErrorCode.UNKNOWN_COMMAND
    else:
        stats = _result(answer)
        assert all(isinstance(v, int) and v >= 0 for v in stats.values())
        assert {"noise_bytes", "corrupt", "declined"} <= set(stats)


def test_display_rows_are_cut_at_16_code_points_and_the_snapshot_names_imaging(
        session: Session) -> None:
    asker = Asker(session)
    row = "ÄÖÜäöüß€0123456789"  # 18 code points, 27 bytes of UTF-8
    shown = _result(asker.ask(bytes(cbor2.dumps({"cmd": "display.show",
                                                 "args": {"rows": [row, "ok"]}}))))
    assert shown is None
    snapshot = _result(asker.ask(bytes(cbor2.dumps({"cmd": "board.snapshot"}))))
    assert snapshot["display"] == [row[:16], "ok"]
    assert snapshot["imaging"] == []
    assert snapshot["reset_cause"] == "power_on"


def test_hello_version_is_found_wherever_it_sits() -> None:
    for kind in ("c", "python"):
        with device(kind) as url:
            line = RawLine(url)
            try:
                session = open_session(kind, line, version_first=False)
            finally:
                line.close()
        assert any(f["type"] == FrameType.EVENT for f in session.sent), kind


def test_another_major_version_brings_no_session_up() -> None:
    for kind in ("c", "python"):
        with device(kind) as url:
            line = RawLine(url)
            try:
                line.frames(2.0, until=FrameType.HELLO)
                line.send(host_hello(FrameType.HELLO, HOST_SESSION, 0, version=0x20))
                frames = line.frames(1.0)
            finally:
                line.close()
        answered = [f for f in frames if f["type"] in (FrameType.HELLO, FrameType.HELLO_ACK)
                    and cbor2.loads(f["payload"])["peer_session"] == HOST_SESSION]
        assert answered == [], kind
        assert all(f["type"] in (FrameType.HELLO, FrameType.HELLO_ACK) for f in frames), kind
