"""RFC 8010 encoding: known octets, round trips, and malformed input (a clear error,
never another exception, and bounded work)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.net._ipp_codec import (
    MAX_COLLECTION_DEPTH,
    Attribute,
    AttributeGroup,
    Collection,
    DateTime,
    GroupTag,
    IntRange,
    IppDecodeError,
    IppIncomplete,
    IppMessage,
    LangString,
    Resolution,
    Value,
    ValueTag,
    decode_message,
    encode_message,
)


def _field(tag: int, name: bytes, value: bytes) -> bytes:
    return (bytes([tag]) + struct.pack(">H", len(name)) + name
            + struct.pack(">H", len(value)) + value)


GET_PRINTER_ATTRIBUTES = (
    b"\x02\x00\x00\x0b\x00\x00\x00\x01"
    + b"\x01"
    + _field(0x47, b"attributes-charset", b"utf-8")
    + _field(0x48, b"attributes-natural-language", b"en")
    + _field(0x45, b"printer-uri", b"ipp://localhost/ipp/print")
    + _field(0x44, b"requested-attributes", b"printer-state")
    + _field(0x44, b"", b"marker-levels")
    + b"\x03"
)


def test_a_request_decodes_to_its_groups_and_values() -> None:
    message, offset = decode_message(GET_PRINTER_ATTRIBUTES + b"DATA")
    assert message.version == (2, 0)
    assert message.code == 0x000B
    assert message.request_id == 1
    assert offset == len(GET_PRINTER_ATTRIBUTES)
    group = message.group(GroupTag.OPERATION)
    assert group is not None
    assert [a.name for a in group.attributes] == [
        "attributes-charset", "attributes-natural-language", "printer-uri",
        "requested-attributes"]
    requested = group.get("requested-attributes")
    assert requested is not None
    assert list(requested) == ["printer-state", "marker-levels"]
    assert encode_message(message) == GET_PRINTER_ATTRIBUTES


def test_a_collection_is_member_names_and_values_between_its_delimiters() -> None:
    media_col = Collection((
        Attribute.of("media-size", ValueTag.BEG_COLLECTION, Collection((
            Attribute.of("x-dimension", ValueTag.INTEGER, 21000),
            Attribute.of("y-dimension", ValueTag.INTEGER, 29700),
        ))),
        Attribute.of("media-source", ValueTag.KEYWORD, "tray-1"),
    ))
    message = IppMessage((2, 0), 0x0002, 7, (
        AttributeGroup(GroupTag.JOB, (Attribute.of("media-col", ValueTag.BEG_COLLECTION,
                                                   media_col),)),))
    octets = encode_message(message)
    expected = (
        b"\x02\x00\x00\x02\x00\x00\x00\x07\x02"
        + _field(0x34, b"media-col", b"")
        + _field(0x4A, b"", b"media-size")
        + _field(0x34, b"", b"")
        + _field(0x4A, b"", b"x-dimension") + _field(0x21, b"", struct.pack(">i", 21000))
        + _field(0x4A, b"", b"y-dimension") + _field(0x21, b"", struct.pack(">i", 29700))
        + _field(0x37, b"", b"")
        + _field(0x4A, b"", b"media-source") + _field(0x44, b"", b"tray-1")
        + _field(0x37, b"", b"")
        + b"\x03"
    )
    assert octets == expected
    assert decode_message(octets) == (message, len(octets))


def test_out_of_band_values_have_no_octets() -> None:
    message = IppMessage((1, 1), 0, 3, (
        AttributeGroup(GroupTag.UNSUPPORTED, (Attribute.of("sides", ValueTag.UNSUPPORTED),)),))
    octets = encode_message(message)
    assert octets.endswith(_field(0x10, b"sides", b"") + b"\x03")
    assert decode_message(octets)[0] == message


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_field(0x21, b"copies", b"\x00\x01"), "an integer is 4 octets"),
        (_field(0x22, b"flag", b"\x02"), "a boolean is one octet"),
        (_field(0x44, b"", b"x"), "no attribute before it"),
        (_field(0x4A, b"", b"x"), "outside a collection"),
        (_field(0x44, b"k", b"\xff\xfe"), "not UTF-8"),
        (_field(0x31, b"d", b"\x00" * 10), "a dateTime is 11 octets"),
        (_field(0x35, b"t", b"\x00\x09en\x00\x00"), "its language runs past"),
    ],
)
def test_malformed_values_are_named(body: bytes, reason: str) -> None:
    with pytest.raises(IppDecodeError, match=reason):
        decode_message(b"\x02\x00\x00\x0b\x00\x00\x00\x01\x01" + body + b"\x03")


def test_an_attribute_before_any_group_and_the_reserved_delimiter() -> None:
    with pytest.raises(IppDecodeError, match="before any group"):
        decode_message(b"\x02\x00\x00\x0b\x00\x00\x00\x01" + _field(0x44, b"k", b"v") + b"\x03")
    with pytest.raises(IppDecodeError, match="reserved"):
        decode_message(b"\x02\x00\x00\x0b\x00\x00\x00\x01\x00\x03")


def test_a_truncated_message_is_incomplete_at_every_cut() -> None:
    for cut in range(len(GET_PRINTER_ATTRIBUTES)):
        with pytest.raises(IppIncomplete):
            decode_message(GET_PRINTER_ATTRIBUTES[:cut])


def test_collections_nest_only_so_deep() -> None:
    body = _field(0x34, b"c", b"")
    for _ in range(MAX_COLLECTION_DEPTH + 1):
        body += _field(0x4A, b"", b"m") + _field(0x34, b"", b"")
    with pytest.raises(IppDecodeError, match="nested deeper"):
        decode_message(b"\x02\x00\x00\x0b\x00\x00\x00\x01\x01" + body)


def test_unknown_tags_are_kept_as_octets() -> None:
    octets = b"\x02\x00\x00\x0b\x00\x00\x00\x01\x01" + _field(0x5F, b"x", b"\x01\x02") + b"\x03"
    message, _ = decode_message(octets)
    group = message.groups[0]
    assert group.attributes == (Attribute("x", (Value(0x5F, b"\x01\x02"),)),)
    assert encode_message(message) == octets


# -- properties ----------------------------------------------------------------------

_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_strings = st.text(max_size=20)
_int32 = st.integers(-(2**31), 2**31 - 1)


def _value() -> st.SearchStrategy[Value]:
    leaf = st.one_of(
        st.builds(Value, st.just(ValueTag.INTEGER), _int32),
        st.builds(Value, st.just(ValueTag.ENUM), _int32),
        st.builds(Value, st.just(ValueTag.BOOLEAN), st.booleans()),
        st.builds(Value, st.sampled_from([ValueTag.KEYWORD, ValueTag.NAME, ValueTag.TEXT,
                                          ValueTag.URI, ValueTag.MIME_MEDIA_TYPE]), _strings),
        st.builds(Value, st.just(ValueTag.OCTET_STRING), st.binary(max_size=20)),
        st.builds(Value, st.sampled_from([ValueTag.NO_VALUE, ValueTag.UNKNOWN,
                                          ValueTag.UNSUPPORTED]), st.none()),
        st.builds(Value, st.just(ValueTag.RANGE_OF_INTEGER), st.builds(IntRange, _int32, _int32)),
        st.builds(Value, st.just(ValueTag.RESOLUTION),
                  st.builds(Resolution, _int32, _int32, st.sampled_from([3, 4]))),
        st.builds(Value, st.just(ValueTag.TEXT_WITH_LANGUAGE),
                  st.builds(LangString, st.sampled_from(["en", "en-us", "fr"]), _strings)),
        st.builds(Value, st.just(ValueTag.DATE_TIME), st.builds(
            DateTime, st.integers(0, 65535), st.integers(1, 12), st.integers(1, 31),
            st.integers(0, 23), st.integers(0, 59), st.integers(0, 60), st.integers(0, 9),
            st.sampled_from(["+", "-"]), st.integers(0, 13), st.integers(0, 59))),
    )
    return st.recursive(
        leaf,
        lambda inner: st.builds(Value, st.just(ValueTag.BEG_COLLECTION), st.builds(
            Collection, st.lists(st.builds(Attribute, _names, st.lists(inner, min_size=1,
                                                                        max_size=3).map(tuple)),
                                 max_size=3).map(tuple))),
        max_leaves=8,
    )


_attribute = st.builds(Attribute, _names, st.lists(_value(), min_size=1, max_size=3).map(tuple))
_group = st.builds(AttributeGroup, st.sampled_from([1, 2, 4, 5, 6, 7, 9]),
                   st.lists(_attribute, max_size=4).map(tuple))
_message = st.builds(IppMessage, st.tuples(st.integers(0, 255), st.integers(0, 255)),
                     st.integers(0, 0xFFFF), _int32, st.lists(_group, max_size=3).map(tuple))


@settings(max_examples=300, deadline=None)
@given(_message, st.binary(max_size=16))
def test_every_message_round_trips(message: IppMessage, data: bytes) -> None:
    octets = encode_message(message)
    assert decode_message(octets + data) == (message, len(octets))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_octets_raise_only_the_decode_error(octets: bytes) -> None:
    with contextlib.suppress(IppDecodeError):
        decode_message(octets)


@settings(max_examples=120, deadline=None)
@given(_message, st.data())
def test_corrupted_messages_raise_only_the_decode_error(message: IppMessage,
                                                        data: st.DataObject) -> None:
    octets = bytearray(encode_message(message))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(octets) - 1))
        octets[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(IppDecodeError):
        decode_message(bytes(octets))
