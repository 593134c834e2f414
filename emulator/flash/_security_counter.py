"""The device's security counter: a monotonic value in two flash sectors.

MCUboot refuses an image whose security counter (a protected TLV) is below the
device's; the device's counter rises when an image is confirmed, never falls.
"""

from __future__ import annotations

import struct

from emulator.flash._storage import FlashStorage

_COUNTER_ENTRY = struct.Struct("<II")  # value, value ^ 0xffffffff (a torn entry fails this)


class SecurityCounterStore:
    """A monotonic counter in two flash sectors, safe against torn writes.

    Entries are (value, ~value); the counter is the largest valid entry in either
    sector. A full sector is compacted into the other one before it is erased, so
    the largest value is always on flash somewhere.
    """

    def __init__(self, storage: FlashStorage) -> None:
        self._storage = storage
        self._sectors = storage.layout.counter_offsets
        self._slots = storage.layout.sector_size_bytes // _COUNTER_ENTRY.size

    def _scan(self, sector: int) -> tuple[int, int]:
        """(largest valid value, index of the first free slot after the last used one)."""
        raw = self._storage.read(sector, self._storage.layout.sector_size_bytes)
        best, free = 0, 0
        for index in range(self._slots):
            value, check = _COUNTER_ENTRY.unpack_from(raw, index * _COUNTER_ENTRY.size)
            if value == check == 0xFFFFFFFF:
                continue
            free = index + 1
            if value ^ check == 0xFFFFFFFF:
                best = max(best, value)
        return best, free

    def read(self) -> int:
        """The counter: the largest valid entry on flash (0 on a blank device)."""
        return max(self._scan(sector)[0] for sector in self._sectors)

    def raise_to(self, value: int) -> None:
        """Store ``value`` if it is above the counter; a lower value changes nothing."""
        scans = [self._scan(sector) for sector in self._sectors]
        if value <= max(best for best, _ in scans):
            return
        active = 0 if scans[0][0] >= scans[1][0] else 1
        sector, free = self._sectors[active], scans[active][1]
        entry = _COUNTER_ENTRY.pack(value, value ^ 0xFFFFFFFF)
        if free < self._slots:
            self._storage.write(sector + free * _COUNTER_ENTRY.size, entry)
            self._storage.barrier()
            return
        other = self._sectors[1 - active]
        self._storage.erase(other, self._storage.layout.sector_size_bytes)
        self._storage.write(other, entry)
        self._storage.barrier()
        self._storage.erase_sector(sector)
        self._storage.barrier()
