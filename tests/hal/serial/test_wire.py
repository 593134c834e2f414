"""The frame codec (hal.serial._frames) and the error hierarchy (hal.serial._errors); the
payloads are test_payloads.py's."""

from __future__ import annotations

import binascii
import itertools
import struct
from typing import Any

import pytest
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.serial._errors import (
    BadCobs,
    BadCrc,
    BadMarker,
    DecodeErrorKind,
    DeviceBusy,
    DeviceRejected,
    DeviceReset,
    ErrorCode,
    FrameDecodeError,
    FrameTooLong,
    IncompatiblePeer,
    LengthMismatch,
    LinkDown,
    LinkDownReason,
    LinkFailure,
    LinkTimeout,
    MalformedPayload,
    PayloadTooLarge,
    PrinterLinkError,
    ProtocolMisuse,
    ProtocolVersionMismatch,
    TruncatedFrame,
    UnknownCommand,
    UnknownFrameType,
    rejection_for,
)
from hal.serial._frames import (
    DATA_TYPES,
    DEFAULT_MAX_PAYLOAD,
    MARKER,
    MIN_MAX_PAYLOAD,
    PROTOCOL_VERSION,
    CorruptFrame,
    Flag,
    Frame,
    FrameDecoder,
    FrameType,
    Noise,
    decode_frame,
    encode_frame,
    max_encoded_size,
)
from hal.serial._payloads import (
    ErrorReply,
    Request,
)

HEADER = struct.Struct("<BBBBHHHH")


def body_of(
    *,
    marker: int = MARKER,
    version: int = PROTOCOL_VERSION,
    frame_type: int = FrameType.REQUEST,
    flags: int = 0,
    seq: int = 0,
    ack: int = 0,
    request_id: int = 0,
    payload: bytes = b"",
    length: int | None = None,
) -> bytes:
    """A decoded frame with a correct CRC, any field set as the test likes."""
    n = len(payload) if length is None else length
    head = HEADER.pack(marker, version, frame_type, flags, seq, ack, request_id, n)
    data = head + payload
    return data + struct.pack("<I", binascii.crc32(data))


def chunk_of(body: bytes) -> bytes:
    return bytes(cobs.encode(body))


def decode_all(stream: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[Any]:
    return FrameDecoder(max_payload).feed(stream)


frame_types = st.sampled_from(list(FrameType))
u16 = st.integers(0, 0xFFFF)


@st.composite
def frames(draw: st.DrawFn, max_payload: int = 300) -> Frame:
    return Frame(
        draw(frame_types),
        draw(st.binary(max_size=max_payload)),
        seq=draw(u16),
        ack=draw(u16),
        request_id=draw(u16),
        flags=draw(st.integers(0, 255)),
    )


# --- layout ------------------------------------------------------------------------------


def test_decoded_layout_is_the_documented_one() -> None:
    encoded = encode_frame(
        FrameType.REQUEST, b"\xa0", seq=0x0102, ack=0x0304, request_id=0x0506, flags=0x02
    )
    assert encoded.endswith(b"\x00")
    decoded = cobs.decode(encoded[:-1])
    assert decoded[:13] == bytes.fromhex("a5 10 10 02 0201 0403 0605 0100 a0")
    assert decoded[13:] == struct.pack("<I", binascii.crc32(decoded[:13]))


def test_documented_example_frame() -> None:
    # The worked example in docs/protocol.md ("A worked example"); keep them in step.
    payload = Request("ping").to_payload()
    assert payload.hex(" ") == "a1 63 63 6d 64 64 70 69 6e 67"
    encoded = encode_frame(FrameType.REQUEST, payload, seq=1, ack=0xFFFF, request_id=7)
    assert encoded.hex(" ") == (
        "04 a5 10 10 02 01 04 ff ff 07 02 0a 0f a1 63 63 6d 64 64 70 69 6e 67 2b 20 4d 92 00"
    )


def test_crc_is_zlibs_crc32() -> None:
    assert binascii.crc32(b"123456789") == 0xCBF43926  # the check value docs/protocol.md quotes


@pytest.mark.parametrize("frame_type", list(FrameType))
@pytest.mark.parametrize("size", [0, 1, 253, 254, 255, 508, DEFAULT_MAX_PAYLOAD])
def test_round_trip_every_type_and_size(frame_type: FrameType, size: int) -> None:
    payload = bytes((i * 7 + 1) % 256 for i in range(size))
    frame = Frame(frame_type, payload, seq=65535, ack=1, request_id=65535, flags=3)
    assert decode_all(frame.encode()) == [frame]


@given(frames())
def test_round_trip_any_frame(frame: Frame) -> None:
    assert decode_all(frame.encode()) == [frame]


@given(frames())
def test_encoded_frame_never_looks_like_smp_or_contains_a_delimiter(frame: Frame) -> None:
    encoded = frame.encode()
    assert encoded[-1] == 0 and 0 not in encoded[:-1]
    assert encoded[1] == MARKER
    assert encoded[:2] not in (b"\x06\x09", b"\x04\x14")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seq": 0x10000},
        {"ack": -1},
        {"request_id": 0x10000},
        {"flags": 256},
        {"version": 256},
        {"payload": bytes(0x10000)},
    ],
)
def test_encode_rejects_fields_out_of_range(kwargs: dict[str, Any]) -> None:
    payload = kwargs.pop("payload", b"")
    with pytest.raises(ValueError):
        encode_frame(FrameType.EVENT, payload, **kwargs)


def test_frame_types_split_into_control_and_data() -> None:
    assert {t for t in FrameType if t.sequenced} == DATA_TYPES
    assert {FrameType.REQUEST, FrameType.RESPONSE, FrameType.ERROR, FrameType.EVENT} == DATA_TYPES


def test_max_encoded_size_bounds_every_frame() -> None:
    for size in (0, 237, 238, 492, 1024):
        worst = encode_frame(FrameType.EVENT, b"\xff" * size)
        assert len(worst) - 1 <= max_encoded_size(size)


# --- decode errors ------------------------------------------------------------------------


def _bad_crc() -> bytes:
    body = bytearray(body_of(payload=b"\xa0"))
    body[12] ^= 0x01
    return chunk_of(bytes(body))


DECODE_ERRORS: dict[DecodeErrorKind, bytes] = {
    # the code byte promises 15 bytes and two follow
    DecodeErrorKind.BAD_COBS: b"\x10\xa5\x01",
    DecodeErrorKind.TRUNCATED: chunk_of(body_of()[:10]),
    DecodeErrorKind.BAD_MARKER: chunk_of(body_of(marker=0x5A)),
    DecodeErrorKind.BAD_CRC: _bad_crc(),
    DecodeErrorKind.BAD_VERSION: chunk_of(body_of(version=0x21)),
    DecodeErrorKind.TOO_LONG: chunk_of(body_of(length=DEFAULT_MAX_PAYLOAD + 1)),
    DecodeErrorKind.LENGTH_MISMATCH: chunk_of(body_of(payload=b"\xa0", length=2)),
    DecodeErrorKind.UNKNOWN_TYPE: chunk_of(body_of(frame_type=0x7E)),
}


def test_every_decode_error_kind_has_a_case() -> None:
    assert set(DECODE_ERRORS) == set(DecodeErrorKind)


@pytest.mark.parametrize("kind", list(DecodeErrorKind))
def test_decode_error_paths(kind: DecodeErrorKind) -> None:
    good = encode_frame(FrameType.EVENT, b"\xa0", seq=9)
    items = decode_all(DECODE_ERRORS[kind] + b"\x00" + good)
    assert len(items) == 2
    corrupt, frame = items
    assert isinstance(corrupt, CorruptFrame)
    assert corrupt.kind is kind
    assert corrupt.raw == DECODE_ERRORS[kind]
    # the good frame after the delimiter survives whatever came before it
    assert frame == Frame(FrameType.EVENT, b"\xa0", seq=9)


def test_newer_minor_version_is_accepted() -> None:
    chunk = chunk_of(body_of(version=0x1F, payload=b"\xa0"))
    [frame] = decode_all(chunk + b"\x00")
    assert isinstance(frame, Frame) and frame.version == 0x1F


def test_bad_version_reports_the_version_byte() -> None:
    [corrupt] = decode_all(DECODE_ERRORS[DecodeErrorKind.BAD_VERSION] + b"\x00")
    assert isinstance(corrupt, CorruptFrame)
    assert corrupt.version == 0x21
    error = corrupt.error()
    assert isinstance(error, ProtocolVersionMismatch)
    assert (error.local, error.remote) == (PROTOCOL_VERSION, 0x21)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        (DecodeErrorKind.BAD_COBS, BadCobs),
        (DecodeErrorKind.TRUNCATED, TruncatedFrame),
        (DecodeErrorKind.BAD_MARKER, BadMarker),
        (DecodeErrorKind.BAD_CRC, BadCrc),
        (DecodeErrorKind.TOO_LONG, FrameTooLong),
        (DecodeErrorKind.LENGTH_MISMATCH, LengthMismatch),
        (DecodeErrorKind.UNKNOWN_TYPE, UnknownFrameType),
    ],
)
def test_corrupt_frame_error_classes(kind: DecodeErrorKind, cls: type[FrameDecodeError]) -> None:
    [corrupt] = decode_all(DECODE_ERRORS[kind] + b"\x00")
    assert isinstance(corrupt, CorruptFrame)
    error = corrupt.error()
    assert type(error) is cls
    assert isinstance(error, LinkFailure) and error.raw == DECODE_ERRORS[kind]


def test_a_chunk_with_a_zero_inside_is_bad_cobs() -> None:
    # Only reachable by calling decode_frame directly; the stream decoder splits at zeros.
    item = decode_frame(b"\x03\xa5\x00\x01")
    assert isinstance(item, CorruptFrame) and item.kind is DecodeErrorKind.BAD_COBS


def test_oversize_chunk_is_too_long_before_decoding() -> None:
    chunk = b"\x02\xa5" + b"\x01" * (max_encoded_size(MIN_MAX_PAYLOAD) + 10)
    item = decode_frame(chunk, MIN_MAX_PAYLOAD)
    assert isinstance(item, CorruptFrame) and item.kind is DecodeErrorKind.TOO_LONG


@pytest.mark.parametrize(
    "text",
    [b"*** Booting Zephyr OS ***\r\n", b"x", b"\x01\xa5\x02", b"\x06\x09AAEAAQ==\n", b"\xff\xfe"],
)
def test_bytes_that_are_not_frames_are_noise(text: bytes) -> None:
    good = encode_frame(FrameType.RESPONSE, b"", seq=3)
    assert decode_all(text + b"\x00" + good) == [Noise(text), Frame(FrameType.RESPONSE, seq=3)]


# --- streaming ----------------------------------------------------------------------------


def test_frame_split_at_every_position_decodes_the_same() -> None:
    frame = Frame(FrameType.EVENT, bytes(range(1, 255)) * 2, seq=4, ack=5, request_id=6)
    encoded = b"\x00" + frame.encode()
    for cut in range(len(encoded) + 1):
        decoder = FrameDecoder()
        assert decoder.feed(encoded[:cut]) + decoder.feed(encoded[cut:]) == [frame]


def test_byte_at_a_time() -> None:
    sent = [Frame(FrameType.REQUEST, bytes([i]) * i, seq=i) for i in range(20)]
    decoder = FrameDecoder()
    got = []
    for byte in b"".join(f.encode() for f in sent):
        got += decoder.feed(bytes([byte]))
    assert got == sent
    assert decoder.buffered == 0


def test_empty_chunks_and_empty_feeds_produce_nothing() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\x00\x00\x00") == []


def test_runaway_frame_is_bounded_and_skipped() -> None:
    decoder = FrameDecoder(MIN_MAX_PAYLOAD)
    runaway = b"\x02\xa5" + b"\x01" * (3 * decoder.max_chunk)
    items: list[Any] = []
    for i in range(0, len(runaway), 100):
        items += decoder.feed(runaway[i : i + 100])
        assert decoder.buffered <= decoder.max_chunk
    good = encode_frame(FrameType.EVENT, b"\xa0")
    items += decoder.feed(b"\x00" + good)
    assert isinstance(items[0], CorruptFrame) and items[0].kind is DecodeErrorKind.TOO_LONG
    assert all(isinstance(item, Noise) for item in items[1:-1])
    first, *rest = items[:-1]
    assert first.raw + b"".join(item.data for item in rest) == runaway
    assert items[-1] == Frame(FrameType.EVENT, b"\xa0")


def test_endless_boot_text_is_reported_as_bounded_noise() -> None:
    decoder = FrameDecoder(MIN_MAX_PAYLOAD)
    text = b"log line without end " * 500
    items = decoder.feed(text)
    assert items and all(isinstance(item, Noise) for item in items)
    assert decoder.buffered <= decoder.max_chunk
    items += decoder.feed(b"\x00")
    assert b"".join(item.data for item in items if isinstance(item, Noise)) == text


def test_reset_forgets_a_partial_frame() -> None:
    decoder = FrameDecoder()
    encoded = encode_frame(FrameType.EVENT, b"\xa0")
    decoder.feed(encoded[:5])  # the port closes mid-frame
    decoder.reset()
    assert decoder.buffered == 0
    # without the reset the stale prefix would glue onto the frame and spoil it
    assert decoder.feed(encoded) == [Frame(FrameType.EVENT, b"\xa0")]


def test_decoder_rejects_impossible_limits() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(0x10000)


# --- properties ---------------------------------------------------------------------------

ITEM_TYPES = (Frame, CorruptFrame, Noise)


def _splits(source: st.DataObject, data: bytes) -> list[bytes]:
    cuts = sorted(source.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _feed_in_pieces(data: bytes, pieces: list[bytes], max_payload: int = 300) -> list[Any]:
    assert b"".join(pieces) == data
    decoder = FrameDecoder(MIN_MAX_PAYLOAD if max_payload < MIN_MAX_PAYLOAD else max_payload)
    items: list[Any] = []
    for piece in pieces:
        items += decoder.feed(piece)
        assert decoder.buffered <= decoder.max_chunk
    return items


@given(st.data())
def test_random_bytes_never_crash_and_yield_only_documented_items(data: st.DataObject) -> None:
    raw = data.draw(st.binary(max_size=2000))
    items = _feed_in_pieces(raw, _splits(data, raw))
    for item in items:
        assert isinstance(item, ITEM_TYPES)
        if isinstance(item, CorruptFrame):
            assert item.kind in DecodeErrorKind
            assert isinstance(item.error(), PrinterLinkError)


@given(st.data())
def test_random_frame_like_chunks_never_crash(data: st.DataObject) -> None:
    # Random bytes rarely start "xx A5"; these always do, so they reach the deep checks.
    body = data.draw(st.binary(min_size=0, max_size=80))
    chunk = bytes([data.draw(st.integers(2, 255)), MARKER]) + body.replace(b"\x00", b"\x01")
    [item] = decode_all(chunk + b"\x00")
    assert isinstance(item, ITEM_TYPES)


@given(st.data())
def test_concatenated_frames_split_anywhere_decode_in_order(data: st.DataObject) -> None:
    sent = data.draw(st.lists(frames(), max_size=6))
    stream = b"".join(f.encode() for f in sent)
    assert _feed_in_pieces(stream, _splits(data, stream), 300) == sent


@given(st.data())
def test_truncated_frame_then_good_frame(data: st.DataObject) -> None:
    first, second = data.draw(frames()), data.draw(frames())
    encoded = first.encode()[:-1]
    cut = data.draw(st.integers(0, len(encoded) - 1))
    items = decode_all(encoded[:cut] + b"\x00" + second.encode(), 300)
    assert items[-1] == second
    assert not any(isinstance(item, Frame) for item in items[:-1])


@given(st.data())
def test_noise_between_frames_is_reported_and_the_next_frame_decodes(data: st.DataObject) -> None:
    first, second = data.draw(frames()), data.draw(frames())
    noise = data.draw(st.binary(min_size=1, max_size=200))
    stream = first.encode() + noise + b"\x00" + second.encode()
    items = _feed_in_pieces(stream, _splits(data, stream), 300)
    assert items[0] == first and items[-1] == second
    middle = items[1:-1]
    if noise.strip(b"\x00"):
        assert middle, "the noise must be reported"
    if 0 not in noise and (len(noise) < 2 or noise[1] != MARKER or noise[0] < 2):
        assert middle == [Noise(noise)]


@settings(max_examples=300)
@given(st.data())
def test_bit_flips_never_produce_a_wrong_frame(data: st.DataObject) -> None:
    sent = data.draw(st.lists(frames(max_payload=60), min_size=1, max_size=5))
    encoded = [f.encode() for f in sent]
    stream = bytearray(b"\x00" + b"".join(encoded))
    flips = data.draw(st.lists(st.integers(0, len(stream) * 8 - 1), min_size=1, max_size=4))
    for bit in flips:
        stream[bit // 8] ^= 1 << (bit % 8)
    items = decode_all(bytes(stream), 300)
    for item in items:
        assert isinstance(item, ITEM_TYPES)
        if isinstance(item, Frame):
            assert item in sent  # CRC-32: a damaged frame is never taken for a good one
    # Every frame whose bytes and delimiters were untouched is still decoded.
    touched = {bit // 8 for bit in flips}
    start = 1
    for frame, enc in zip(sent, encoded, strict=True):
        span = range(start - 1, start + len(enc))  # leading delimiter .. trailing delimiter
        if not touched.intersection(span):
            assert frame in items
        start += len(enc)


# --- error codes and the hierarchy ---------------------------------------------------------


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_has_its_own_rejection(code: ErrorCode) -> None:
    error = ErrorReply(code, "no").to_exception()
    assert isinstance(error, DeviceRejected) and type(error) is not DeviceRejected
    assert error.code is code and error.message == "no"
    assert rejection_for(int(code)).__class__ is type(error)


def test_unknown_error_code_is_plain_device_rejected() -> None:
    error = rejection_for(200, "vendor", {"x": 1})
    assert type(error) is DeviceRejected
    assert error.code == 200 and error.detail == {"x": 1}
    assert "200" in str(error)


def test_only_busy_is_retryable() -> None:
    assert DeviceBusy.retryable
    assert not UnknownCommand.retryable and not DeviceRejected.retryable


def test_world_failures_and_misuse_are_separate_branches() -> None:
    world: list[PrinterLinkError] = [
        LinkDown(LinkDownReason.SILENCE),
        LinkTimeout("no answer"),
        DeviceReset(1, 2),
        BadCrc("crc"),
    ]
    misuse: list[PrinterLinkError] = [
        ProtocolVersionMismatch(0x10, 0x20),
        MalformedPayload("x"),
        PayloadTooLarge(2000, 1024),
        rejection_for(ErrorCode.BAD_ARGUMENT),
        IncompatiblePeer("two hosts"),
    ]
    for error in world:
        assert isinstance(error, LinkFailure) and not isinstance(error, ProtocolMisuse)
    for error in misuse:
        assert isinstance(error, ProtocolMisuse) and not isinstance(error, LinkFailure)
    for error in world + misuse:
        assert isinstance(error, PrinterLinkError)
    assert isinstance(LinkTimeout("x"), TimeoutError)
    assert isinstance(PayloadTooLarge(2, 1), ValueError)
    assert LinkDown(LinkDownReason.PEER_RESET).reason is LinkDownReason.PEER_RESET


def test_flags_are_distinct_bits() -> None:
    assert Flag.RETRANSMIT & Flag.ACK_NOW == 0
