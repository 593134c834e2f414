"""The emulated NOR flash: erase/write rules, persistence, power-cut injection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.flash import FlashError, FlashLayout, FlashStorage, FlashWriteError, PowerCut

LAYOUT = FlashLayout(sector_size_bytes=4096, slot_sectors=4)
SECTOR = LAYOUT.sector_size_bytes


@pytest.fixture
def flash(tmp_path: Path) -> Iterator[FlashStorage]:
    with FlashStorage(tmp_path / "flash.bin", LAYOUT, durable=False) as storage:
        yield storage


def test_a_new_flash_file_is_fully_erased(tmp_path: Path) -> None:
    with FlashStorage(tmp_path / "f.bin", LAYOUT) as storage:
        assert storage.is_erased(0, LAYOUT.total_size_bytes)
    assert (tmp_path / "f.bin").stat().st_size == LAYOUT.total_size_bytes


def test_layout_regions_follow_each_other_without_overlap() -> None:
    regions = [
        (LAYOUT.slot_offset(0), LAYOUT.slot_size_bytes),
        (LAYOUT.slot_offset(1), LAYOUT.slot_size_bytes),
        (LAYOUT.scratch_offset, SECTOR),
        (LAYOUT.status_offset, SECTOR),
        (LAYOUT.counter_offsets[0], SECTOR),
        (LAYOUT.counter_offsets[1], SECTOR),
    ]
    position = 0
    for offset, size in regions:
        assert offset == position
        position += size
    assert position == LAYOUT.total_size_bytes
    assert LAYOUT.image_capacity_bytes == 3 * SECTOR
    assert LAYOUT.trailer_sector_offset(1) == LAYOUT.slot_offset(1) + 3 * SECTOR


@pytest.mark.parametrize(
    ("sector", "slots"), [(1000, 8), (4096, 1), (512, 200)], ids=["not-pow2", "no-data", "status"]
)
def test_impossible_layouts_are_refused(sector: int, slots: int) -> None:
    with pytest.raises(ValueError):
        FlashLayout(sector_size_bytes=sector, slot_sectors=slots)


def test_a_byte_is_written_once_after_an_erase(flash: FlashStorage) -> None:
    flash.write(100, b"\x12\x34")
    assert flash.read(99, 4) == b"\xff\x12\x34\xff"
    with pytest.raises(FlashWriteError, match="non-erased"):
        flash.write(101, b"\x00")  # would only clear bits, still refused
    flash.erase_sector(0)
    assert flash.is_erased(0, SECTOR)
    flash.write(101, b"\x00")


def test_erase_is_by_aligned_sector_and_in_range(flash: FlashStorage) -> None:
    with pytest.raises(FlashError, match="aligned"):
        flash.erase_sector(10)
    with pytest.raises(FlashError, match="outside"):
        flash.erase_sector(LAYOUT.total_size_bytes)
    with pytest.raises(FlashError, match="outside"):
        flash.write(LAYOUT.total_size_bytes - 1, b"ab")
    with pytest.raises(FlashError, match="sector-aligned"):
        flash.erase(0, 100)


def test_erase_skips_sectors_that_are_already_blank(flash: FlashStorage) -> None:
    flash.write(SECTOR + 5, b"x")
    before = flash.ops_done
    flash.erase(0, 3 * SECTOR)
    assert flash.ops_done == before + 1  # only the sector holding data was erased
    assert flash.is_erased(0, 3 * SECTOR)


def test_contents_survive_reopening_and_a_wrong_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    with FlashStorage(path, LAYOUT) as storage:
        storage.write(7, b"kept")
        storage.barrier()
    with FlashStorage(path, LAYOUT) as storage:
        assert storage.read(7, 4) == b"kept"
    with pytest.raises(FlashError, match="another flash layout"):
        FlashStorage(path, FlashLayout(slot_sectors=5))


def test_power_cut_tears_the_operation_it_interrupts(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    storage = FlashStorage(path, LAYOUT, durable=False, power_cut_after_ops=2)
    storage.write(0, b"aa")
    storage.write(16, b"bb")
    with pytest.raises(PowerCut):
        storage.write(32, b"12345678")
    storage.close()
    with FlashStorage(path, LAYOUT) as after:
        assert after.read(0, 2) == b"aa"
        assert after.read(16, 2) == b"bb"
        assert after.read(32, 8) == b"1234\xff\xff\xff\xff"  # first half only


def test_power_cut_during_an_erase_leaves_the_sector_half_erased(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    with FlashStorage(path, LAYOUT) as storage:
        storage.write(0, b"\x00" * SECTOR)
    storage = FlashStorage(path, LAYOUT, power_cut_after_ops=0)
    with pytest.raises(PowerCut):
        storage.erase_sector(0)
    storage.close()
    with FlashStorage(path, LAYOUT) as after:
        assert after.is_erased(0, SECTOR // 2)
        assert after.read(SECTOR // 2, SECTOR // 2) == b"\x00" * (SECTOR // 2)


def test_power_cut_is_not_a_flash_error() -> None:
    # Code that handles FlashError must not swallow a simulated power cut.
    assert not issubclass(PowerCut, FlashError)
