"""SMP over a serial line (mcumgr's "SMP over console"): framing.

Sans-IO: nothing here reads or writes a port.

An SMP packet (8-byte header, CBOR body) is framed as ``[len:u16 BE | packet |
CRC-16/XMODEM BE]`` with ``len`` counting packet and CRC, base64-encoded and cut into
lines of at most 127 bytes: the first line starts with ``06 09``, continuations with
``04 14``, each ends with ``\\n``. Replies use the same framing.

Telling SMP lines from other traffic on a shared port is `hal.serial.LineDemux`'s job
(the one rule of docs/protocol.md, "The byte stream").
"""

from __future__ import annotations

import base64
import binascii
import logging
import struct

_log = logging.getLogger(__name__)

FIRST_LINE_MARKER = b"\x06\x09"
CONTINUATION_MARKER = b"\x04\x14"
MAX_LINE_BYTES = 127
# Accept longer lines than we send: some clients can be configured that way, and
# refusing them would only make a confusing failure.
_MAX_ACCEPTED_LINE_BYTES = 4096
_BASE64_PER_LINE = (MAX_LINE_BYTES - len(FIRST_LINE_MARKER) - 1) // 4 * 4
_FRAME_LENGTH = struct.Struct(">H")

DEFAULT_BUF_SIZE_BYTES = 4096
"""The device's reassembly buffer (SMP's ``buf_size``): the longest frame it takes."""


def encode_smp_frame(packet: bytes) -> bytes:
    """Frame one SMP packet as serial lines (first ``06 09``, then ``04 14``)."""
    crc = binascii.crc_hqx(packet, 0)
    body = _FRAME_LENGTH.pack(len(packet) + 2) + packet + _FRAME_LENGTH.pack(crc)
    text = base64.b64encode(body)
    lines = []
    for start in range(0, len(text), _BASE64_PER_LINE):
        marker = FIRST_LINE_MARKER if start == 0 else CONTINUATION_MARKER
        lines.append(marker + text[start : start + _BASE64_PER_LINE] + b"\n")
    return b"".join(lines)


class SmpFrameDecoder:
    """Reassembles SMP packets from serial lines; bad frames are dropped and logged.

    ``max_frame_bytes`` bounds the decoded ``[len | packet | crc]`` (the device's
    reassembly buffer, advertised as ``buf_size``).
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_BUF_SIZE_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._frame: bytearray | None = None
        self.dropped_frames = 0

    def feed_line(self, line: bytes) -> bytes | None:
        """Take one line (marker .. ``\\n``); return a packet when one is complete."""
        marker, payload = line[:2], line[2:].rstrip(b"\r\n")
        if marker == FIRST_LINE_MARKER:
            if self._frame is not None:
                self._drop("a new frame started before the previous one ended")
            self._frame = bytearray()
        elif marker != CONTINUATION_MARKER or self._frame is None:
            self._drop("continuation line without a frame")
            return None
        try:
            self._frame += base64.b64decode(payload, validate=True)
        except binascii.Error:
            self._drop("line is not base64")
            return None
        frame = self._frame
        if len(frame) < _FRAME_LENGTH.size:
            return None
        (length,) = _FRAME_LENGTH.unpack_from(frame)
        if length < 2 or _FRAME_LENGTH.size + length > self.max_frame_bytes:
            self._drop(f"frame length {length} outside 2..{self.max_frame_bytes - 2}")
            return None
        if len(frame) < _FRAME_LENGTH.size + length:
            return None
        self._frame = None
        packet_and_crc = bytes(frame[_FRAME_LENGTH.size : _FRAME_LENGTH.size + length])
        # CRC-16/XMODEM over packet + its own big-endian CRC is zero when intact.
        if binascii.crc_hqx(packet_and_crc, 0) != 0:
            self.dropped_frames += 1
            _log.warning("SMP frame dropped: CRC mismatch")
            return None
        return packet_and_crc[:-2]

    def _drop(self, why: str) -> None:
        self._frame = None
        self.dropped_frames += 1
        _log.warning("SMP frame dropped: %s", why)
