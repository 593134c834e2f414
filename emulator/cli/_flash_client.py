"""The host's flash client: what ``printer-emu flash`` does over an SMP session, to the
virtual device or a Zephyr/MCUboot board (`emulator.cli._smp_session` talks to it).

Flashing an image (`flash_image`):

1. Load the file (MCUboot ``.bin`` or Intel HEX) and check it locally: an MCUboot
   header, TLVs, and the SHA-256 TLV matching the contents (a corrupt file stops
   here). Padding after the TLVs (``imgtool --pad``) is not uploaded.
2. Connect; if the device reports its board (OS info ``i``) and the image
   carries imgtool ``--vid/--cid`` ids, they must match (wrong board). An image
   without them is refused here if the device says it boots one image class
   (bootloader info query ``image-class``), with the ``imgtool sign --vid --cid`` that
   fixes it.
3. Read the slots. If the image already runs, only ``--confirm`` has work left;
   if it already sits complete in the secondary slot, it is not sent again.
4. Upload, with a progress callback. smpclient starts every upload at offset 0
   with the image's SHA-256; a device that holds an unfinished upload of the same
   image answers with the offset it wants next, so an interrupted upload resumes.
5. Read the slots again: the secondary must hold the image's hash.
6. Mark it for test (the default: it runs once and rolls back at the next reset
   unless confirmed) or permanent (``--confirm``).
7. Reset (unless ``--no-reset``), wait for the device to answer again (reopening
   the port if it vanished, as USB devices do), and report what runs now. A device
   that comes back running another image is an error.

Every failure a user can cause or meet (no device, wrong board, bad hash, bad
signature, downgrade, too large, device busy, timeouts) is a `FlashCommandError`
with a one-line message.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from intelhex import HexReaderError, IntelHex
from smpclient.exceptions import SMPBadSequence, SMPUploadError, SMPValidationException
from smpclient.generics import success
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import (
    BootloaderInformationRead,
    OSApplicationInfoRead,
    ResetWrite,
)
from smpclient.transport import SMPTransportDisconnected

from emulator.cli._smp_session import (
    RETRY_INTERVAL_S,
    FlashCommandError,
    SmpSession,
    connected,
    describe_smp_error,
    is_url,
)
from emulator.flash import (
    IMAGE_CLASS_QUERY,
    BootPolicy,
    ImageInfo,
    ImageRejected,
    RejectReason,
    TlvType,
    verify_image,
)

Mode = Literal["test", "confirm"]
ProgressCallback = Callable[[int, int], None]
"""Called with (bytes the device holds, image size) after every upload reply."""


@dataclass(frozen=True)
class LocalImage:
    """An image file's MCUboot image (padding stripped) and what it declares."""

    path: Path
    data: bytes
    info: ImageInfo

    @property
    def sha256(self) -> bytes:
        value = self.info.sha256
        assert value is not None  # verify_image refuses an image without it
        return value


def load_image(path: Path) -> LocalImage:
    """Read a ``.bin`` or Intel ``.hex`` image and check its structure and hash."""
    try:
        if path.suffix.lower() in (".hex", ".ihex"):
            data = bytes(IntelHex(str(path)).tobinarray())
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise FlashCommandError(f"no image file {path}") from None
    except (HexReaderError, ValueError) as exc:
        raise FlashCommandError(f"{path} is not a valid Intel HEX file: {exc}") from None
    except OSError as exc:
        raise FlashCommandError(f"cannot read {path}: {exc.strerror}") from None
    try:
        info = verify_image(data, BootPolicy())
    except ImageRejected as refusal:
        if refusal.reason is RejectReason.BAD_HASH:
            raise FlashCommandError(f"bad hash: {path} is corrupt ({refusal.detail})") from None
        raise FlashCommandError(f"{path} is not an MCUboot image: {refusal.detail}") from None
    return LocalImage(path, data[: info.total_size_bytes], info)


@dataclass(frozen=True)
class SlotReport:
    """One image slot as the device reports it (SMP image state read)."""

    slot: int
    version: str
    sha256: bytes
    active: bool
    confirmed: bool
    pending: bool
    permanent: bool
    bootable: bool

    def describe(self) -> str:
        flags = [
            name
            for name, on in (
                ("active", self.active),
                ("confirmed", self.confirmed),
                ("pending", self.pending),
                ("permanent", self.permanent),
            )
            if on
        ]
        if not self.bootable:
            flags.append("not-bootable")
        return (
            f"slot {self.slot}  {self.version:<14} sha256 {self.sha256.hex()[:16]}  "
            f"{' '.join(flags) or '-'}"
        )


def _slots(response: Any) -> list[SlotReport]:
    return [
        SlotReport(
            slot=state.slot,
            version=state.version,
            sha256=bytes(state.hash or b""),
            active=bool(state.active),
            confirmed=bool(state.confirmed),
            pending=bool(state.pending),
            permanent=bool(state.permanent),
            bootable=state.bootable is not False,
        )
        for state in response.images
        if state.image in (None, 0)
    ]


async def _read_slots(session: SmpSession) -> list[SlotReport]:
    return _slots(await session.request(ImageStatesRead(), "reading the image slots"))


@dataclass(frozen=True)
class FlashReport:
    """What a flash did and what runs now (``running`` is None with ``--no-reset``)."""

    uploaded_bytes: int
    resumed_from_bytes: int
    running: SlotReport | None
    marked: Mode


def _names_board(image: LocalImage) -> bool:
    """Whether the image carries imgtool's ``--vid/--cid`` ids."""
    vids = image.info.tlv_values(TlvType.UUID_VID, protected=True)
    cids = image.info.tlv_values(TlvType.UUID_CID, protected=True)
    return len(vids) == 1 and len(cids) == 1 and len(vids[0]) == 16


def _names_no_board(image: LocalImage, image_class: tuple[str, str] | None) -> str:
    """The refusal of an image without ``--vid/--cid`` by a device that wants them."""
    vid, cid = image_class or ("VENDOR", "BOARD")
    which = f"images for {vid}/{cid}" if image_class else "images for its board"
    return (f"wrong board: {image.path.name} names no board (it was signed without "
            f"--vid/--cid) and this device boots only {which}: sign it with "
            f"'imgtool sign --vid {vid} --cid {cid} ...'")


async def _device_image_class(session: SmpSession) -> tuple[str, str] | None:
    """The ``(vid, cid)`` the device boots, if it says (printer-emu's devices do)."""
    try:
        response = await session.client.request(
            BootloaderInformationRead(query=IMAGE_CLASS_QUERY))
    except (TimeoutError, SMPValidationException, SMPBadSequence):
        return None
    if not success(response) or not isinstance(response.response, dict):
        return None
    vid, cid = response.response.get("vid"), response.response.get("cid")
    return (vid, cid) if isinstance(vid, str) and isinstance(cid, str) else None


async def _check_board(session: SmpSession, image: LocalImage) -> None:
    if not _names_board(image):
        image_class = await _device_image_class(session)
        if image_class is not None:
            raise FlashCommandError(_names_no_board(image, image_class))
        return  # only the device can judge, at the end of the upload
    vids = image.info.tlv_values(TlvType.UUID_VID, protected=True)
    cids = image.info.tlv_values(TlvType.UUID_CID, protected=True)
    try:
        response = await session.client.request(OSApplicationInfoRead(format="i"))
    except (TimeoutError, SMPValidationException, SMPBadSequence):
        return
    if not success(response):
        return  # the device does not say what it is
    board = response.output.strip()
    expected = uuid.uuid5(uuid.UUID(bytes=vids[0]), board).bytes
    if board and expected != cids[0]:
        raise FlashCommandError(
            f"wrong board: {image.path.name} was built for another board class than "
            f"this device's {board!r} (imgtool --cid)"
        )


async def _upload(
    session: SmpSession, image: LocalImage, progress: ProgressCallback | None
) -> tuple[int, int]:
    """Upload (or resume); return (bytes sent, offset the device resumed from)."""
    total = len(image.data)
    resumed_from = 0
    first = True
    sent_before = 0
    try:
        async for offset in session.client.upload(
            image.data, first_timeout_s=max(session.timeout_s, 10.0)
        ):
            if first and offset > session.transport.max_unencoded_size:
                resumed_from = offset  # more than one chunk: the device resumed
            first = False
            sent_before = offset
            if progress is not None:
                progress(offset, total)
    except SMPUploadError as exc:
        detail = exc.args[0] if exc.args else exc
        text = describe_smp_error(detail) if not isinstance(detail, str) else detail
        if text.startswith("wrong board") and not _names_board(image):
            text = _names_no_board(image, None)
        raise FlashCommandError(f"upload refused at offset {sent_before}: {text}") from None
    except TimeoutError:
        raise FlashCommandError(
            f"the device stopped answering at offset {sent_before} of {total}; "
            "run the same command again to resume"
        ) from None
    except SMPTransportDisconnected:
        raise FlashCommandError(
            f"lost the connection at offset {sent_before} of {total}; "
            "run the same command again to resume"
        ) from None
    return total - resumed_from, resumed_from


async def _wait_for_device(port: str, timeout_s: float, deadline_s: float) -> list[SlotReport]:
    """After a reset: reopen the port until the device answers a state read."""
    deadline = time.monotonic() + deadline_s
    await asyncio.sleep(RETRY_INTERVAL_S)  # let the device go down before asking
    last_problem = "no answer"
    while time.monotonic() < deadline:
        if not is_url(port) and not os.path.exists(port):
            last_problem = "the port is gone"
            await asyncio.sleep(RETRY_INTERVAL_S)
            continue
        try:
            async with connected(port, min(timeout_s, 2.0)) as session:
                return await _read_slots(session)
        except FlashCommandError as exc:
            last_problem = str(exc)
        await asyncio.sleep(RETRY_INTERVAL_S)
    raise FlashCommandError(
        f"the device did not come back within {deadline_s:g} s after the reset ({last_problem})"
    )


async def flash_image(
    port: str,
    image_path: Path,
    *,
    mode: Mode = "test",
    reset: bool = True,
    timeout_s: float = 5.0,
    reset_timeout_s: float = 30.0,
    progress: ProgressCallback | None = None,
    say: Callable[[str], None] = print,
) -> FlashReport:
    """Flash ``image_path`` to the device on ``port`` (see the module docstring)."""
    image = load_image(image_path)
    version = image.info.version
    async with connected(port, timeout_s) as session:
        await _check_board(session, image)
        slots = await _read_slots(session)
        running = next((s for s in slots if s.active), None)
        if running is not None and running.sha256 == image.sha256:
            if mode == "confirm" and not running.confirmed:
                await session.request(ImageStatesWrite(confirm=True), "confirming")
                running = next(s for s in await _read_slots(session) if s.active)
            say(f"{version} already runs on the device; nothing to upload")
            return FlashReport(0, 0, running, mode)
        staged = next((s for s in slots if s.slot == 1 and s.sha256 == image.sha256), None)
        if staged is not None:
            say(f"{version} is already in the secondary slot; not sending it again")
            sent, resumed_from = 0, len(image.data)
        else:
            started = time.monotonic()
            sent, resumed_from = await _upload(session, image, progress)
            elapsed = max(time.monotonic() - started, 1e-6)
            resumed = f", resumed at {resumed_from}" if resumed_from else ""
            say(
                f"uploaded {image.path.name} ({version}, {len(image.data)} bytes{resumed}) "
                f"in {elapsed:.1f} s, {sent / elapsed / 1000:.1f} kB/s"
            )
        slots = await _read_slots(session)
        staged = next((s for s in slots if s.slot == 1), None)
        if staged is None or staged.sha256 != image.sha256:
            held = staged.sha256.hex()[:16] if staged is not None else "nothing"
            raise FlashCommandError(
                f"bad hash: the secondary slot holds {held}, the image is {image.sha256.hex()[:16]}"
            )
        await session.request(
            ImageStatesWrite(hash=image.sha256, confirm=mode == "confirm"),
            "marking the image for the next boot",
        )
        if not reset:
            say(
                f"{version} is marked {'permanent' if mode == 'confirm' else 'for test'}; "
                "it boots at the next reset"
            )
            return FlashReport(sent, resumed_from, None, mode)
        await session.request(ResetWrite(), "resetting the device")
    slots = await _wait_for_device(port, timeout_s, reset_timeout_s)
    running = next((s for s in slots if s.active), None)
    if running is None or running.sha256 != image.sha256:
        now = running.version if running is not None else "no image"
        raise FlashCommandError(
            f"the device came back running {now}, not {version}: its bootloader refused "
            "the new image"
        )
    if running.confirmed:
        say(f"now running {running.version} (confirmed)")
    else:
        say(
            f"now running {running.version} on test: confirm it with "
            f"'printer-emu flash --port {port} --confirm-running', or the next reset "
            "rolls back"
        )
    return FlashReport(sent, resumed_from, running, mode)


def recovery_note(port: str, slots: list[SlotReport]) -> str | None:
    """What to tell a user whose device runs no image (MCUboot's serial recovery)."""
    if any(s.active for s in slots):
        return None
    held = "no image" if not slots else "no image runs"
    return (f"{held}: the device is in serial recovery (MCUboot: no bootable image, SMP "
            f"only); flash one with 'printer-emu flash --port {port} IMAGE'")


async def reset_device(
    port: str, *, timeout_s: float = 5.0, reset_timeout_s: float = 30.0
) -> list[SlotReport]:
    """Reset the device (SMP OS reset), wait until it answers again, and return its
    slots: an image on test and not confirmed rolls back here."""
    async with connected(port, timeout_s) as session:
        await session.request(ResetWrite(), "resetting the device")
    return await _wait_for_device(port, timeout_s, reset_timeout_s)


async def list_slots(port: str, *, timeout_s: float = 5.0) -> list[SlotReport]:
    async with connected(port, timeout_s) as session:
        return await _read_slots(session)


async def confirm_running(port: str, *, timeout_s: float = 5.0) -> SlotReport:
    """Confirm the running image (the end of a successful test)."""
    async with connected(port, timeout_s) as session:
        response = await session.request(
            ImageStatesWrite(confirm=True), "confirming the running image"
        )
        running = next((s for s in _slots(response) if s.active), None)
        if running is None:
            raise FlashCommandError("the device reports no running image")
        return running
