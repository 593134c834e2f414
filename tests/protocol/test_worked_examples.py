"""docs/protocol.md's worked examples hold, byte for byte, on both implementations.

Read from the page itself (``tests/protocol/_spec.py``):

* the Python implementation (``hal.serial``) encodes each example's header and payload
  to exactly the page's line bytes, and its decoder gives back the same frame and
  payload;
* the bytes are what any COBS, zlib CRC-32 and CBOR library make of them (nothing of
  ``hal`` involved);
* both devices, the C device (``mcu/``, its host build) and ``printer-emu serve``, send
  the page's first EVENT (their clock aside) and a HELLO in its key order (the C
  device's is the page's, its nonces aside) and, sent the page's host frames byte for
  byte, answer them with the page's RESPONSE and NAK, byte for byte, and the ERROR it
  describes.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import cbor2
import pytest
from cobs import cobs

from hal.serial import ErrorCode, Frame, FrameDecoder, FrameType, Request, Response
from hal.serial import Event as EventPayload
from tests.protocol._line import RawLine, Session, first
from tests.protocol._spec import WireExample, wire_examples

EXAMPLES = wire_examples()


def test_the_page_has_the_examples_of_the_brief() -> None:
    assert {example.frame_type for example in EXAMPLES.values()} == {
        "HELLO", "EVENT", "REQUEST", "RESPONSE", "NAK"}
    assert set(EXAMPLES) == {"hello", "event", "request", "response", "nak", "ping"}


# -- the examples are consistent, and Python makes exactly them ---------------------------


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_example_bytes_agree_with_one_another(name: str) -> None:
    example = EXAMPLES[name]
    header = struct.pack("<BBBBHHHH", 0xA5, 0x10, FrameType[example.frame_type],
                         example.flags, example.seq, example.ack, example.request_id,
                         len(example.payload))
    assert example.header == header
    body = header + example.payload
    assert example.crc == struct.pack("<I", zlib.crc32(body))
    assert example.encoded == cobs.encode(body + example.crc) + b"\x00"
    if example.payload:
        assert isinstance(cbor2.loads(example.payload), dict)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_python_encodes_and_decodes_exactly_the_example(name: str) -> None:
    example = EXAMPLES[name]
    frame = Frame(FrameType[example.frame_type], example.payload, seq=example.seq,
                  ack=example.ack, request_id=example.request_id, flags=example.flags)
    assert frame.encode() == example.encoded
    assert FrameDecoder().feed(example.encoded) == [frame]


def test_python_builds_the_example_payloads() -> None:
    from hal.serial import Role
    from hal.serial._payloads import Hello  # Hello is not exported; the page's example is

    hello = Hello.from_payload(EXAMPLES["hello"].payload)
    assert hello.role is Role.DEVICE and hello.capabilities == frozenset({"plant", "regulator"})
    assert hello.to_payload() == EXAMPLES["hello"].payload  # "version" first, as sent
    event = EventPayload("reset", 1_500_000, {"cause": "power_on"})
    assert event.to_payload() == EXAMPLES["event"].payload
    assert EventPayload.from_payload(EXAMPLES["event"].payload) == event
    request = Request("output.set", {"output": "led_ready", "on": True})
    assert request.to_payload() == EXAMPLES["request"].payload
    assert Request.from_payload(EXAMPLES["request"].payload) == request
    assert Response().to_payload() == EXAMPLES["response"].payload == b""
    assert Request("ping").to_payload() == EXAMPLES["ping"].payload


# -- the C device answers the examples as the page says -----------------------------------


def _with(example: WireExample, **values: Any) -> bytes:
    """The example's payload with some values replaced (the device's own nonces and
    clock), in the example's key order and encodings."""
    value = cbor2.loads(example.payload)
    value.update(values)
    return bytes(cbor2.dumps(value))


def test_the_c_device_sends_the_example_hello(
        session: Session) -> None:
    example = EXAMPLES["hello"]
    hello = first(session.sent, FrameType.HELLO)
    value = cbor2.loads(hello["payload"])
    assert (hello["flags"], hello["seq"], hello["ack"], hello["rid"]) == (0, 0, 0, 0)
    keys, example_keys = list(value), list(cbor2.loads(example.payload))
    assert keys[0] == "version"
    assert [key for key in keys if key in example_keys] == example_keys  # in the same order
    assert hello["payload"] == cbor2.dumps(value)  # the shortest forms
    if session.kind == "c":  # the C device's HELLO is the example's, its nonces aside
        assert hello["payload"] == _with(example, boot=value["boot"], session=value["session"])
        assert value["device_id"] == "printer-mcu-host"


def test_the_c_device_sends_the_example_event(
        session: Session) -> None:
    example = EXAMPLES["event"]
    event = first(session.sent, FrameType.EVENT)
    t_ns = cbor2.loads(event["payload"])["t_ns"]
    assert event["payload"] == _with(example, t_ns=t_ns)
    assert event["line"] == Frame(FrameType.EVENT, _with(example, t_ns=t_ns),
                                  seq=example.seq, ack=example.ack).encode()


def test_the_c_device_answers_the_example_request_with_the_example_response(
        session: Session) -> None:
    assert _request(session.line)["line"] == EXAMPLES["response"].encoded


def _request(line: RawLine) -> dict[str, Any]:
    """Example 3: the host's request; the device's answer."""
    line.send(EXAMPLES["request"].encoded)
    return first(line.frames(2.0, until=FrameType.RESPONSE), FrameType.RESPONSE)


def _gap(line: RawLine) -> dict[str, Any]:
    """Example 4: seq 1 is "lost"; the host's next frame, seq 2, reaches the device."""
    line.send(Frame(FrameType.REQUEST, Request("watchdog.kick").to_payload(), seq=2, ack=1,
                    request_id=2).encode())
    return first(line.frames(2.0, until=FrameType.NAK), FrameType.NAK)


def test_the_c_device_answers_a_gap_with_the_example_nak(
        session: Session) -> None:
    line = session.line
    _request(line)
    assert _gap(line)["line"] == EXAMPLES["nak"].encoded


def test_the_c_device_refuses_the_example_unknown_command(
        session: Session) -> None:
    line = session.line
    _request(line)
    _gap(line)
    line.send(EXAMPLES["ping"].encoded)  # seq 1: the frame the device expects next
    error = first(line.frames(2.0, until=FrameType.ERROR), FrameType.ERROR)
    assert (error["rid"], error["seq"], error["ack"]) == (7, 2, 1)
    assert cbor2.loads(error["payload"])["code"] == ErrorCode.UNKNOWN_COMMAND
