"""The payloads (hal.serial._payloads): each message's CBOR map both ways, and the input
edge built and read without cbor2, exactly as cbor2 would."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.serial._errors import (
    ErrorCode,
    IncompatiblePeer,
    MalformedPayload,
    ProtocolMisuse,
    ProtocolVersionMismatch,
)
from hal.serial._frames import (
    MIN_MAX_PAYLOAD,
    Frame,
    FrameType,
    Role,
)
from hal.serial._payloads import (
    ErrorReply,
    Event,
    Hello,
    Request,
    Response,
    _parse_input_event,
    decode_payload,
    encode_payload,
    input_event_payload,
)

# --- payloads -----------------------------------------------------------------------------


def _hello(**overrides: Any) -> Hello:
    fields: dict[str, Any] = {
        "role": Role.DEVICE,
        "boot_nonce": 2**64 - 1,
        "session": 0xDEADBEEF,
        "peer_session": 7,
        "capabilities": frozenset({"sim", "smp"}),
        "max_payload": 4096,
        "window": 16,
        "dead_after_ns": 2_000_000_000,
        "device_id": "SN-0042",
        "board": "pe-ctrl-rev-b",
        "image_version": "1.4.2+7",
    }
    fields.update(overrides)
    return Hello(**fields)


def test_hello_round_trip() -> None:
    hello = _hello()
    assert Hello.from_payload(hello.to_payload()) == hello


def _hello_map(**changes: Any) -> dict[str, Any]:
    m: dict[str, Any] = cbor2.loads(_hello().to_payload())
    for key, value in changes.items():
        if value is None:
            m.pop(key, None)
        else:
            m[key] = value
    return m


def test_hello_ignores_unknown_keys_and_defaults_optional_ones() -> None:
    m = _hello_map(future_key=[1, 2], caps=None, device_id=None, board=None, image=None)
    hello = Hello.from_payload(encode_payload(m))
    assert hello.capabilities == frozenset() and hello.device_id == ""


@pytest.mark.parametrize("version", [0x00, 0x20, 0xF1])
def test_hello_of_another_major_version_is_a_version_mismatch(version: int) -> None:
    # Checked before anything else, so a v2 HELLO of any shape is still named correctly.
    with pytest.raises(ProtocolVersionMismatch) as info:
        Hello.from_payload(encode_payload({"version": version}))
    assert info.value.remote == version
    assert isinstance(info.value, IncompatiblePeer) and isinstance(info.value, ProtocolMisuse)


@pytest.mark.parametrize(
    "m",
    [
        [1, 2],
        _hello_map(role="printer"),
        _hello_map(role=None),
        _hello_map(boot=-1),
        _hello_map(boot=2**64),
        _hello_map(boot=True),
        _hello_map(session=0),
        _hello_map(session=2**32),
        _hello_map(peer_session="x"),
        _hello_map(caps=["sim", 3]),
        _hello_map(caps="sim"),
        _hello_map(limits={"max_payload": 100, "window": 8, "dead_after_ns": 1}),
        _hello_map(limits={"max_payload": 1024, "window": 0, "dead_after_ns": 1}),
        _hello_map(limits={"max_payload": 1024, "window": 8}),
        _hello_map(version="1.0"),
        _hello_map(device_id=5),
    ],
)
def test_malformed_hello(m: Any) -> None:
    with pytest.raises(MalformedPayload):
        Hello.from_payload(encode_payload(m))


def test_hello_that_does_not_fit_is_refused_when_built() -> None:
    with pytest.raises(ValueError):
        _hello(board="b" * MIN_MAX_PAYLOAD).to_payload()
    with pytest.raises(ValueError):
        _hello(session=0).to_payload()


def test_hello_is_not_cbor() -> None:
    with pytest.raises(MalformedPayload):
        Hello.from_payload(b"\xff\xff")


@pytest.mark.parametrize(
    "value",
    [
        Request("image.submit", {"job": 1, "page": 2, "coverage_pct": 5.0}),
        Request("ping"),
        Response(),
        Response({"level": True}),
        Response(0),
        ErrorReply(ErrorCode.BUSY, "imaging", {"retry_after_ms": 10}),
        ErrorReply(200),
        Event("edge", 123_456_789, {"input": "cover_open", "level": True}),
        Event("progress", 2**63),
    ],
)
def test_payload_round_trips(value: Any) -> None:
    assert type(value).from_payload(value.to_payload()) == value


def test_empty_response_payload_is_an_empty_result() -> None:
    assert Response().to_payload() == b""
    assert Response.from_payload(b"") == Response(None)


@pytest.mark.parametrize(
    ("cls", "payload"),
    [
        (Request, encode_payload({"args": {}})),
        (Request, encode_payload({"cmd": 3})),
        (Request, encode_payload({"cmd": "x", "args": [1]})),
        (Request, b""),
        (Response, encode_payload([1])),
        (ErrorReply, encode_payload({"code": "busy"})),
        (ErrorReply, encode_payload({"code": 300})),
        (Event, encode_payload({"kind": "edge"})),
        (Event, encode_payload({"kind": "edge", "t_ns": -1})),
        (Event, b"\x1c"),
    ],
)
def test_malformed_payloads(cls: Any, payload: bytes) -> None:
    with pytest.raises(MalformedPayload):
        cls.from_payload(payload)


@given(st.binary(max_size=200))
def test_decode_payload_raises_only_malformed_payload(payload: bytes) -> None:
    with contextlib.suppress(MalformedPayload):
        decode_payload(payload)


def test_encode_payload_refuses_what_cbor_cannot_hold() -> None:
    with pytest.raises(ValueError):
        encode_payload(object())


def test_a_frames_payload_decodes() -> None:
    assert decode_payload(Frame(FrameType.EVENT, encode_payload({"a": 1})).payload) == {"a": 1}
    assert decode_payload(Frame(FrameType.ACK).payload) is None


# -- input edges: built and read without cbor2, exactly as cbor2 would --------------------

_T_NS_WIDTHS = [0, 23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**64 - 1]
"""Every width of a CBOR unsigned integer, at both ends."""


@pytest.mark.parametrize("t_ns", _T_NS_WIDTHS)
@pytest.mark.parametrize("name", ["", "feed_sensor", "x" * 23, "x" * 24, "é" * 30, "x" * 255])
@pytest.mark.parametrize("level", [False, True])
def test_an_input_edge_is_the_bytes_cbor2_makes(t_ns: int, name: str, level: bool) -> None:
    event = Event("input", t_ns, {"name": name, "level": level})
    payload = input_event_payload(t_ns, name, level)
    assert payload == cbor2.dumps({"kind": "input", "t_ns": t_ns,
                                   "data": {"name": name, "level": level}})
    assert payload == event.to_payload()
    assert Event.from_payload(payload) == event


@given(st.integers(min_value=-(2**70), max_value=2**70), st.text(), st.booleans())
def test_any_input_edge_round_trips(t_ns: int, name: str, level: bool) -> None:
    try:
        expected = Event("input", t_ns, {"name": name, "level": level}).to_payload()
    except ValueError:  # text cbor2 cannot encode (a lone surrogate): refused alike
        with pytest.raises(ValueError):
            input_event_payload(t_ns, name, level)
        return
    payload = input_event_payload(t_ns, name, level)
    assert payload == expected
    if 0 <= t_ns < 2**64:
        assert Event.from_payload(payload) == Event("input", t_ns, {"name": name, "level": level})
    else:  # an instant that is not a u64 is refused, however it was encoded
        with pytest.raises(MalformedPayload):
            Event.from_payload(payload)


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**64 - 1), st.text(max_size=40), st.booleans(),
       st.data())
def test_the_fast_path_reads_a_damaged_edge_as_cbor2_does_or_leaves_it(
    t_ns: int, name: str, level: bool, data: st.DataObject
) -> None:
    """Truncated, extended or with a byte changed, an edge's payload is either read by
    the fast path exactly as cbor2 reads it, or left to cbor2."""
    payload = bytearray(input_event_payload(t_ns, name, level))
    how = data.draw(st.sampled_from(["truncate", "extend", "change"]))
    if how == "truncate":
        del payload[data.draw(st.integers(0, len(payload) - 1)):]
    elif how == "extend":
        payload += data.draw(st.binary(min_size=1, max_size=4))
    else:
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    damaged = bytes(payload)
    event = _parse_input_event(damaged)
    if event is not None:
        assert cbor2.loads(damaged) == {"kind": "input", "t_ns": event.t_ns, "data": event.data}
