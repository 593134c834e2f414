"""The frame codec of the serial-attached board: bytes on the wire <-> :class:`Frame`.

Sans-IO and stateless apart from :class:`FrameDecoder`'s partial-frame buffer: no
threads, no ports, no clocks. docs/protocol.md is the normative description; this module
is its reference implementation, and the two must agree.

On the wire a frame is ``COBS(header | payload | crc32) 0x00``. The decoded frame,
little-endian::

    off  size  field
      0     1  marker      0xA5 (keeps an encoded frame from starting like SMP's 06 09 / 04 14)
      1     1  version     major << 4 | minor (this is 1.0 -> 0x10)
      2     1  type        FrameType
      3     1  flags       Flag bits; unknown bits are ignored
      4     2  seq         u16, wraps
      6     2  ack         u16: last in-order sequence received from the peer
      8     2  request_id  u16, 0 when none
     10     2  length      payload length n
     12     n  payload     CBOR (schemas below), or empty
  12+n     4  crc32       CRC-32 (zlib's) of bytes 0 .. 11+n

Contracts:

* :func:`encode_frame` returns the COBS bytes *followed by* the 0x00 delimiter; it raises
  :class:`ValueError` for a field out of range. A sender puts one 0x00 *before* a batch
  of frames as well, so that whatever preceded it on the line (boot text) cannot glue
  onto the first frame.
* :class:`FrameDecoder` never raises on any input. It returns, in the order the bytes
  arrived, :class:`Frame` for each good frame, :class:`CorruptFrame` for each chunk that
  claimed to be a frame and is not, and :class:`Noise` for bytes that are not frames.
* The payload schemas (:class:`Hello`, :class:`Request`, :class:`Response`,
  :class:`ErrorReply`, :class:`Event`) raise :class:`MalformedPayload` (or
  :class:`ProtocolVersionMismatch` for a HELLO of another major version) when parsing.
"""

from __future__ import annotations

import binascii
import contextlib
import enum
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import cbor2
from cobs import cobs

from hal.serial._errors import (
    DecodeErrorKind,
    ErrorCode,
    MalformedPayload,
    PrinterLinkError,
    ProtocolVersionMismatch,
    decode_error_for,
    rejection_for,
)

MARKER = 0xA5
"""First byte of every decoded frame."""
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 0
PROTOCOL_VERSION = PROTOCOL_MAJOR << 4 | PROTOCOL_MINOR
"""The version byte this implementation sends."""
DELIMITER = b"\x00"
HEADER_SIZE = 12
CRC_SIZE = 4
FRAME_OVERHEAD = HEADER_SIZE + CRC_SIZE
"""Bytes a decoded frame has besides its payload."""
MIN_MAX_PAYLOAD = 512
"""Every implementation accepts payloads at least this long; a HELLO must fit in it."""
DEFAULT_MAX_PAYLOAD = 1024
MAX_PAYLOAD_LIMIT = 0xFFFF
"""The length field is a u16."""
MAX_WINDOW = 0x7FFF
"""Sequence numbers are u16 and compared over half their space, so at most 32767 frames
may be unacknowledged."""

_HEADER = struct.Struct("<BBBBHHHH")
_CRC = struct.Struct("<I")
_crc32 = binascii.crc32
_CRC_RESIDUE = 0x2144DF1C
"""CRC-32 of any data followed by its own CRC-32 (little-endian): checking a frame is one
crc32 call over all of it, with no slicing."""
_cobs_encode = cobs.encode
_cobs_decode = cobs.decode
_CobsError = cobs.DecodeError


FIRST_DATA_TYPE = 0x10
"""Frame types from here up take sequence numbers (compare with ``>=``: it is much
cheaper than hashing an enum member into a set)."""


class FrameType(enum.IntEnum):
    """What a frame is. 0x01-0x0F are link control (they do not take a sequence
    number); 0x10-0x7F carry application data (each takes the next sequence number and is
    delivered reliably, in order, exactly once)."""

    HELLO = 0x01
    HELLO_ACK = 0x02
    ACK = 0x03
    NAK = 0x04
    HEARTBEAT = 0x05
    REQUEST = 0x10
    RESPONSE = 0x11
    ERROR = 0x12
    EVENT = 0x13

    @property
    def sequenced(self) -> bool:
        """True for the data types, which take a sequence number."""
        return self >= FIRST_DATA_TYPE


DATA_TYPES = frozenset(t for t in FrameType if t.sequenced)
"""Frame types an application sends (the link handles the others)."""

_TYPE_BY_VALUE: dict[int, FrameType] = {int(t): t for t in FrameType}


class Flag(enum.IntFlag):
    """Bits of the flags byte. A receiver ignores bits it does not know; a sender sends
    them as 0."""

    RETRANSMIT = 0x01
    """This data frame was sent before (diagnostics only)."""
    ACK_NOW = 0x02
    """Acknowledge at once instead of delaying the ack."""


class Role(enum.StrEnum):
    """Which end of the line an endpoint is. A link joins one host and one device."""

    HOST = "host"
    DEVICE = "device"


# --- frames -----------------------------------------------------------------------------


class Frame(NamedTuple):
    """A decoded, CRC-checked frame. ``payload`` is the raw CBOR (``b""`` when empty);
    :meth:`body` decodes it.

    A named tuple, not a dataclass: the receiver makes one per frame, and a tuple is
    built in a fraction of a frozen dataclass's ``__init__`` (see :func:`_decode_chunk`).
    """

    type: FrameType
    payload: bytes = b""
    seq: int = 0
    ack: int = 0
    request_id: int = 0
    flags: int = 0
    version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        """This frame on the wire (see :func:`encode_frame`)."""
        return encode_frame(
            self.type,
            self.payload,
            seq=self.seq,
            ack=self.ack,
            request_id=self.request_id,
            flags=self.flags,
            version=self.version,
        )

    def body(self) -> Any:
        """The payload decoded (``None`` when empty). Raises :class:`MalformedPayload`."""
        return decode_payload(self.payload)


_new_frame = tuple.__new__
"""``_new_frame(Frame, fields)``: a :class:`Frame` without the named tuple's Python
``__new__`` (the decoder's per-frame path)."""


@dataclass(frozen=True, slots=True)
class CorruptFrame:
    """A chunk between delimiters that claimed to be a frame and is not.

    ``raw`` is the chunk as received (COBS-encoded, no delimiter); ``version`` is the
    version byte found, for :attr:`DecodeErrorKind.BAD_VERSION`.
    """

    kind: DecodeErrorKind
    raw: bytes
    detail: str = ""
    version: int = 0

    def error(self) -> PrinterLinkError:
        """The exception for this error, for callers that want to raise it."""
        return decode_error_for(
            self.kind,
            self.detail or self.kind.value,
            self.raw,
            local=PROTOCOL_VERSION,
            remote=self.version,
        )


@dataclass(frozen=True, slots=True)
class Noise:
    """Bytes on the line that are not a frame (boot text, a log line, another
    protocol); the receiver logs them."""

    data: bytes


DecodedItem = Frame | CorruptFrame | Noise
"""What :class:`FrameDecoder.feed` returns, one per chunk of the byte stream."""


def max_encoded_size(max_payload: int) -> int:
    """Longest COBS chunk (without delimiter) a frame with ``max_payload`` bytes of
    payload can encode to: COBS adds one byte per 254, plus one."""
    decoded = FRAME_OVERHEAD + max_payload
    return decoded + decoded // 254 + 1


def encode_frame(
    frame_type: FrameType | int,
    payload: bytes = b"",
    *,
    seq: int = 0,
    ack: int = 0,
    request_id: int = 0,
    flags: int = 0,
    version: int = PROTOCOL_VERSION,
) -> bytes:
    """A frame as it goes on the wire: COBS-encoded, followed by the 0x00 delimiter.

    Raises :class:`ValueError` when a field does not fit its width (u8 type, flags and
    version; u16 seq, ack, request id and payload length). The payload is not checked
    against any peer limit: that is the link's job.
    """
    return encode_frame_fields(frame_type, payload, seq, ack, request_id, flags, version)


def encode_frame_fields(
    frame_type: FrameType | int,
    payload: bytes,
    seq: int,
    ack: int,
    request_id: int,
    flags: int,
    version: int = PROTOCOL_VERSION,
) -> bytes:
    """:func:`encode_frame` with positional arguments (a cheaper call, for the link's
    per-frame path)."""
    try:
        head = _HEADER.pack(MARKER, version, frame_type, flags, seq, ack, request_id, len(payload))
    except struct.error as exc:
        raise ValueError(f"frame field out of range: {exc}") from None
    body = head + payload
    encoded: bytes = _cobs_encode(body + _CRC.pack(_crc32(body)))
    return encoded + DELIMITER


def decode_frame(chunk: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> DecodedItem:
    """Decode one chunk: the bytes between two delimiters, without them. Never raises.

    Checks, in order: does the chunk start like a frame (else :class:`Noise`, or
    ``BAD_MARKER`` if it is a CRC-valid frame with another marker), size, COBS, minimum
    length, CRC, major version, payload length against ``max_payload``, length field
    against the bytes, frame type. The first failing check names the
    :class:`CorruptFrame`.
    """
    return _decode_chunk(chunk, max_payload, max_encoded_size(max_payload))


def _decode_chunk(chunk: bytes, max_payload: int, max_chunk: int) -> DecodedItem:
    # COBS puts the decoded first byte second (after the code byte, which is >= 2 when
    # that byte is not zero): a frame's chunk always starts "xx A5". Anything else is not
    # ours, which is how boot text and SMP lines are told from damaged frames.
    if len(chunk) < 2 or chunk[1] != MARKER or chunk[0] < 2:
        return _not_a_frame(chunk)
    if len(chunk) > max_chunk:
        return CorruptFrame(DecodeErrorKind.TOO_LONG, chunk, f"{len(chunk)}-byte chunk")
    try:
        body = _cobs_decode(chunk)
    except _CobsError as exc:
        return CorruptFrame(DecodeErrorKind.BAD_COBS, chunk, str(exc))
    n = len(body)
    if n < FRAME_OVERHEAD:
        return CorruptFrame(DecodeErrorKind.TRUNCATED, chunk, f"{n} bytes decoded")
    if _crc32(body) != _CRC_RESIDUE:
        return CorruptFrame(DecodeErrorKind.BAD_CRC, chunk)
    _, version, type_value, flags, seq, ack, request_id, length = _HEADER.unpack_from(body)
    if version >> 4 != PROTOCOL_MAJOR:
        return CorruptFrame(
            DecodeErrorKind.BAD_VERSION, chunk, f"version byte {version:#04x}", version
        )
    if length > max_payload:
        return CorruptFrame(
            DecodeErrorKind.TOO_LONG, chunk, f"payload {length} > limit {max_payload}"
        )
    if length != n - FRAME_OVERHEAD:
        return CorruptFrame(
            DecodeErrorKind.LENGTH_MISMATCH,
            chunk,
            f"length field {length}, payload {n - FRAME_OVERHEAD}",
        )
    frame_type = _TYPE_BY_VALUE.get(type_value)
    if frame_type is None:
        return CorruptFrame(DecodeErrorKind.UNKNOWN_TYPE, chunk, f"type {type_value:#04x}")
    return _new_frame(
        Frame, (frame_type, body[HEADER_SIZE:-CRC_SIZE], seq, ack, request_id, flags, version)
    )


def _not_a_frame(chunk: bytes) -> Noise | CorruptFrame:
    # Only a chunk whose CRC holds is called a frame with a bad marker; for anything else
    # (text is never valid COBS-plus-CRC by chance) "noise" is the honest answer.
    try:
        body = _cobs_decode(chunk)
    except _CobsError:
        return Noise(chunk)
    if len(body) >= FRAME_OVERHEAD and _crc32(body) == _CRC_RESIDUE:
        return CorruptFrame(DecodeErrorKind.BAD_MARKER, chunk, f"marker {body[0]:#04x}")
    return Noise(chunk)


class FrameDecoder:
    """Streaming decoder: feed it bytes as they arrive, in chunks of any size.

    Contract:

    * :meth:`feed` never raises (for ``bytes``-like input) and returns one item per chunk
      completed by this call, in stream order: :class:`Frame`, :class:`CorruptFrame` or
      :class:`Noise`. Empty chunks (consecutive delimiters) produce nothing.
    * A frame split across any number of feeds decodes exactly as if fed whole.
    * Whatever preceded a 0x00 cannot affect the chunk after it: a good frame that
      follows a delimiter is always decoded.
    * At most :attr:`max_chunk` bytes are buffered. A chunk that grows past it without a
      delimiter is reported at once (``TOO_LONG`` if it started like a frame, else
      :class:`Noise`), and the bytes after it up to the next 0x00 are reported as
      :class:`Noise`, in pieces of at most ``max_chunk + len(data)`` bytes.
    """

    __slots__ = ("_buf", "_max_chunk", "_max_payload", "_skipping")

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if not 0 <= max_payload <= MAX_PAYLOAD_LIMIT:
            raise ValueError(f"max_payload must be in 0..{MAX_PAYLOAD_LIMIT}")
        self._max_payload = max_payload
        self._max_chunk = max_encoded_size(max_payload)
        self._buf = bytearray()
        self._skipping = False

    @property
    def max_payload(self) -> int:
        """Longest payload accepted; longer frames are ``TOO_LONG``."""
        return self._max_payload

    @property
    def max_chunk(self) -> int:
        """Most bytes buffered while waiting for a delimiter."""
        return self._max_chunk

    @property
    def buffered(self) -> int:
        """Bytes held of a chunk not yet delimited."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial chunk (after the port was reopened, say)."""
        self._buf.clear()
        self._skipping = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[DecodedItem]:
        """Decode what ``data`` completes; see the class docstring."""
        out: list[DecodedItem] = []
        # One C-level split finds every delimiter: the last piece is the start of a chunk
        # not delimited yet, the others are complete chunks.
        chunks = (data if type(data) is bytes else bytes(data)).split(DELIMITER)
        tail = chunks.pop()
        buf = self._buf
        if chunks:
            if buf:
                buf += chunks[0]
                chunks[0] = bytes(buf)
                buf.clear()
            if self._skipping:  # only the first chunk can be the rest of a skipped one
                self._skipping = False
                skipped = chunks.pop(0)
                if skipped:
                    out.append(Noise(skipped))
            max_payload = self._max_payload
            max_chunk = self._max_chunk
            for chunk in chunks:
                if chunk:
                    out.append(_decode_chunk(chunk, max_payload, max_chunk))
        if tail:
            buf += tail
            if len(buf) > self._max_chunk:
                self._overflow(out)
        return out

    def _overflow(self, out: list[DecodedItem]) -> None:
        raw = bytes(self._buf)
        self._buf.clear()
        if self._skipping:
            out.append(Noise(raw))
            return
        self._skipping = True
        if len(raw) >= 2 and raw[1] == MARKER and raw[0] >= 2:
            out.append(
                CorruptFrame(DecodeErrorKind.TOO_LONG, raw, f"no delimiter within {len(raw)} bytes")
            )
        else:
            out.append(Noise(raw))


# --- payloads ----------------------------------------------------------------------------


_cbor_loads = cbor2.loads
_NO_ARGS: Any = object()


def encode_payload(value: Any) -> bytes:
    """``value`` as CBOR. Raises :class:`ValueError` for values CBOR cannot hold."""
    try:
        return cbor2.dumps(value)
    except cbor2.CBOREncodeError as exc:
        raise ValueError(f"cannot encode payload as CBOR: {exc}") from None


def decode_payload(payload: bytes) -> Any:
    """The CBOR value of a payload; ``None`` for an empty payload.

    Raises :class:`MalformedPayload` for anything that is not one well-formed CBOR item
    (the decoder may fail in several ways on hostile input; all of them land here).
    """
    if not payload:
        return None
    try:
        return cbor2.loads(payload)
    except Exception as exc:  # cbor2 raises more than CBORDecodeError on hostile input
        raise MalformedPayload(f"payload is not valid CBOR: {exc}") from None


def _payload_map(payload: bytes, what: str) -> dict[Any, Any]:
    value = decode_payload(payload)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{what} payload must be a CBOR map, got {type(value).__name__}")
    return value


def _get(m: dict[Any, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    try:
        value = m[key]
    except KeyError:
        raise MalformedPayload(f"{what}: {key!r} missing") from None
    # bool is an int in Python but not in CBOR; refuse it where an integer is wanted.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise MalformedPayload(f"{what}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _get_uint(m: dict[Any, Any], key: str, what: str, bits: int) -> int:
    value: int = _get(m, key, int, what)
    if not 0 <= value < 1 << bits:
        raise MalformedPayload(f"{what}: {key!r} = {value} is not a u{bits}")
    return value


def _opt(m: dict[Any, Any], key: str, kind: type, default: Any, what: str) -> Any:
    return _get(m, key, kind, what) if key in m else default


@dataclass(frozen=True, slots=True)
class Hello:
    """The payload of HELLO and HELLO_ACK (docs/protocol.md, "HELLO").

    ``boot_nonce`` changes exactly when the sender reboots; ``session`` changes whenever
    the sender starts a new link session (sequence numbers from 0); ``peer_session`` is
    the peer session the sender has heard, 0 if none. ``max_payload`` and ``window`` are
    what the sender *accepts*; ``dead_after_ns`` is how long it waits in silence before
    declaring the link down (so the peer heartbeats well within it).
    """

    role: Role
    boot_nonce: int
    session: int
    peer_session: int = 0
    version: int = PROTOCOL_VERSION
    capabilities: frozenset[str] = field(default_factory=frozenset)
    max_payload: int = DEFAULT_MAX_PAYLOAD
    window: int = 8
    dead_after_ns: int = 3_000_000_000
    device_id: str = ""
    board: str = ""
    image_version: str = ""
    image_sha256: str = ""
    """Hex SHA-256 of the running image ("" when the sender has no image to tell of)."""
    image_confirmed: bool | None = None
    """Whether the running image is confirmed (None: not told)."""

    def to_payload(self) -> bytes:
        """The CBOR payload. Raises :class:`ValueError` if a field is out of range or
        the HELLO would not fit in :data:`MIN_MAX_PAYLOAD` bytes."""
        if not (
            0 <= self.boot_nonce < 1 << 64
            and 0 < self.session < 1 << 32
            and 0 <= self.peer_session < 1 << 32
            and MIN_MAX_PAYLOAD <= self.max_payload <= MAX_PAYLOAD_LIMIT
            and 1 <= self.window <= MAX_WINDOW
            and self.dead_after_ns > 0
        ):
            raise ValueError(f"HELLO field out of range: {self!r}")
        image: dict[str, Any] = {}
        if self.image_sha256:
            image["image_sha"] = self.image_sha256
        if self.image_confirmed is not None:
            image["image_ok"] = self.image_confirmed
        payload = encode_payload(
            {
                **image,
                "version": self.version,
                "role": str(self.role),
                "caps": sorted(self.capabilities),
                "limits": {
                    "max_payload": self.max_payload,
                    "window": self.window,
                    "dead_after_ns": self.dead_after_ns,
                },
                "device_id": self.device_id,
                "board": self.board,
                "image": self.image_version,
                "boot": self.boot_nonce,
                "session": self.session,
                "peer_session": self.peer_session,
            }
        )
        if len(payload) > MIN_MAX_PAYLOAD:
            raise ValueError(f"HELLO is {len(payload)} bytes; it must fit in {MIN_MAX_PAYLOAD}")
        return payload

    @classmethod
    def from_payload(cls, payload: bytes) -> Hello:
        """Parse a HELLO payload. Unknown keys are ignored (later minor versions add
        some). Raises :class:`ProtocolVersionMismatch` when the major version differs
        (checked first, so a HELLO of any version is told apart), else
        :class:`MalformedPayload` for a missing or ill-typed field."""
        what = "HELLO"
        m = _payload_map(payload, what)
        version = _get_uint(m, "version", what, 8)
        if version >> 4 != PROTOCOL_MAJOR:
            raise ProtocolVersionMismatch(PROTOCOL_VERSION, version)
        role_text = _get(m, "role", str, what)
        try:
            role = Role(role_text)
        except ValueError:
            raise MalformedPayload(f"{what}: unknown role {role_text!r}") from None
        caps = _opt(m, "caps", list, [], what)
        if not all(isinstance(c, str) for c in caps):
            raise MalformedPayload(f"{what}: 'caps' must be a list of text strings")
        limits = _get(m, "limits", dict, what)
        max_payload = _get_uint(limits, "max_payload", what, 16)
        window = _get_uint(limits, "window", what, 16)
        if max_payload < MIN_MAX_PAYLOAD or not 1 <= window <= MAX_WINDOW:
            raise MalformedPayload(f"{what}: limits out of range: {limits!r}")
        dead_after_ns = _get_uint(limits, "dead_after_ns", what, 64)
        session = _get_uint(m, "session", what, 32)
        if session == 0:
            raise MalformedPayload(f"{what}: session must not be 0")
        return cls(
            role=role,
            boot_nonce=_get_uint(m, "boot", what, 64),
            session=session,
            peer_session=_get_uint(m, "peer_session", what, 32),
            version=version,
            capabilities=frozenset(caps),
            max_payload=max_payload,
            window=window,
            dead_after_ns=dead_after_ns,
            device_id=_opt(m, "device_id", str, "", what),
            board=_opt(m, "board", str, "", what),
            image_version=_opt(m, "image", str, "", what),
            image_sha256=_opt(m, "image_sha", str, "", what),
            image_confirmed=_opt(m, "image_ok", bool, None, what),
        )


def _fast_map(payload: bytes) -> dict[Any, Any] | None:
    """The payload's CBOR map, or None for anything else (empty, not CBOR, not a map):
    the hot paths' shortcut; callers fall back to the checked parse, which words errors."""
    if not payload:
        return None
    try:
        m = _cbor_loads(payload)
    except Exception:
        return None
    return m if type(m) is dict else None


@dataclass(frozen=True, slots=True)
class Request:
    """REQUEST payload: ``{"cmd": tstr, ? "args": map}``."""

    cmd: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> bytes:
        return encode_payload(
            {"cmd": self.cmd, "args": self.args} if self.args else {"cmd": self.cmd}
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> Request:
        """Raises :class:`MalformedPayload`."""
        return cls(*parse_request(payload))


def parse_request(payload: bytes) -> tuple[str, dict[str, Any]]:
    """A REQUEST payload's ``(cmd, args)``, without the :class:`Request` in between (one
    call per request on the device). Raises :class:`MalformedPayload`."""
    # Fast path for the usual well-formed request; anything unusual takes the general
    # path, which words the errors.
    m = _fast_map(payload)
    if m is not None:
        cmd = m.get("cmd")
        args = m.get("args", _NO_ARGS)
        if type(cmd) is str:
            if args is _NO_ARGS:
                return cmd, {}
            if type(args) is dict:
                return cmd, args
    m = _payload_map(payload, "REQUEST")
    return _get(m, "cmd", str, "REQUEST"), _opt(m, "args", dict, {}, "REQUEST")


@dataclass(frozen=True, slots=True)
class Response:
    """RESPONSE payload: ``{? "result": any}``; an empty payload means no result."""

    result: Any = None

    def to_payload(self) -> bytes:
        return b"" if self.result is None else encode_payload({"result": self.result})

    @classmethod
    def from_payload(cls, payload: bytes) -> Response:
        """Raises :class:`MalformedPayload`."""
        return cls(parse_response(payload))


def parse_response(payload: bytes) -> Any:
    """A RESPONSE payload's ``result`` (``None`` when it has none), without the
    :class:`Response` in between (one call per answer on the host). Raises
    :class:`MalformedPayload`."""
    m = _fast_map(payload)
    if m is not None:
        return m.get("result")
    return _payload_map(payload, "RESPONSE").get("result")


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """ERROR payload: ``{"code": uint, ? "msg": tstr, ? "detail": any}``.

    ``code`` is an :class:`ErrorCode` (or a device-specific 128-255);
    :meth:`to_exception` gives the :class:`DeviceRejected` subclass for it.
    """

    code: int
    message: str = ""
    detail: Any = None

    def to_payload(self) -> bytes:
        m: dict[str, Any] = {"code": int(self.code)}
        if self.message:
            m["msg"] = self.message
        if self.detail is not None:
            m["detail"] = self.detail
        return encode_payload(m)

    @classmethod
    def from_payload(cls, payload: bytes) -> ErrorReply:
        """Raises :class:`MalformedPayload`."""
        what = "ERROR"
        m = _payload_map(payload, what)
        code: int = _get_uint(m, "code", what, 8)
        with contextlib.suppress(ValueError):  # a device's own code stays a plain int
            code = ErrorCode(code)
        return cls(code, _opt(m, "msg", str, "", what), m.get("detail"))

    def to_exception(self) -> PrinterLinkError:
        """The :class:`DeviceRejected` (subclass) this answer means."""
        return rejection_for(self.code, self.message, self.detail)


@dataclass(frozen=True, slots=True)
class Event:
    """EVENT payload: ``{"kind": tstr, "t_ns": uint, ? "data": map}``; ``t_ns`` is the
    device's clock when the event happened (not when it was sent)."""

    kind: str
    t_ns: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> bytes:
        m: dict[str, Any] = {"kind": self.kind, "t_ns": self.t_ns}
        if self.data:
            m["data"] = self.data
        return encode_payload(m)

    @classmethod
    def from_payload(cls, payload: bytes) -> Event:
        """Raises :class:`MalformedPayload`."""
        edge = _parse_input_event(payload)
        if edge is not None:
            return edge
        what = "EVENT"
        m = _payload_map(payload, what)
        return cls(
            _get(m, "kind", str, what),
            _get_uint(m, "t_ns", what, 64),
            _opt(m, "data", dict, {}, what),
        )


# --- input edges: the latency-critical event, without a trip through cbor2 ----------------
#
# An input edge is the event a host's firmware waits on (a sheet at a sensor, a button),
# and the one whose latency the link is judged by. On an idle machine, every library a
# message passes through costs its cache and TLB misses again: on a 2-vCPU VM, after
# 100 ms asleep, one cbor2.dumps or cbor2.loads takes 60-80 us against 1 us warm. So the
# device builds an input edge's payload from fixed CBOR pieces, and the host reads one
# back the same way; the bytes are exactly what cbor2 makes of the same map (the tests
# compare every width of ``t_ns`` and of ``name``), and any payload not in exactly this
# shape goes to cbor2 as before.


def _cbor_head(major: int, value: int) -> bytes:
    """The shortest CBOR head of ``major`` type for an argument ``0 <= value < 2**64``."""
    if value < 24:
        return bytes((major << 5 | value,))
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes((major << 5 | extra,)) + value.to_bytes(width, "big")
    raise ValueError(f"{value} does not fit a CBOR head")


def _cbor_text(text: str) -> bytes:
    encoded = text.encode()
    return _cbor_head(3, len(encoded)) + encoded


_INPUT_PREFIX = b"\xa3" + _cbor_text("kind") + _cbor_text("input") + _cbor_text("t_ns")
"""``{"kind": "input", "t_ns": ``: what every input edge's payload starts with."""
_INPUT_DATA = _cbor_text("data") + b"\xa2" + _cbor_text("name")
"""Between ``t_ns`` and the name: ``"data": {"name": ``."""
_INPUT_LEVEL = (_cbor_text("level") + b"\xf4", _cbor_text("level") + b"\xf5")
"""What ends the payload: ``"level": false}}`` and ``"level": true}}``."""
_UINT_WIDTH = {24: 1, 25: 2, 26: 4, 27: 8}
"""Extra bytes after a CBOR head's first byte, by its low five bits (24 and up)."""


def input_event_payload(t_ns: int, name: str, level: bool) -> bytes:
    """``Event("input", t_ns, {"name": name, "level": level}).to_payload()``, byte for
    byte, built without cbor2 (see above). Raises :class:`ValueError` where
    :meth:`Event.to_payload` does: a ``name`` that is not valid text."""
    if not 0 <= t_ns < 1 << 64:  # a negative or bignum instant: cbor2's own encoding
        return Event("input", t_ns, {"name": name, "level": bool(level)}).to_payload()
    try:
        name_text = _cbor_text(name)
    except UnicodeEncodeError:
        return Event("input", t_ns, {"name": name, "level": bool(level)}).to_payload()
    return b"".join((_INPUT_PREFIX, _cbor_head(0, t_ns), _INPUT_DATA, name_text,
                     _INPUT_LEVEL[bool(level)]))


def _parse_input_event(payload: bytes) -> Event | None:
    """The input edge a payload of exactly :func:`input_event_payload`'s shape holds, or
    ``None`` for any other payload (which :meth:`Event.from_payload` then gives to
    cbor2). Never raises. What it returns is what cbor2 would have made of the bytes."""
    if not payload.startswith(_INPUT_PREFIX):
        return None
    i = len(_INPUT_PREFIX)
    try:
        head = payload[i]
        if head < 24:
            t_ns = head
            i += 1
        else:
            width = _UINT_WIDTH.get(head)
            if width is None:
                return None
            t_ns = int.from_bytes(payload[i + 1:i + 1 + width], "big")
            i += 1 + width
        if payload[i:i + len(_INPUT_DATA)] != _INPUT_DATA:
            return None
        i += len(_INPUT_DATA)
        head = payload[i]
        if 0x60 <= head < 0x78:
            length = head - 0x60
            i += 1
        elif head == 0x78:
            length = payload[i + 1]
            i += 2
        else:
            return None
        name_bytes = payload[i:i + length]
        rest = payload[i + length:]
        if len(name_bytes) != length or rest not in _INPUT_LEVEL:
            return None
        name = name_bytes.decode()
    except (IndexError, UnicodeDecodeError):
        return None  # truncated, or not text: cbor2 says what is wrong
    return Event("input", t_ns, {"name": name, "level": rest == _INPUT_LEVEL[1]})
