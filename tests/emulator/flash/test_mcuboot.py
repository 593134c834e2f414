"""MCUboot image format and bootloader: checks, test/confirm/revert, power cuts.

Images are built at test time with imgtool's own CLI code (run in-process for
speed), signed with keys made by ``imgtool keygen`` in a temporary directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator.flash import (
    Bootloader,
    BootPolicy,
    FlashLayout,
    FlashStorage,
    ImageRejected,
    ImageVersion,
    PowerCut,
    RejectReason,
    SlotBusy,
    SwapType,
    TlvType,
    parse_image,
    verify_image,
)
from tests.imaging import ImageFactory, image_factory

LAYOUT = FlashLayout(sector_size_bytes=4096, slot_sectors=8)


# -- image building (imgtool) ----------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> ImageFactory:
    return image_factory(tmp_path_factory.mktemp("images"),
                         {"ec": "ecdsa-p256", "ed": "ed25519", "rogue": "ecdsa-p256"})


@pytest.fixture(scope="module")
def policy(images: ImageFactory) -> BootPolicy:
    return BootPolicy(
        trusted_keys_pem=(images.keys["ec"].read_bytes(), images.keys["ed"].read_bytes()),
        vendor="printer-emu",
        board="laser-a",
    )


# -- format ----------------------------------------------------------------------------


def test_parse_reads_header_tlvs_and_counter(images: ImageFactory) -> None:
    data = images.make("1.2.3+4", security_counter=7)
    info = parse_image(data)
    assert info.version == ImageVersion(1, 2, 3, 4)
    assert str(info.version) == "1.2.3.4"
    assert info.header.header_size_bytes == 0x200
    assert info.header.image_size_bytes == 7000
    assert info.total_size_bytes == len(data)
    assert info.security_counter == 7
    protected = {t.type for t in info.tlvs if t.protected}
    assert protected == {TlvType.SEC_CNT, TlvType.UUID_VID, TlvType.UUID_CID}
    assert info.sha256 is not None and len(info.sha256) == 32
    assert info.tlv_values(TlvType.ECDSA_SIG)


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.2.3", ImageVersion(1, 2, 3)),
        ("1.2.3+9", ImageVersion(1, 2, 3, 9)),
        ("1.2.3.9", ImageVersion(1, 2, 3, 9)),
        ("2", ImageVersion(2, 0, 0)),
    ],
)
def test_version_text(text: str, version: ImageVersion) -> None:
    assert ImageVersion.parse(text) == version


@pytest.mark.parametrize("key", ["ec", "ed"])
def test_signed_images_verify_with_either_key_type(
    images: ImageFactory, policy: BootPolicy, key: str
) -> None:
    info = verify_image(images.make("1.0.0", key=key), policy, LAYOUT.image_capacity_bytes)
    assert info.version == ImageVersion(1, 0, 0)


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def _signature_offset(data: bytes) -> int:
    info = parse_image(data)
    pos = info.hashed_size_bytes + 4
    while pos < info.total_size_bytes:
        tlv_type, length = struct.unpack_from("<HH", data, pos)
        if tlv_type in (TlvType.ECDSA_SIG, TlvType.ED25519):
            return pos + 4 + int(length) - 1  # the signature's last byte
        pos += 4 + length
    raise AssertionError("no signature TLV")


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("corrupt-body", RejectReason.BAD_HASH),
        ("unsigned", RejectReason.UNSIGNED),
        ("rogue-key", RejectReason.UNKNOWN_KEY),
        ("bad-signature", RejectReason.BAD_SIGNATURE),
        ("wrong-board", RejectReason.WRONG_BOARD),
        ("no-board", RejectReason.WRONG_BOARD),
        ("too-large", RejectReason.TOO_LARGE),
        ("bad-magic", RejectReason.MALFORMED),
        ("truncated", RejectReason.MALFORMED),
    ],
)
def test_every_refusal_has_its_reason(
    images: ImageFactory, policy: BootPolicy, case: str, reason: RejectReason
) -> None:
    good = images.make("1.0.0")
    data = {
        "corrupt-body": lambda: _flip(good, 0x300),
        "unsigned": lambda: images.make("1.0.0", key=None),
        "rogue-key": lambda: images.make("1.0.0", key="rogue"),
        "bad-signature": lambda: _flip(good, _signature_offset(good)),
        "wrong-board": lambda: images.make("1.0.0", board="laser-b"),
        "no-board": lambda: images.make("1.0.0", board=None),
        "too-large": lambda: images.make("1.0.0", payload_bytes=LAYOUT.image_capacity_bytes),
        "bad-magic": lambda: _flip(good, 0),
        "truncated": lambda: good[:-10],
    }[case]()
    with pytest.raises(ImageRejected) as refusal:
        verify_image(data, policy, LAYOUT.image_capacity_bytes)
    assert refusal.value.reason is reason


# -- bootloader ------------------------------------------------------------------------


@dataclass
class Device:
    """A flash file plus the policy, rebooted like a power cycle."""

    path: Path
    policy: BootPolicy

    def open(self, power_cut_after_ops: int | None = None) -> Bootloader:
        storage = FlashStorage(
            self.path, LAYOUT, durable=False, power_cut_after_ops=power_cut_after_ops
        )
        return Bootloader(storage, self.policy)

    def power_on(self) -> Bootloader:
        """Boot (a fresh bootloader, as after a power cycle) and return it running."""
        loader = self.open()
        loader.boot()
        return loader


def _program(loader: Bootloader, slot: int, image: bytes) -> None:
    """Debugger-style write of a slot (factory programming)."""
    offset = LAYOUT.slot_offset(slot)
    loader.storage.erase(offset, LAYOUT.slot_size_bytes)
    loader.storage.write(offset, image)


def _upload(loader: Bootloader, image: bytes) -> None:
    loader.begin_secondary_upload(len(image))
    loader.write_secondary(0, image)


@pytest.fixture
def device(tmp_path: Path, policy: BootPolicy, images: ImageFactory) -> Device:
    dev = Device(tmp_path / "flash.bin", policy)
    loader = dev.open()
    _program(loader, 0, images.make("1.0.0", security_counter=1))
    loader.storage.close()
    return dev


def _running(loader: Bootloader) -> tuple[str, bool] | None:
    image = loader.running_image()
    return None if image is None else (str(image.version), image.confirmed)


def test_an_erased_flash_boots_nothing(tmp_path: Path, policy: BootPolicy) -> None:
    result = Device(tmp_path / "f.bin", policy).open().boot()
    assert result.image is None
    assert result.swap is SwapType.NONE


def test_factory_image_boots_confirmed(device: Device) -> None:
    loader = device.power_on()
    assert _running(loader) == ("1.0.0", True)
    assert loader.security_counter == 1


def test_test_image_runs_once_then_reverts(device: Device, images: ImageFactory) -> None:
    loader = device.power_on()
    _upload(loader, images.make("1.1.0", security_counter=2))
    loader.set_pending(permanent=False)
    assert loader.swap_type() is SwapType.TEST
    loader.storage.close()

    loader = device.open()
    result = loader.boot()
    assert result.swap is SwapType.TEST
    assert _running(loader) == ("1.1.0", False)
    assert loader.swap_type() is SwapType.REVERT
    assert loader.security_counter == 1  # not raised before confirmation
    loader.storage.close()

    loader = device.open()
    assert loader.boot().swap is SwapType.REVERT
    assert _running(loader) == ("1.0.0", True)
    assert loader.swap_type() is SwapType.NONE
    secondary = loader.slot_image(1)
    assert secondary is not None and str(secondary.version) == "1.1.0"


def test_confirmed_test_image_stays(device: Device, images: ImageFactory) -> None:
    loader = device.power_on()
    _upload(loader, images.make("1.1.0", security_counter=2))
    loader.set_pending(permanent=False)
    loader.storage.close()
    loader = device.power_on()
    loader.confirm_running()
    assert _running(loader) == ("1.1.0", True)
    assert loader.security_counter == 2
    loader.storage.close()
    loader = device.power_on()
    assert _running(loader) == ("1.1.0", True)
    assert loader.swap_type() is SwapType.NONE


def test_permanent_image_needs_no_confirmation(device: Device, images: ImageFactory) -> None:
    loader = device.power_on()
    _upload(loader, images.make("2.0.0"))
    loader.set_pending(permanent=True)
    assert loader.swap_type() is SwapType.PERM
    loader.storage.close()
    loader = device.power_on()
    assert _running(loader) == ("2.0.0", True)
    loader.storage.close()
    loader = device.power_on()
    assert _running(loader) == ("2.0.0", True)


def test_downgrade_and_lower_security_counter_are_refused(
    device: Device, images: ImageFactory
) -> None:
    loader = device.power_on()
    _upload(loader, images.make("0.9.0"))
    with pytest.raises(ImageRejected) as refusal:
        loader.set_pending(permanent=False)
    assert refusal.value.reason is RejectReason.DOWNGRADE

    _upload(loader, images.make("3.0.0", security_counter=0))
    with pytest.raises(ImageRejected) as refusal:
        loader.set_pending(permanent=False)
    assert refusal.value.reason is RejectReason.SECURITY_COUNTER
    assert loader.swap_type() is SwapType.NONE


def test_bootloader_refuses_a_pending_downgrade_and_erases_it(
    device: Device, images: ImageFactory, policy: BootPolicy
) -> None:
    # An image marked by firmware that did not check versions: the bootloader does.
    lax = Device(device.path, dataclasses.replace(policy, downgrade_prevention=False))
    loader = lax.power_on()
    _upload(loader, images.make("0.5.0"))
    loader.set_pending(permanent=True)
    loader.storage.close()
    loader = device.open()
    result = loader.boot()
    assert result.swap is SwapType.FAIL
    assert _running(loader) == ("1.0.0", True)
    assert loader.slot_image(1) is None


def test_secondary_is_busy_while_a_revert_is_pending(device: Device, images: ImageFactory) -> None:
    loader = device.power_on()
    _upload(loader, images.make("1.1.0"))
    loader.set_pending(permanent=False)
    loader.storage.close()
    loader = device.power_on()  # runs 1.1.0 on test; slot 1 holds 1.0.0 to come back
    for action in (
        lambda: loader.begin_secondary_upload(100),
        loader.erase_secondary,
        lambda: loader.set_pending(permanent=True),
    ):
        with pytest.raises(SlotBusy):
            action()


def test_a_pending_image_on_an_empty_device_is_installed_for_good(
    tmp_path: Path, policy: BootPolicy, images: ImageFactory
) -> None:
    dev = Device(tmp_path / "f.bin", policy)
    loader = dev.open()
    assert loader.boot().image is None
    _upload(loader, images.make("1.0.0"))
    loader.set_pending(permanent=False)
    loader.storage.close()
    loader = dev.power_on()
    assert _running(loader) == ("1.0.0", True)


def test_security_counter_survives_many_raises_and_torn_entries(tmp_path: Path) -> None:
    dev = Device(tmp_path / "f.bin", BootPolicy())
    loader = dev.open()
    entries_per_sector = LAYOUT.sector_size_bytes // 8
    for value in range(1, 2 * entries_per_sector + 10):
        loader._counter.raise_to(value)
    assert loader.security_counter == 2 * entries_per_sector + 9
    loader.storage.close()
    cut = dev.open(power_cut_after_ops=0)
    with pytest.raises(PowerCut):
        cut._counter.raise_to(10**6)  # torn: half an entry on flash
    cut.storage.close()
    loader = dev.open()
    assert loader.security_counter == 2 * entries_per_sector + 9
    loader._counter.raise_to(10**6)
    assert loader.security_counter == 10**6


# -- power cuts ------------------------------------------------------------------------


def _ops_of(device: Device, snapshot: Path, action: Callable[[Bootloader], object]) -> int:
    """How many flash operations ``action`` performs from ``snapshot``."""
    probe = device.path.with_suffix(".probe")
    shutil.copyfile(snapshot, probe)
    loader = Device(probe, device.policy).open()
    action(loader)
    ops = loader.storage.ops_done
    loader.storage.close()
    return ops


def _cut_and_restart(
    device: Device, snapshot: Path, ops: int, action: Callable[[Bootloader], object]
) -> Bootloader:
    """Restore ``snapshot``, run ``action`` with a cut after ``ops`` operations, power on."""
    shutil.copyfile(snapshot, device.path)
    loader = device.open(power_cut_after_ops=ops)
    with pytest.raises(PowerCut):
        action(loader)
    loader.storage.close()
    return device.power_on()


def _assert_sound(loader: Bootloader, allowed: set[str]) -> str:
    image = loader.running_image()
    assert image is not None, "power cut left a device with no valid image"
    assert str(image.version) in allowed
    assert verify_image(loader.read_slot(0), loader.policy) is not None
    return str(image.version)


@pytest.mark.parametrize("permanent", [False, True], ids=["test", "perm"])
def test_power_cut_at_every_operation_of_a_swap(
    device: Device, images: ImageFactory, permanent: bool
) -> None:
    loader = device.power_on()
    _upload(loader, images.make("1.1.0", payload_bytes=9000))
    loader.set_pending(permanent=permanent)
    loader.storage.close()
    snapshot = device.path.with_suffix(".pending")
    shutil.copyfile(device.path, snapshot)
    total = _ops_of(device, snapshot, lambda bl: bl.boot())
    assert total > 30
    for ops in range(total):
        loader = _cut_and_restart(device, snapshot, ops, lambda bl: bl.boot())
        first = _assert_sound(loader, {"1.0.0", "1.1.0"})
        # A swap that starts is finished. Only a cut in the very last operation (the
        # clean-up after the swap) lets the next boot see a finished test swap whose
        # image never ran, which MCUboot reverts: the same as a test image that
        # lost power before confirming itself.
        if permanent or ops < total - 1:
            assert first == "1.1.0", f"cut after {ops} of {total} operations"
        loader.storage.close()
        # Whatever happened, the following boots follow MCUboot's rules to the end.
        loader = device.power_on()
        final = _assert_sound(loader, {"1.0.0", "1.1.0"})
        assert final == ("1.1.0" if permanent else "1.0.0")
        image = loader.running_image()
        assert image is not None and image.confirmed
        loader.storage.close()


def test_power_cut_at_every_operation_of_a_revert(device: Device, images: ImageFactory) -> None:
    loader = device.power_on()
    _upload(loader, images.make("1.1.0", payload_bytes=9000))
    loader.set_pending(permanent=False)
    loader.storage.close()
    device.power_on().storage.close()  # 1.1.0 runs on test; the next boot reverts
    snapshot = device.path.with_suffix(".testing")
    shutil.copyfile(device.path, snapshot)
    total = _ops_of(device, snapshot, lambda bl: bl.boot())
    for ops in range(total):
        loader = _cut_and_restart(device, snapshot, ops, lambda bl: bl.boot())
        assert _assert_sound(loader, {"1.0.0"}) == "1.0.0"
        image = loader.running_image()
        assert image is not None and image.confirmed
        loader.storage.close()


def test_power_cut_during_marking_and_confirming(device: Device, images: ImageFactory) -> None:
    loader = device.power_on()
    _upload(loader, images.make("1.1.0", security_counter=3))
    loader.storage.close()
    snapshot = device.path.with_suffix(".uploaded")
    shutil.copyfile(device.path, snapshot)

    def mark(bl: Bootloader) -> None:
        bl.boot()
        bl.set_pending(permanent=False)

    def mark_boot_confirm(bl: Bootloader) -> None:
        mark(bl)
        bl.boot()
        bl.confirm_running()

    for action in (mark, mark_boot_confirm):
        total = _ops_of(device, snapshot, action)
        for ops in range(total):
            loader = _cut_and_restart(device, snapshot, ops, action)
            _assert_sound(loader, {"1.0.0", "1.1.0"})
            loader.storage.close()


def test_repeated_power_cuts_while_resuming(device: Device, images: ImageFactory) -> None:
    loader = device.power_on()
    _upload(loader, images.make("1.1.0", payload_bytes=9000))
    loader.set_pending(permanent=True)
    loader.storage.close()
    snapshot = device.path.with_suffix(".pending")
    shutil.copyfile(device.path, snapshot)
    rng = random.Random(2024)
    for _trial in range(12):
        shutil.copyfile(snapshot, device.path)
        for _cut in range(rng.randint(2, 5)):
            loader = device.open(power_cut_after_ops=rng.randint(0, 25))
            with contextlib.suppress(PowerCut):
                loader.boot()
            loader.storage.close()
        loader = device.power_on()
        assert _assert_sound(loader, {"1.1.0"}) == "1.1.0"
        loader.storage.close()
