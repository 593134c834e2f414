"""Slot trailers: the flags MCUboot keeps at the end of each slot, read and written.

A trailer is a 16-byte magic, ``image_ok``, ``copy_done`` and ``swap_info``, at 8-byte
aligned offsets back from the slot's end (the last sector of a slot holds nothing
else). A flag is SET (``0x01``) or UNSET (erased). A trailer is written flags first
and magic last: the magic is the commit, so a power cut half-way through leaves
either no trailer or all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from emulator.flash._storage import ERASED_BYTE, FlashStorage

BOOT_MAGIC = bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
FLAG_SET = 0x01

# Offsets back from the end of a slot, as MCUboot lays them out with an 8-byte alignment.
_MAGIC_FROM_END = 16
_IMAGE_OK_FROM_END = 24
_COPY_DONE_FROM_END = 32
_SWAP_INFO_FROM_END = 40
_TRAILER_BYTES = 48


class SwapType(IntEnum):
    """MCUboot's ``BOOT_SWAP_TYPE_*``."""

    NONE = 1
    TEST = 2
    PERM = 3
    REVERT = 4
    FAIL = 5


class Magic(Enum):
    GOOD = "good"
    UNSET = "unset"
    BAD = "bad"


class FlagState(Enum):
    SET = "set"
    UNSET = "unset"
    BAD = "bad"


def _flag_state(byte: int) -> FlagState:
    if byte == FLAG_SET:
        return FlagState.SET
    return FlagState.UNSET if byte == ERASED_BYTE else FlagState.BAD


@dataclass(frozen=True)
class SlotTrailer:
    magic: Magic
    image_ok: FlagState
    copy_done: FlagState
    swap_info: int


def read_trailer(storage: FlashStorage, slot: int) -> SlotTrailer:
    """The trailer of ``slot`` as the flash holds it now."""
    end = storage.layout.slot_end(slot)
    raw = storage.read(end - _TRAILER_BYTES, _TRAILER_BYTES)

    def at(from_end: int) -> int:
        return raw[_TRAILER_BYTES - from_end]

    magic_raw = raw[_TRAILER_BYTES - _MAGIC_FROM_END :]
    if magic_raw == BOOT_MAGIC:
        magic = Magic.GOOD
    elif magic_raw.count(ERASED_BYTE) == len(magic_raw):
        magic = Magic.UNSET
    else:
        magic = Magic.BAD
    return SlotTrailer(
        magic=magic,
        image_ok=_flag_state(at(_IMAGE_OK_FROM_END)),
        copy_done=_flag_state(at(_COPY_DONE_FROM_END)),
        swap_info=at(_SWAP_INFO_FROM_END),
    )


def set_image_ok(storage: FlashStorage, slot: int) -> None:
    """Set ``image_ok`` in a trailer that has it unset (one byte, then a barrier)."""
    storage.write(storage.layout.slot_end(slot) - _IMAGE_OK_FROM_END, bytes([FLAG_SET]))
    storage.barrier()


def rewrite_trailer(
    storage: FlashStorage, slot: int, *, image_ok: bool, copy_done: bool, swap_info: SwapType
) -> None:
    """Erase the trailer sector and write it flags first, magic last (the commit)."""
    layout = storage.layout
    storage.erase(layout.trailer_sector_offset(slot), layout.sector_size_bytes)
    end = layout.slot_end(slot)
    flags = (
        (_IMAGE_OK_FROM_END, FLAG_SET if image_ok else ERASED_BYTE),
        (_COPY_DONE_FROM_END, FLAG_SET if copy_done else ERASED_BYTE),
        (_SWAP_INFO_FROM_END, int(swap_info)),
    )
    for from_end, value in flags:
        if value != ERASED_BYTE:
            storage.write(end - from_end, bytes([value]))
    storage.barrier()
    storage.write(end - _MAGIC_FROM_END, BOOT_MAGIC)
    storage.barrier()


def erase_trailer(storage: FlashStorage, slot: int) -> None:
    """Erase the trailer sector of ``slot`` (no request, no state), then a barrier."""
    storage.erase(storage.layout.trailer_sector_offset(slot), storage.layout.sector_size_bytes)
    storage.barrier()
