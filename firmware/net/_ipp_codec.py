"""The IPP message encoding (RFC 8010), both ways, written out by hand.

A message is a version, an operation-id (request) or status-code (response), a
request-id, attribute groups and, after the end-of-attributes tag, document data.

Contract
--------
* :func:`decode_message` reads the message head and attribute groups from the start of
  a buffer and returns the :class:`IppMessage` with the offset where document data
  starts. A buffer that ends before the end-of-attributes tag raises
  :class:`IppIncomplete` (the caller reads more and tries again); anything else that is
  not RFC 8010 raises :class:`IppDecodeError` with a one-line reason. Nothing else is
  raised, whatever the bytes.
* Memory is bounded by the input: the decoder allocates only what it returns, and
  collections nest at most :data:`MAX_COLLECTION_DEPTH` deep.
* Every value carries its own tag (one attribute may mix tags, e.g. ``keyword | name``,
  or hold an out-of-band value). Decoded value types: ``int`` (integer, enum), ``bool``,
  ``None`` (out-of-band tags), ``bytes`` (octetString and tags this module does not
  know), ``str`` (the character-string tags), :class:`DateTime`, :class:`Resolution`,
  :class:`IntRange`, :class:`LangString` and :class:`Collection`.
* :func:`encode_message` is the inverse: ``decode_message(encode_message(m))`` gives
  ``m`` back for every message it accepts.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

MAX_COLLECTION_DEPTH = 16
"""Collections nest deeper than anything the IPP registry defines (3), never unbounded."""


class GroupTag(enum.IntEnum):
    """Delimiter tags: each starts an attribute group (0x03 ends them all)."""

    OPERATION = 0x01
    JOB = 0x02
    END_OF_ATTRIBUTES = 0x03
    PRINTER = 0x04
    UNSUPPORTED = 0x05
    SUBSCRIPTION = 0x06
    EVENT_NOTIFICATION = 0x07
    RESOURCE = 0x08
    DOCUMENT = 0x09
    SYSTEM = 0x0A


class ValueTag(enum.IntEnum):
    # Out-of-band: no value.
    UNSUPPORTED = 0x10
    UNKNOWN = 0x12
    NO_VALUE = 0x13
    NOT_SETTABLE = 0x15
    DELETE_ATTRIBUTE = 0x16
    ADMIN_DEFINE = 0x17
    # Integers.
    INTEGER = 0x21
    BOOLEAN = 0x22
    ENUM = 0x23
    # Octet strings.
    OCTET_STRING = 0x30
    DATE_TIME = 0x31
    RESOLUTION = 0x32
    RANGE_OF_INTEGER = 0x33
    BEG_COLLECTION = 0x34
    TEXT_WITH_LANGUAGE = 0x35
    NAME_WITH_LANGUAGE = 0x36
    END_COLLECTION = 0x37
    # Character strings.
    TEXT = 0x41
    NAME = 0x42
    KEYWORD = 0x44
    URI = 0x45
    URI_SCHEME = 0x46
    CHARSET = 0x47
    NATURAL_LANGUAGE = 0x48
    MIME_MEDIA_TYPE = 0x49
    MEMBER_ATTR_NAME = 0x4A
    EXTENSION = 0x7F


OUT_OF_BAND_TAGS = frozenset({0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17})
_INT_TAGS = frozenset({ValueTag.INTEGER, ValueTag.ENUM})
_STRING_TAGS = frozenset({
    ValueTag.TEXT, ValueTag.NAME, ValueTag.KEYWORD, ValueTag.URI, ValueTag.URI_SCHEME,
    ValueTag.CHARSET, ValueTag.NATURAL_LANGUAGE, ValueTag.MIME_MEDIA_TYPE,
    ValueTag.MEMBER_ATTR_NAME,
})
_LANG_TAGS = frozenset({ValueTag.TEXT_WITH_LANGUAGE, ValueTag.NAME_WITH_LANGUAGE})


class IppDecodeError(ValueError):
    """Bytes that are not an RFC 8010 message; the message says why, in one line."""


class IppIncomplete(IppDecodeError):
    """The buffer ends before the end-of-attributes tag: read more and decode again."""


class DateTime(NamedTuple):
    """RFC 2579 DateAndTime, field by field (11 octets on the wire)."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    deci_second: int = 0
    utc_sign: str = "+"
    utc_hours: int = 0
    utc_minutes: int = 0


class Resolution(NamedTuple):
    cross_feed: int
    feed: int
    units: int = 3
    """3: dots per inch, 4: dots per centimetre."""


class IntRange(NamedTuple):
    lower: int
    upper: int


class LangString(NamedTuple):
    """textWithLanguage / nameWithLanguage."""

    language: str
    text: str


class Value(NamedTuple):
    """One value of an attribute, with its own tag (an ``int``: tags this module does
    not know are kept, their value as ``bytes``)."""

    tag: int
    value: object


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    values: tuple[Value, ...]

    @classmethod
    def of(cls, name: str, tag: int, *values: object) -> Attribute:
        """An attribute whose values all have ``tag`` (an out-of-band tag: no values)."""
        if tag in OUT_OF_BAND_TAGS:
            return cls(name, (Value(tag, None),))
        if not values:
            raise ValueError(f"{name}: an attribute has at least one value")
        return cls(name, tuple(Value(tag, v) for v in values))

    @property
    def tag(self) -> int:
        """The first value's tag."""
        return self.values[0].tag

    @property
    def value(self) -> object:
        """The first value."""
        return self.values[0].value

    def __iter__(self) -> Iterator[object]:
        return (v.value for v in self.values)


@dataclass(frozen=True, slots=True)
class Collection:
    """A collection value: its member attributes, in order."""

    members: tuple[Attribute, ...]

    def get(self, name: str) -> Attribute | None:
        for member in self.members:
            if member.name == name:
                return member
        return None


@dataclass(frozen=True, slots=True)
class AttributeGroup:
    tag: int
    attributes: tuple[Attribute, ...]

    def get(self, name: str) -> Attribute | None:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        return None

    def __contains__(self, name: object) -> bool:
        return any(a.name == name for a in self.attributes)


@dataclass(frozen=True, slots=True)
class IppMessage:
    version: tuple[int, int]
    code: int
    """The operation-id of a request, the status-code of a response."""
    request_id: int
    groups: tuple[AttributeGroup, ...] = ()

    def group(self, tag: int) -> AttributeGroup | None:
        """The first group with ``tag``."""
        for group in self.groups:
            if group.tag == tag:
                return group
        return None

    def groups_of(self, tag: int) -> list[AttributeGroup]:
        return [g for g in self.groups if g.tag == tag]


# -- decoding ----------------------------------------------------------------------

_U16 = struct.Struct(">H")
_HEAD = struct.Struct(">BBHi")
_DATE = struct.Struct(">HBBBBBBcBB")
_RESOLUTION = struct.Struct(">iib")
_RANGE = struct.Struct(">ii")
_INT = struct.Struct(">i")


class _Reader:
    """A cursor over the buffer; running off its end is :class:`IppIncomplete`."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self.buf = memoryview(buf)
        self.pos = pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise IppIncomplete("the message ends inside its attributes")
        data = bytes(self.buf[self.pos:end])
        self.pos = end
        return data

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise IppIncomplete("the message ends inside its attributes")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def peek(self) -> int:
        if self.pos >= len(self.buf):
            raise IppIncomplete("the message ends inside its attributes")
        return self.buf[self.pos]


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IppDecodeError(f"{what}: not UTF-8 (byte {e.start})") from None


def _decode_value(tag: int, raw: bytes, name: str) -> object:
    size = len(raw)
    if tag in OUT_OF_BAND_TAGS:
        return None
    if tag in _INT_TAGS:
        if size != 4:
            raise IppDecodeError(f"{name}: an integer is 4 octets, got {size}")
        return int(_INT.unpack(raw)[0])
    if tag == ValueTag.BOOLEAN:
        if size != 1 or raw[0] > 1:
            raise IppDecodeError(f"{name}: a boolean is one octet, 0 or 1")
        return raw[0] == 1
    if tag in _STRING_TAGS:
        return _text(raw, name)
    if tag in _LANG_TAGS:
        return _decode_lang_string(raw, name)
    if tag == ValueTag.DATE_TIME:
        if size != 11:
            raise IppDecodeError(f"{name}: a dateTime is 11 octets, got {size}")
        y, mo, d, h, mi, s, ds, sign, uh, um = _DATE.unpack(raw)
        return DateTime(y, mo, d, h, mi, s, ds, sign.decode("latin-1"), uh, um)
    if tag == ValueTag.RESOLUTION:
        if size != 9:
            raise IppDecodeError(f"{name}: a resolution is 9 octets, got {size}")
        return Resolution(*_RESOLUTION.unpack(raw))
    if tag == ValueTag.RANGE_OF_INTEGER:
        if size != 8:
            raise IppDecodeError(f"{name}: a rangeOfInteger is 8 octets, got {size}")
        return IntRange(*_RANGE.unpack(raw))
    return raw  # octetString, and tags this module does not know


def _decode_lang_string(raw: bytes, name: str) -> LangString:
    if len(raw) < 4:
        raise IppDecodeError(f"{name}: a string with language is too short")
    lang_len = int(_U16.unpack_from(raw, 0)[0])
    if 2 + lang_len + 2 > len(raw):
        raise IppDecodeError(f"{name}: its language runs past the value")
    text_len = int(_U16.unpack_from(raw, 2 + lang_len)[0])
    if 4 + lang_len + text_len != len(raw):
        raise IppDecodeError(f"{name}: its lengths do not add up to the value's")
    return LangString(_text(raw[2:2 + lang_len], name),
                      _text(raw[4 + lang_len:], name))


def _read_field(r: _Reader) -> tuple[int, str, bytes]:
    """A value tag (already peeked), its name and its value octets."""
    tag = r.byte()
    name = _text(r.take(r.u16()), "attribute name")
    raw = r.take(r.u16())
    if tag == ValueTag.EXTENSION:
        if len(raw) < 4:
            raise IppDecodeError(f"{name}: an extension tag needs 4 octets of type")
        tag = int(_INT.unpack_from(raw, 0)[0])
        if tag < 0:
            raise IppDecodeError(f"{name}: extension type {tag} is out of range")
        raw = raw[4:]
    return tag, name, raw


def _read_collection(r: _Reader, name: str, depth: int) -> Collection:
    if depth >= MAX_COLLECTION_DEPTH:
        raise IppDecodeError(f"{name}: collections nested deeper than {MAX_COLLECTION_DEPTH}")
    members: list[Attribute] = []
    member_name: str | None = None
    values: list[Value] = []
    while True:
        if r.peek() <= 0x0F:
            raise IppDecodeError(f"{name}: a collection ends without endCollection")
        tag, field_name, raw = _read_field(r)
        if field_name:
            raise IppDecodeError(f"{name}: a collection's member has a name of its own")
        if tag == ValueTag.END_COLLECTION:
            if member_name is not None:
                if not values:
                    raise IppDecodeError(f"{name}.{member_name}: a member with no value")
                members.append(Attribute(member_name, tuple(values)))
            return Collection(tuple(members))
        if tag == ValueTag.MEMBER_ATTR_NAME:
            if member_name is not None:
                if not values:
                    raise IppDecodeError(f"{name}.{member_name}: a member with no value")
                members.append(Attribute(member_name, tuple(values)))
            member_name = _text(raw, name)
            if not member_name:
                raise IppDecodeError(f"{name}: a member with an empty name")
            values = []
            continue
        if member_name is None:
            raise IppDecodeError(f"{name}: a collection value before its member's name")
        if tag == ValueTag.BEG_COLLECTION:
            values.append(Value(tag, _read_collection(r, f"{name}.{member_name}", depth + 1)))
        else:
            values.append(Value(tag, _decode_value(tag, raw, f"{name}.{member_name}")))


def decode_message(buf: bytes | bytearray | memoryview) -> tuple[IppMessage, int]:
    """The message at the start of ``buf`` and the offset of its document data. See the
    module docstring for what is raised."""
    if len(buf) < 8:
        raise IppIncomplete("the message ends inside its header")
    major, minor, code, request_id = _HEAD.unpack_from(buf, 0)
    r = _Reader(buf, 8)
    groups: list[AttributeGroup] = []
    group_tag: int | None = None
    attributes: list[Attribute] = []
    current: tuple[str, list[Value]] | None = None

    def close_attribute() -> None:
        nonlocal current
        if current is not None:
            attributes.append(Attribute(current[0], tuple(current[1])))
            current = None

    while True:
        tag = r.peek()
        if tag <= 0x0F:
            r.byte()
            close_attribute()
            if group_tag is not None:
                groups.append(AttributeGroup(group_tag, tuple(attributes)))
                attributes = []
            if tag == GroupTag.END_OF_ATTRIBUTES:
                return IppMessage((major, minor), code, request_id,
                                  tuple(groups)), r.pos
            if tag == 0x00:
                raise IppDecodeError("delimiter tag 0x00 is reserved")
            group_tag = tag
            continue
        value_tag, name, raw = _read_field(r)
        if group_tag is None:
            raise IppDecodeError(f"attribute {name!r} before any group")
        if value_tag in (ValueTag.END_COLLECTION, ValueTag.MEMBER_ATTR_NAME):
            raise IppDecodeError(f"{value_tag:#04x} outside a collection")
        if name:
            close_attribute()
            current = (name, [])
        elif current is None:
            raise IppDecodeError("an additional value with no attribute before it")
        what = current[0]
        if value_tag == ValueTag.BEG_COLLECTION:
            current[1].append(Value(value_tag, _read_collection(r, what, 0)))
        else:
            current[1].append(Value(value_tag, _decode_value(value_tag, raw, what)))


# -- encoding ----------------------------------------------------------------------


def _encode_lang(value: LangString) -> bytes:
    lang = value.language.encode("utf-8")
    text = value.text.encode("utf-8")
    return _U16.pack(len(lang)) + lang + _U16.pack(len(text)) + text


def _value_octets(tag: int, value: object, name: str) -> bytes:
    if tag in OUT_OF_BAND_TAGS:
        return b""
    if tag in _INT_TAGS and isinstance(value, int) and not isinstance(value, bool):
        return _INT.pack(value)
    if tag == ValueTag.BOOLEAN and isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    if tag in _STRING_TAGS and isinstance(value, str):
        return value.encode("utf-8")
    if tag in _LANG_TAGS and isinstance(value, LangString):
        return _encode_lang(value)
    if tag == ValueTag.DATE_TIME and isinstance(value, DateTime):
        *fields, sign, uh, um = value
        return _DATE.pack(*fields, sign.encode("latin-1"), uh, um)
    if tag == ValueTag.RESOLUTION and isinstance(value, Resolution):
        return _RESOLUTION.pack(*value)
    if tag == ValueTag.RANGE_OF_INTEGER and isinstance(value, IntRange):
        return _RANGE.pack(*value)
    if isinstance(value, bytes) and tag not in _STRING_TAGS | _LANG_TAGS | _INT_TAGS:
        return value
    raise ValueError(f"{name}: cannot encode {type(value).__name__} as tag {tag:#04x}")


def _field(out: bytearray, tag: int, name: str, octets: bytes) -> None:
    name_octets = name.encode("utf-8")
    if tag > 0xFF:
        octets = _INT.pack(tag) + octets
        tag = ValueTag.EXTENSION
    if len(name_octets) > 0xFFFF or len(octets) > 0xFFFF:
        raise ValueError(f"{name}: a name or value longer than 65535 octets")
    out.append(tag)
    out += _U16.pack(len(name_octets))
    out += name_octets
    out += _U16.pack(len(octets))
    out += octets


def _encode_values(out: bytearray, name: str, values: Iterable[Value]) -> None:
    first = True
    for tag, value in values:
        field_name = name if first else ""
        first = False
        if tag == ValueTag.BEG_COLLECTION:
            if not isinstance(value, Collection):
                raise ValueError(f"{name}: a begCollection value must be a Collection")
            _field(out, tag, field_name, b"")
            for member in value.members:
                _field(out, ValueTag.MEMBER_ATTR_NAME, "", member.name.encode("utf-8"))
                _encode_values(out, "", member.values)
            _field(out, ValueTag.END_COLLECTION, "", b"")
        else:
            _field(out, tag, field_name, _value_octets(tag, value, name))


def encode_attribute(attribute: Attribute) -> bytes:
    """One attribute's octets (to be placed inside a group)."""
    out = bytearray()
    if not attribute.values:
        raise ValueError(f"{attribute.name}: an attribute has at least one value")
    _encode_values(out, attribute.name, attribute.values)
    return bytes(out)


def encode_message(message: IppMessage) -> bytes:
    """The message's octets, ending with the end-of-attributes tag (no document data)."""
    major, minor = message.version
    out = bytearray(_HEAD.pack(major, minor, message.code, message.request_id))
    for group in message.groups:
        out.append(group.tag)
        for attribute in group.attributes:
            out += encode_attribute(attribute)
    out.append(GroupTag.END_OF_ATTRIBUTES)
    return bytes(out)
