"""MCUboot's bootloader, "swap using scratch", on the emulated flash (`FlashLayout`).

- The decision at boot is MCUboot's table, read from the slot trailers
  (`emulator.flash._trailer`): secondary trailer has the magic -> TEST (``image_ok``
  unset) or PERM (set); else primary has the magic, ``copy_done`` set and
  ``image_ok`` unset -> REVERT (a test image that was not confirmed); else NONE.
- Before a TEST/PERM swap the secondary image is verified (`verify_image` against the
  `BootPolicy`), and refused (erased, the primary keeps running) if it fails, is a
  lower version than the primary (``downgrade_prevention``) or carries a security
  counter below the device's stored one (`emulator.flash._security_counter`). The
  stored counter rises when an image is confirmed.
- The swap runs sector by sector through the scratch sector, three steps each
  (secondary -> scratch, primary -> secondary, scratch -> primary). Before any
  step the swap type and size are committed to the status sector
  (`emulator.flash._swap_status`), and one progress byte is written after each step,
  with a barrier before and after it. A boot that finds a committed status finishes
  that swap first (each step erases its destination, and its source is intact until
  the step is recorded, so redoing a step is always safe), then rewrites the trailers
  and only then erases the status.
- Records that commit a decision are written magic-last: a power cut half-way
  through leaves the old decision in force. Hence a power cut at any instant of an
  upload (only the secondary slot changes), a state change or a swap leaves a
  flash that boots a valid image.
- The application side (`Bootloader.set_pending`, `confirm_running`,
  `erase_secondary`, the upload helpers) never erases or writes the primary slot's
  image, and refuses to touch the secondary while it holds the image a revert would
  bring back (`SlotBusy`).

Beyond MCUboot, on purpose: if the primary slot holds no valid image and the
secondary does, the bootloader installs it permanently rather than staying
without an image; if a revert target is invalid, the running image is kept and
confirmed instead of reverting to garbage.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.flash._image import ImageInfo, ImageRejected, ImageVersion, RejectReason, parse_image
from emulator.flash._security_counter import SecurityCounterStore
from emulator.flash._storage import FlashLayout, FlashStorage
from emulator.flash._swap_status import (
    SwapStatus,
    Uncommitted,
    commit_status,
    erase_status,
    read_status,
    record_done,
    record_step,
)
from emulator.flash._trailer import (
    FlagState,
    Magic,
    SlotTrailer,
    SwapType,
    erase_trailer,
    read_trailer,
    rewrite_trailer,
    set_image_ok,
)
from emulator.flash._verify import BootPolicy, verify_image


class SlotBusy(Exception):
    """The secondary slot holds the image a pending revert brings back."""


class BootStateError(Exception):
    """An operation that needs a running image when none runs."""


@dataclass(frozen=True)
class RunningImage:
    """What runs after a boot: reported in HELLO and by SMP."""

    version: ImageVersion
    sha256: bytes
    confirmed: bool
    security_counter: int | None


@dataclass(frozen=True)
class BootResult:
    """Outcome of one boot: the image that runs (None: no bootable image) and why."""

    image: RunningImage | None
    swap: SwapType
    resumed: bool
    notes: tuple[str, ...]


@dataclass(frozen=True)
class SlotState:
    """One slot as SMP's image state read reports it (Zephyr's flag rules)."""

    slot: int
    version: ImageVersion
    sha256: bytes
    bootable: bool
    pending: bool
    confirmed: bool
    active: bool
    permanent: bool


class Bootloader:
    """MCUboot's boot decision and swap, plus the application-side slot operations.

    One instance per power-on: `boot` must run first; after it, `running` is the
    primary slot's image (or None when nothing valid could be booted).
    """

    def __init__(self, storage: FlashStorage, policy: BootPolicy | None = None) -> None:
        self.storage = storage
        self.layout: FlashLayout = storage.layout
        self.policy = policy if policy is not None else BootPolicy()
        self._counter = SecurityCounterStore(storage)
        self.running: ImageInfo | None = None

    # -- reading the flash ----------------------------------------------------------------

    def read_slot(self, slot: int, length: int | None = None) -> bytes:
        """The slot's image area (trailer sector excluded), or its first ``length`` bytes."""
        size = self.layout.image_capacity_bytes if length is None else length
        return self.storage.read(self.layout.slot_offset(slot), size)

    def slot_image(self, slot: int) -> ImageInfo | None:
        """The image in ``slot`` parsed, unverified; None if there is none."""
        try:
            return parse_image(self.read_slot(slot))
        except ImageRejected:
            return None

    def _valid_image(self, slot: int) -> ImageInfo | None:
        try:
            return verify_image(self.read_slot(slot), self.policy, self.layout.image_capacity_bytes)
        except ImageRejected:
            return None

    def trailer(self, slot: int) -> SlotTrailer:
        """The trailer of ``slot`` (0 primary, 1 secondary) as the flash holds it now."""
        return read_trailer(self.storage, slot)

    @property
    def security_counter(self) -> int:
        """The device's stored (non-volatile) security counter."""
        return self._counter.read()

    def swap_type(self) -> SwapType:
        """What the next boot will do, from the trailers alone (MCUboot's table)."""
        secondary = self.trailer(1)
        if secondary.magic is Magic.GOOD:
            return SwapType.PERM if secondary.image_ok is FlagState.SET else SwapType.TEST
        primary = self.trailer(0)
        if (
            primary.magic is Magic.GOOD
            and primary.image_ok is FlagState.UNSET
            and primary.copy_done is FlagState.SET
        ):
            return SwapType.REVERT
        return SwapType.NONE

    def running_confirmed(self) -> bool:
        """False while the running image is on test (the next reset reverts it)."""
        primary = self.trailer(0)
        return not (primary.magic is Magic.GOOD and primary.image_ok is FlagState.UNSET)

    def running_image(self) -> RunningImage | None:
        info = self.running
        if info is None or info.sha256 is None:
            return None
        return RunningImage(
            version=info.version,
            sha256=info.sha256,
            confirmed=self.running_confirmed(),
            security_counter=info.security_counter,
        )

    def slot_states(self) -> list[SlotState]:
        """Both slots' images with Zephyr img_mgmt's flags (state read)."""
        swap = self.swap_type()
        states: list[SlotState] = []
        for slot in (0, 1):
            info = self.slot_image(slot)
            if info is None or info.sha256 is None:
                continue
            primary = slot == 0
            running = primary and self.running is not None and self.running.sha256 == info.sha256
            # While a revert is pending, the secondary holds the image that will stay.
            confirmed = not primary if swap is SwapType.REVERT else primary
            states.append(
                SlotState(
                    slot=slot,
                    version=info.version,
                    sha256=info.sha256,
                    bootable=info.bootable,
                    pending=not primary and swap in (SwapType.TEST, SwapType.PERM),
                    confirmed=confirmed,
                    active=running,
                    permanent=not primary and swap is SwapType.PERM,
                )
            )
        return states

    # -- checks ---------------------------------------------------------------------------

    def _reference_image(self) -> ImageInfo | None:
        """The image a candidate must not be older than: the running one, else the primary."""
        return self.running if self.running is not None else self._valid_image(0)

    def check_version(self, version: ImageVersion, *, strictly_newer: bool = False) -> None:
        """Refuse ``version`` if it is a downgrade from the running image.

        ``strictly_newer`` is SMP upload's ``upgrade`` flag: equal is refused too.
        """
        reference = self._reference_image()
        if reference is None or not (strictly_newer or self.policy.downgrade_prevention):
            return
        build = self.policy.compare_build_number
        new_key = version.order_key(compare_build_number=build)
        old_key = reference.version.order_key(compare_build_number=build)
        if new_key < old_key or (strictly_newer and new_key == old_key):
            raise ImageRejected(
                RejectReason.DOWNGRADE,
                f"image {version} is not newer than the running {reference.version}",
            )

    def check_candidate(self, data: bytes) -> ImageInfo:
        """Everything a new image must pass before it may be swapped in."""
        info = verify_image(data, self.policy, self.layout.image_capacity_bytes)
        self.check_version(info.version)
        stored = self.security_counter
        image_counter = info.security_counter or 0
        if image_counter < stored:
            raise ImageRejected(
                RejectReason.SECURITY_COUNTER,
                f"image counter {image_counter} is below the device's {stored}",
            )
        return info

    # -- application-side operations (the running firmware's img_mgmt) --------------------

    def _refuse_if_revert_pending(self, action: str) -> None:
        if self.swap_type() is SwapType.REVERT:
            raise SlotBusy(
                f"cannot {action}: the running image is on test and not confirmed, so the "
                "secondary slot holds the image a reset brings back; confirm the running "
                "image or reset to roll back first"
            )

    def erase_secondary(self) -> None:
        """Erase slot 1, trailer first (so a cut leaves no half-erased pending image)."""
        self._refuse_if_revert_pending("erase the secondary slot")
        self._erase_slot(1)

    def begin_secondary_upload(self, size_bytes: int) -> None:
        """Prepare slot 1 for an upload of ``size_bytes``: cancel pending, erase."""
        self._refuse_if_revert_pending("upload")
        if size_bytes > self.layout.image_capacity_bytes:
            raise ImageRejected(
                RejectReason.TOO_LARGE,
                f"{size_bytes} bytes, the slot holds {self.layout.image_capacity_bytes}",
            )
        erase_trailer(self.storage, 1)
        needed = self.layout.sectors_for(size_bytes) * self.layout.sector_size_bytes
        self.storage.erase(self.layout.slot_offset(1), needed)
        self.storage.barrier()

    def write_secondary(self, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > self.layout.image_capacity_bytes:
            raise ImageRejected(RejectReason.TOO_LARGE, "write past the end of the slot")
        self.storage.write(self.layout.slot_offset(1) + offset, data)

    def set_pending(self, *, permanent: bool) -> ImageInfo:
        """Mark the secondary image for the next boot: test (run once) or permanent.

        The image is verified first (`check_candidate`); the trailer is written
        flags first and magic last, so a cut leaves either no request or all of it.
        """
        self._refuse_if_revert_pending("mark an image for the next boot")
        info = self.check_candidate(self.read_slot(1))
        trailer = self.trailer(1)
        if trailer.magic is Magic.GOOD:
            if (trailer.image_ok is FlagState.SET) == permanent:
                return info
            if permanent and trailer.image_ok is FlagState.UNSET:
                set_image_ok(self.storage, 1)
                return info
        swap = SwapType.PERM if permanent else SwapType.TEST
        rewrite_trailer(self.storage, 1, image_ok=permanent, copy_done=False, swap_info=swap)
        return info

    def confirm_running(self) -> None:
        """Make the running image permanent (MCUboot's ``boot_set_confirmed``)."""
        if self.running is None:
            raise BootStateError("no image is running, nothing to confirm")
        trailer = self.trailer(0)
        if trailer.magic is Magic.GOOD and trailer.image_ok is FlagState.UNSET:
            set_image_ok(self.storage, 0)
        elif trailer.magic is Magic.BAD or trailer.image_ok is FlagState.BAD:
            rewrite_trailer(self.storage, 0, image_ok=True, copy_done=True, swap_info=SwapType.NONE)
        self._counter.raise_to(self.running.security_counter or 0)

    # -- boot -----------------------------------------------------------------------------

    def boot(self) -> BootResult:
        """Run the bootloader: finish or start a swap, then boot the primary slot."""
        notes: list[str] = []
        resumed = False
        self.running = None  # nothing runs until this boot picks an image
        status = read_status(self.storage)
        if status is Uncommitted.STATUS:
            # A status whose commit (magic) never completed: no step ran yet.
            notes.append("discarded an uncommitted swap status")
            erase_status(self.storage)
            status = None
        if isinstance(status, SwapStatus):
            resumed = True
            swap = status.swap_type
            if status.done:
                notes.append(f"finished clean-up of a completed {swap.name} swap")
                erase_status(self.storage)
            else:
                notes.append(
                    f"resumed an interrupted {swap.name} swap at step "
                    f"{status.next_step}/{3 * status.sectors}"
                )
                self._run_swap(swap, status.sectors, status.next_step)
        else:
            swap = self._decide_and_swap(notes)
        primary = self._valid_image(0)
        self.running = primary
        if primary is None or primary.sha256 is None:
            notes.append("no valid image in the primary slot")
            return BootResult(None, swap, resumed, tuple(notes))
        if self.running_confirmed():
            self._counter.raise_to(primary.security_counter or 0)
        return BootResult(self.running_image(), swap, resumed, tuple(notes))

    def _decide_and_swap(self, notes: list[str]) -> SwapType:
        swap = self.swap_type()
        primary = self._valid_image(0)
        if swap in (SwapType.TEST, SwapType.PERM):
            try:
                self.check_candidate(self.read_slot(1))
            except ImageRejected as refusal:
                notes.append(f"refused the pending image ({refusal}); erased it")
                self._erase_slot(1)
                return SwapType.FAIL
            if primary is None and swap is SwapType.TEST:
                notes.append("no valid image to revert to: installing the test image for good")
                swap = SwapType.PERM
        elif swap is SwapType.REVERT:
            if self._valid_image(1) is None:
                notes.append("revert target is not a valid image: keeping the running one")
                rewrite_trailer(
                    self.storage, 0, image_ok=True, copy_done=True, swap_info=SwapType.NONE
                )
                return SwapType.NONE
        elif primary is None:
            try:
                self.check_candidate(self.read_slot(1))
            except ImageRejected:
                return SwapType.NONE
            notes.append("primary slot holds no valid image: installing the secondary one")
            swap = SwapType.PERM
        else:
            return SwapType.NONE
        sectors = max(
            self.layout.sectors_for(info.total_size_bytes)
            for info in (self.slot_image(0), self.slot_image(1))
            if info is not None and info.total_size_bytes <= self.layout.image_capacity_bytes
        )
        commit_status(self.storage, swap, sectors)
        self._run_swap(swap, sectors, 0)
        notes.append(f"{swap.name} swap of {sectors} sectors done")
        return swap

    # -- swap machinery -------------------------------------------------------------------

    def _run_swap(self, swap: SwapType, sectors: int, first_step: int) -> None:
        sector = self.layout.sector_size_bytes
        primary, secondary = self.layout.slot_offset(0), self.layout.slot_offset(1)
        scratch = self.layout.scratch_offset
        for step in range(first_step, 3 * sectors):
            index, phase = divmod(step, 3)
            a, b = primary + index * sector, secondary + index * sector
            source, target = ((b, scratch), (a, b), (scratch, a))[phase]
            self.storage.erase(target, sector)
            self.storage.write(target, self.storage.read(source, sector))
            self.storage.barrier()  # the copy is on flash before the record claims it
            record_step(self.storage, step)
        self._finalize(swap)

    def _finalize(self, swap: SwapType) -> None:
        """Trailers after a swap; redone from scratch if a cut interrupts it."""
        confirmed = swap in (SwapType.PERM, SwapType.REVERT)
        rewrite_trailer(self.storage, 0, image_ok=confirmed, copy_done=True, swap_info=swap)
        erase_trailer(self.storage, 1)
        record_done(self.storage)
        erase_status(self.storage)

    def _erase_slot(self, slot: int) -> None:
        erase_trailer(self.storage, slot)
        self.storage.erase(self.layout.slot_offset(slot), self.layout.image_capacity_bytes)
        self.storage.barrier()
