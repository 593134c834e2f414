"""The swap-status sector: where a swap records its progress, so a boot can finish it.

Before the first step of a swap, its type and size are written (fields with a CRC,
then the magic: the commit). After each step one progress byte is written; once the
trailers are final a done byte is; then the sector is erased. The layout's
``FlashLayout._STATUS_HEADER_BYTES`` is ``_PROGRESS_AT`` here.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import Enum

from emulator.flash._storage import ERASED_BYTE, FlashStorage
from emulator.flash._trailer import FLAG_SET, SwapType

_MAGIC = b"prn-emu swap st\x01"
_FIELDS = struct.Struct("<BBHI")  # swap type, reserved, sectors, crc32 of the first 4
_FIELDS_AT = 0
_MAGIC_AT = 8
_DONE_AT = 32  # written once the trailers are final, before the sector is erased
_PROGRESS_AT = 64  # one byte per step, 3 steps per sector


@dataclass(frozen=True)
class SwapStatus:
    """A committed swap: its type, its size, the first step not yet recorded, and
    whether only the clean-up (erasing this status) is left."""

    swap_type: SwapType
    sectors: int
    next_step: int
    done: bool


class Uncommitted(Enum):
    """A status sector neither erased nor committed: a cut came before the commit."""

    STATUS = "uncommitted"


def read_status(storage: FlashStorage) -> SwapStatus | Uncommitted | None:
    """The swap in progress, `Uncommitted.STATUS`, or None (the sector is erased)."""
    layout = storage.layout
    size = layout.sector_size_bytes
    raw = storage.read(layout.status_offset, size)
    if raw.count(ERASED_BYTE) == size:
        return None
    if raw[_MAGIC_AT : _MAGIC_AT + len(_MAGIC)] != _MAGIC:
        return Uncommitted.STATUS
    swap_raw, _reserved, sectors, crc = _FIELDS.unpack_from(raw, _FIELDS_AT)
    if (
        crc != binascii.crc32(raw[_FIELDS_AT : _FIELDS_AT + 4])
        or swap_raw not in (SwapType.TEST, SwapType.PERM, SwapType.REVERT)
        or not 1 <= sectors <= layout.data_sectors
    ):
        return Uncommitted.STATUS
    progress = raw[_PROGRESS_AT : _PROGRESS_AT + 3 * sectors]
    next_step = next((i for i, b in enumerate(progress) if b != FLAG_SET), 3 * sectors)
    done = raw[_DONE_AT] == FLAG_SET
    return SwapStatus(SwapType(swap_raw), sectors, next_step, done)


def commit_status(storage: FlashStorage, swap: SwapType, sectors: int) -> None:
    """Start recording a swap: erase, write the fields, then the magic (the commit)."""
    erase_status(storage)
    fields = struct.pack("<BBH", swap, 0, sectors)
    record = _FIELDS.pack(swap, 0, sectors, binascii.crc32(fields))
    storage.write(storage.layout.status_offset + _FIELDS_AT, record)
    storage.barrier()
    storage.write(storage.layout.status_offset + _MAGIC_AT, _MAGIC)
    storage.barrier()


def record_step(storage: FlashStorage, step: int) -> None:
    """Record that ``step`` is on flash (the caller's barrier before makes it true)."""
    storage.write(storage.layout.status_offset + _PROGRESS_AT + step, bytes([FLAG_SET]))
    storage.barrier()  # the record is on flash before the next erase


def record_done(storage: FlashStorage) -> None:
    """Record that the trailers are final: only erasing the status is left."""
    storage.write(storage.layout.status_offset + _DONE_AT, bytes([FLAG_SET]))
    storage.barrier()


def erase_status(storage: FlashStorage) -> None:
    storage.erase(storage.layout.status_offset, storage.layout.sector_size_bytes)
    storage.barrier()
