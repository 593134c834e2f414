"""Emulated NOR flash kept in a file, and the layout the bootloader gives it.

Contract of `FlashStorage` (the rules of real NOR flash, enforced):

- Erasing works on whole sectors and sets every byte to ``0xFF``.
- A byte may be written only once after an erase: writing to a byte that is not
  ``0xFF`` raises `FlashWriteError` (real flash can only clear bits, 1 -> 0, so a
  second write would silently AND the values; the emulator refuses instead, which
  catches bootloader bugs that real flash would turn into corruption).
- Every mutating operation goes straight to the file (``os.pwrite``), so a killed
  process leaves exactly the operations it completed. `FlashStorage.barrier` is
  the ordering point the bootloader calls after a record that must be durable
  before the next step starts (a swap-status byte, a trailer magic); it calls
  ``fdatasync`` when ``durable`` is true, which is what matters when the host
  itself loses power rather than the process.

Fault injection for power-cut tests: with ``power_cut_after_ops=N`` the storage
performs N mutating operations (writes and sector erases) normally, then the next
one is torn (``torn_ops``: its first half is applied, as a write or erase cut by a
brown-out would leave it) and `PowerCut` is raised. `PowerCut` is deliberately not
a `FlashError`: nothing in the emulator catches it, so it unwinds like a dead CPU.

`FlashLayout` says where things are::

    | primary slot (slot 0) | secondary slot (slot 1) | scratch | swap status | sec. counter x2 |

Each slot is ``slot_sectors`` sectors; its last sector holds the MCUboot-style
image trailer only, so image data never shares a sector with the trailer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ERASED_BYTE = 0xFF

_FILL_CHUNK_BYTES = 64 * 1024


class FlashError(Exception):
    """Misuse of the flash: out of range, misaligned erase, or layout mismatch."""


class FlashWriteError(FlashError):
    """A write over bytes that are not erased (real flash can only clear bits)."""


class PowerCut(Exception):
    """Raised by fault injection: the device lost power in the middle of an operation."""


@dataclass(frozen=True)
class FlashLayout:
    """Geometry of the emulated flash: two image slots, scratch, status, counters.

    ``sector_size_bytes`` is the erase unit; ``slot_sectors`` the size of each slot
    in sectors, trailer sector included.
    """

    sector_size_bytes: int = 4096
    slot_sectors: int = 32

    _STATUS_HEADER_BYTES = 64  # _swap_status: the header before the progress bytes
    _COUNTER_SECTORS = 2

    def __post_init__(self) -> None:
        size = self.sector_size_bytes
        if size < 512 or size & (size - 1):
            raise ValueError(f"sector size must be a power of two >= 512, not {size}")
        if self.slot_sectors < 2:
            raise ValueError("a slot needs at least one data sector and one trailer sector")
        if self._STATUS_HEADER_BYTES + 3 * self.slot_sectors > size:
            raise ValueError("the swap-status sector cannot hold 3 records per slot sector")

    @property
    def slot_size_bytes(self) -> int:
        return self.sector_size_bytes * self.slot_sectors

    @property
    def image_capacity_bytes(self) -> int:
        """Largest image (header + body + TLVs) a slot holds: all but the trailer sector."""
        return self.sector_size_bytes * (self.slot_sectors - 1)

    @property
    def data_sectors(self) -> int:
        return self.slot_sectors - 1

    def slot_offset(self, slot: int) -> int:
        if slot not in (0, 1):
            raise ValueError(f"slot must be 0 (primary) or 1 (secondary), not {slot}")
        return slot * self.slot_size_bytes

    def trailer_sector_offset(self, slot: int) -> int:
        return self.slot_offset(slot) + self.image_capacity_bytes

    def slot_end(self, slot: int) -> int:
        return self.slot_offset(slot) + self.slot_size_bytes

    @property
    def scratch_offset(self) -> int:
        return 2 * self.slot_size_bytes

    @property
    def status_offset(self) -> int:
        return self.scratch_offset + self.sector_size_bytes

    @property
    def counter_offsets(self) -> tuple[int, int]:
        first = self.status_offset + self.sector_size_bytes
        return (first, first + self.sector_size_bytes)

    @property
    def total_size_bytes(self) -> int:
        return self.counter_offsets[1] + self.sector_size_bytes

    def sectors_for(self, size_bytes: int) -> int:
        """Number of sectors needed to hold ``size_bytes`` from a sector boundary."""
        return -(-size_bytes // self.sector_size_bytes)


class FlashStorage:
    """A NOR flash device backed by a file (see the module docstring for the rules).

    Opening a missing or empty file creates it fully erased; opening a file of
    another size raises `FlashError` (it was made with another layout).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        layout: FlashLayout,
        *,
        durable: bool = True,
        power_cut_after_ops: int | None = None,
        torn_ops: bool = True,
        op_delay_s: float = 0.0,
    ) -> None:
        self.path = Path(path)
        self.layout = layout
        self.durable = durable
        self.power_cut_after_ops = power_cut_after_ops
        self.torn_ops = torn_ops
        # Slows every mutating operation down, so a test can SIGKILL a process mid-swap.
        self.op_delay_s = op_delay_s
        self.ops_done = 0
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            size = os.fstat(self._fd).st_size
            if size == 0:
                self._fill_erased()
            elif size != layout.total_size_bytes:
                raise FlashError(
                    f"{self.path} holds {size} bytes but the layout needs "
                    f"{layout.total_size_bytes}; it was made for another flash layout"
                )
        except BaseException:
            os.close(self._fd)
            raise

    def _fill_erased(self) -> None:
        blank = bytes([ERASED_BYTE]) * _FILL_CHUNK_BYTES
        total = self.layout.total_size_bytes
        for offset in range(0, total, _FILL_CHUNK_BYTES):
            os.pwrite(self._fd, blank[: min(_FILL_CHUNK_BYTES, total - offset)], offset)
        os.fsync(self._fd)

    # -- reading --------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        self._check_range(offset, length)
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise FlashError(f"short read at 0x{offset:x}: the flash file was truncated")
        return data

    def is_erased(self, offset: int, length: int) -> bool:
        return self.read(offset, length).count(ERASED_BYTE) == length

    # -- mutating -------------------------------------------------------------------------

    def write(self, offset: int, data: bytes) -> None:
        """Program ``data`` at ``offset``; every target byte must be erased."""
        if not data:
            return
        current = self.read(offset, len(data))
        if current.count(ERASED_BYTE) != len(current):
            first = next(i for i, b in enumerate(current) if b != ERASED_BYTE)
            raise FlashWriteError(
                f"write of {len(data)} bytes at 0x{offset:x} over non-erased flash "
                f"at 0x{offset + first:x} (erase the sector first)"
            )
        self._before_op(lambda: os.pwrite(self._fd, data[: len(data) // 2], offset))
        os.pwrite(self._fd, data, offset)

    def erase_sector(self, offset: int) -> None:
        """Erase the sector starting at ``offset`` (must be sector-aligned)."""
        size = self.layout.sector_size_bytes
        if offset % size:
            raise FlashError(f"erase at 0x{offset:x} is not aligned to a {size}-byte sector")
        self._check_range(offset, size)
        blank = bytes([ERASED_BYTE]) * size
        self._before_op(lambda: os.pwrite(self._fd, blank[: size // 2], offset))
        os.pwrite(self._fd, blank, offset)

    def erase(self, offset: int, length: int) -> None:
        """Erase every sector of ``[offset, offset + length)``, skipping blank ones.

        Skipping sectors that already read as erased is what real drivers do to
        save time and wear; it also keeps the operation count honest in tests.
        """
        size = self.layout.sector_size_bytes
        if offset % size or length % size:
            raise FlashError(f"erase range 0x{offset:x}+{length} is not sector-aligned")
        for sector in range(offset, offset + length, size):
            if not self.is_erased(sector, size):
                self.erase_sector(sector)

    def barrier(self) -> None:
        """Make every operation so far durable before the next one (fdatasync)."""
        if self.durable:
            os.fdatasync(self._fd)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FlashStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.layout.total_size_bytes:
            raise FlashError(
                f"access 0x{offset:x}+{length} outside the "
                f"{self.layout.total_size_bytes}-byte flash"
            )
        if self._fd < 0:
            raise FlashError("the flash storage is closed")

    def _before_op(self, apply_torn: Callable[[], object]) -> None:
        """Count one mutating operation; at the injected power cut, tear it and raise."""
        if self.op_delay_s:
            time.sleep(self.op_delay_s)
        if self.power_cut_after_ops is not None and self.ops_done >= self.power_cut_after_ops:
            if self.torn_ops:
                apply_torn()
            raise PowerCut(f"power cut during flash operation #{self.ops_done + 1}")
        self.ops_done += 1
