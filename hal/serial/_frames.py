"""The frame codec of the serial-attached board: bytes on the wire <-> :class:`Frame`.

Sans-IO and stateless apart from :class:`FrameDecoder`'s partial-frame buffer: no
threads, no ports, no clocks. docs/protocol.md is the normative description; this module
(with :mod:`hal.serial._payloads` for what frames carry) is its reference implementation,
and the two must agree.

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
     12     n  payload     CBOR (see hal.serial._payloads), or empty
  12+n     4  crc32       CRC-32 (zlib's) of bytes 0 .. 11+n

Contracts:

* :func:`encode_frame` returns the COBS bytes *followed by* the 0x00 delimiter; it raises
  :class:`ValueError` for a field out of range. A sender puts one 0x00 *before* a batch
  of frames as well, so that whatever preceded it on the line (boot text) cannot glue
  onto the first frame.
* :class:`FrameDecoder` never raises on any input. It returns, in the order the bytes
  arrived, :class:`Frame` for each good frame, :class:`CorruptFrame` for each chunk that
  claimed to be a frame and is not, and :class:`Noise` for bytes that are not frames.
"""

from __future__ import annotations

import binascii
import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

from cobs import cobs

from hal.serial._errors import DecodeErrorKind, PrinterLinkError, decode_error_for

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
FIRST_DATA_TYPE = 0x10
"""Frame types from here up carry application data and take sequence numbers."""

_HEADER = struct.Struct("<BBBBHHHH")
_CRC = struct.Struct("<I")


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


class Frame(NamedTuple):
    """A decoded, CRC-checked frame. ``payload`` is the raw CBOR (``b""`` when empty);
    :func:`hal.serial.decode_payload` decodes it."""

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

# Not FrameType(v) and Frame(...): ~30 us less a frame after idle (benchmarks serial, events).
_TYPE_BY_VALUE: dict[int, FrameType] = {int(t): t for t in FrameType}
_new_frame = tuple.__new__


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
    try:
        head = _HEADER.pack(MARKER, version, frame_type, flags, seq, ack, request_id, len(payload))
    except struct.error as exc:
        raise ValueError(f"frame field out of range: {exc}") from None
    body = head + payload
    encoded: bytes = cobs.encode(body + _CRC.pack(binascii.crc32(body)))
    return encoded + DELIMITER


def decode_frame(chunk: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> DecodedItem:
    """Decode one chunk: the bytes between two delimiters, without them. Never raises.

    Checks, in order: does the chunk start like a frame (else :class:`Noise`, or
    ``BAD_MARKER`` if it is a CRC-valid frame with another marker), size, COBS, minimum
    length, CRC, major version, payload length against ``max_payload``, length field
    against the bytes, frame type. The first failing check names the
    :class:`CorruptFrame`.
    """
    # COBS puts the decoded first byte second (after the code byte, which is >= 2 when
    # that byte is not zero): a frame's chunk always starts "xx A5". Anything else is not
    # ours, which is how boot text and SMP lines are told from damaged frames.
    if len(chunk) < 2 or chunk[1] != MARKER or chunk[0] < 2:
        return _not_a_frame(chunk)
    if len(chunk) > max_encoded_size(max_payload):
        return CorruptFrame(DecodeErrorKind.TOO_LONG, chunk, f"{len(chunk)}-byte chunk")
    try:
        body = cobs.decode(chunk)
    except cobs.DecodeError as exc:
        return CorruptFrame(DecodeErrorKind.BAD_COBS, chunk, str(exc))
    n = len(body)
    if n < FRAME_OVERHEAD:
        return CorruptFrame(DecodeErrorKind.TRUNCATED, chunk, f"{n} bytes decoded")
    if not _crc_holds(body):
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


def _crc_holds(body: bytes) -> bool:
    """Whether the decoded frame's last four bytes are the CRC-32 of the rest."""
    (crc,) = _CRC.unpack_from(body, len(body) - CRC_SIZE)
    return bool(binascii.crc32(body[:-CRC_SIZE]) == crc)


def _not_a_frame(chunk: bytes) -> Noise | CorruptFrame:
    # Only a chunk whose CRC holds is called a frame with a bad marker; for anything else
    # (text is never valid COBS-plus-CRC by chance) "noise" is the honest answer.
    try:
        body = cobs.decode(chunk)
    except cobs.DecodeError:
        return Noise(chunk)
    if len(body) >= FRAME_OVERHEAD and _crc_holds(body):
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
        # The last piece of the split is the start of a chunk not delimited yet; the
        # others are complete chunks.
        chunks = bytes(data).split(DELIMITER)
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
            out.extend(decode_frame(chunk, self._max_payload) for chunk in chunks if chunk)
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
