"""``printer-emu flash``: flash an MCUboot image over SMP, to the virtual device or a board.

Built on ``smpclient`` (asyncio) and its base64 serial transport, so the same
command flashes a Zephyr/MCUboot board with mcumgr over its UART and the virtual
device. Usage::

    printer-emu flash --port PORT IMAGE [--test | --confirm] [--no-reset]
    printer-emu flash --port PORT --list
    printer-emu flash --port PORT --confirm-running

Ports: smpclient's serial transport opens ``serial.Serial(port=...)``, i.e. a
device path only (``/dev/ttyACM0``, ``COM3``, a pty such as ``/dev/pts/5``).
pyserial URLs (``socket://host:port``, ``rfc2217://host:port``, ``spy://...``)
are not understood by smpclient; this module adds them by backing the same
transport with ``serial.serial_for_url`` (`_UrlSerialTransport`).

Flashing an image (`flash_image`):

1. Load the file (MCUboot ``.bin`` or Intel HEX) and check it locally: an MCUboot
   header, TLVs, and the SHA-256 TLV matching the contents (a corrupt file stops
   here). Padding after the TLVs (``imgtool --pad``) is not uploaded.
2. Connect; if the device reports its board (OS info ``i``) and the image
   carries imgtool ``--vid/--cid`` ids, they must match (wrong board).
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
with a one-line message; `flash_main` prints it and returns 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import serial
from intelhex import HexReaderError, IntelHex
from smp import error as smperr
from smp import image_management as smpimg
from smp.exceptions import SMPException
from smpclient import SMPClient
from smpclient.exceptions import SMPBadSequence, SMPUploadError, SMPValidationException
from smpclient.generics import error, error_v1, error_v2, success
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import OSApplicationInfoRead, ResetWrite
from smpclient.transport import SMPTransportDisconnected
from smpclient.transport.serial import SMPSerialTransport

from emulator.flash._mcuboot import (
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

_QUIET_LOGGERS = ("smpclient", "smp")
_RETRY_INTERVAL_S = 0.2


class FlashCommandError(Exception):
    """A failure to report to the user in one line (the CLI exits with status 2)."""


# --------------------------------------------------------------------------------------
# The image file
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------------------


class _UrlPort:
    """The subset of a pyserial port smpclient's transport uses, over ``serial_for_url``.

    URL handlers (socket, rfc2217) lack ``out_waiting`` and a useful ``in_waiting``;
    writes are synchronous, so there is never anything waiting to go out.
    """

    out_waiting = 0

    def __init__(self, port: Any) -> None:
        self._port = port
        self.port: str = port.portstr
        tcp = getattr(port, "_socket", None)  # pyserial's socket:// handler keeps it there
        if isinstance(tcp, socket.socket):
            # The transport writes a frame line by line; with Nagle's algorithm each
            # request then waits for the peer's delayed ACK (~40 ms).
            tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> int:
        written: int = self._port.write(data)
        return written

    def read_all(self) -> bytes:
        data: bytes = self._port.read(65536)  # opened with timeout=0: what is there
        return data

    def reset_input_buffer(self) -> None:
        self._port.reset_input_buffer()

    def close(self) -> None:
        self._port.close()


class _UrlSerialTransport(SMPSerialTransport):
    """smpclient's serial transport over a pyserial URL (``socket://``, ``rfc2217://``)."""

    async def connect(self, address: str, timeout_s: float) -> None:
        self._reset_state()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                port = serial.serial_for_url(address, timeout=0)
                break
            except (serial.SerialException, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"cannot open {address}: {exc}") from None
                await asyncio.sleep(_RETRY_INTERVAL_S)
        # smpclient declares _conn Final and documents overriding connect() to back the
        # transport with another byte pipe; this is the one place that swaps it.
        object.__setattr__(self, "_conn", _UrlPort(port))


def _is_url(port: str) -> bool:
    return "://" in port


def _transport(port: str) -> SMPSerialTransport:
    return _UrlSerialTransport() if _is_url(port) else SMPSerialTransport()


@asynccontextmanager
async def _connected(port: str, timeout_s: float) -> AsyncIterator[_Session]:
    """An SMP session on ``port``; the device must answer within ``timeout_s``."""
    if not _is_url(port) and not os.path.exists(port):
        raise FlashCommandError(f"no device: there is no serial port {port}")
    session = _Session(port, timeout_s)
    try:
        await session.open()
        yield session
    finally:
        await session.close()


class _Session:
    """An smpclient connection with every library failure turned into a user message."""

    def __init__(self, port: str, timeout_s: float) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.transport = _transport(port)
        self.client = SMPClient(self.transport, port, timeout_s=timeout_s)
        self._open = False

    async def open(self) -> None:
        try:
            await self.client.connect(connect_timeout_s=self.timeout_s)
        except TimeoutError:
            raise FlashCommandError(f"no device: cannot open {self.port}") from None
        except (serial.SerialException, OSError) as exc:
            raise FlashCommandError(f"no device: cannot open {self.port}: {exc}") from None
        except SMPException as exc:
            # Bytes that are no SMP frame: a device mid-reset, or no SMP device at all.
            # A user message, so the wait after a reset asks again.
            with suppress(serial.SerialException, OSError):
                await self.client.disconnect()
            raise FlashCommandError(f"garbled answer from {self.port}: {exc}") from None
        self._open = True

    async def close(self) -> None:
        if self._open:
            self._open = False
            # The port may already be gone (a device that reset and re-enumerated).
            with suppress(serial.SerialException, OSError):
                await self.client.disconnect()

    async def request(self, request: Any, what: str, timeout_s: float | None = None) -> Any:
        """Send ``request``; return the success response or raise a user message."""
        try:
            response = await self.client.request(request, timeout_s=timeout_s)
        except TimeoutError:
            raise FlashCommandError(
                f"no answer from {self.port} to {what} within "
                f"{timeout_s or self.timeout_s:g} s (is an SMP device on this port?)"
            ) from None
        except SMPTransportDisconnected:
            raise FlashCommandError(f"lost the connection to {self.port} during {what}") from None
        except (SMPBadSequence, SMPValidationException) as exc:
            raise FlashCommandError(f"unexpected reply from {self.port} to {what}: {exc}") from None
        except SMPException as exc:
            raise FlashCommandError(f"garbled answer from {self.port} to {what}: {exc}") from None
        if error(response):
            raise FlashCommandError(f"{what} refused: {describe_smp_error(response)}")
        return response


# --------------------------------------------------------------------------------------
# Error messages
# --------------------------------------------------------------------------------------

_IMG = smpimg.IMG_MGMT_ERR
_IMAGE_ERROR_TEXT: dict[int, str] = {
    _IMG.INVALID_IMAGE_TOO_LARGE: "image too large for the slot",
    _IMG.INVALID_HASH: "bad hash: the data the device received does not match the image",
    _IMG.INVALID_TLV: "bad signature: the device only accepts images signed with its key",
    _IMG.INVALID_FLASH_ADDRESS: "wrong board: the image was built for another board",
    _IMG.CURRENT_VERSION_IS_NEWER: (
        "downgrade refused: the image's version or security counter is lower than "
        "the running image's"
    ),
    _IMG.NO_FREE_SLOT: (
        "device busy: the running image is on test and not confirmed; confirm it "
        "(--confirm-running) or reset the device to roll back, then flash again"
    ),
    _IMG.IMAGE_ALREADY_PENDING: "another image is already pending",
    _IMG.INVALID_IMAGE_HEADER: "the device does not accept this image (bad MCUboot header)",
    _IMG.INVALID_IMAGE_HEADER_MAGIC: "not an MCUboot image",
    _IMG.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED: "that image is the one running",
    _IMG.HASH_NOT_FOUND: "the device holds no image with that hash",
    _IMG.NO_IMAGE: "no image runs on the device",
    _IMG.FLASH_WRITE_FAILED: "the device failed to write its flash",
    _IMG.FLASH_ERASE_FAILED: "the device failed to erase its flash",
    _IMG.INVALID_SLOT: "the device has no such image slot",
    _IMG.INVALID_IMAGE_DATA_OVERRUN: "the device received more data than announced",
}


def describe_smp_error(response: Any) -> str:
    """One line for an SMP error reply (version 1 ``rc``/``rsn`` or version 2 ``err``)."""
    if error_v2(response):
        rc = response.err.rc
        text = _IMAGE_ERROR_TEXT.get(int(rc)) if response.err.group == 1 else None
        name = getattr(rc, "name", str(rc))
        return f"{text} ({name})" if text else f"error {name} in group {response.err.group}"
    if error_v1(response):
        code = smperr.MGMT_ERR(response.rc)
        reason = f": {response.rsn}" if response.rsn else ""
        return f"{code.name}{reason}"
    return str(response)


# --------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotReport:
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


async def _read_slots(session: _Session) -> list[SlotReport]:
    return _slots(await session.request(ImageStatesRead(), "reading the image slots"))


@dataclass(frozen=True)
class FlashReport:
    """What a flash did and what runs now (``running`` is None with ``--no-reset``)."""

    uploaded_bytes: int
    resumed_from_bytes: int
    running: SlotReport | None
    marked: Mode


async def _check_board(session: _Session, image: LocalImage) -> None:
    vids = image.info.tlv_values(TlvType.UUID_VID, protected=True)
    cids = image.info.tlv_values(TlvType.UUID_CID, protected=True)
    if len(vids) != 1 or len(cids) != 1 or len(vids[0]) != 16:
        return  # the image names no board: only the device can judge
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
    session: _Session, image: LocalImage, progress: ProgressCallback | None
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
    await asyncio.sleep(_RETRY_INTERVAL_S)  # let the device go down before asking
    last_problem = "no answer"
    while time.monotonic() < deadline:
        if not _is_url(port) and not os.path.exists(port):
            last_problem = "the port is gone"
            await asyncio.sleep(_RETRY_INTERVAL_S)
            continue
        try:
            async with _connected(port, min(timeout_s, 2.0)) as session:
                return await _read_slots(session)
        except FlashCommandError as exc:
            last_problem = str(exc)
        await asyncio.sleep(_RETRY_INTERVAL_S)
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
    async with _connected(port, timeout_s) as session:
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


async def list_slots(port: str, *, timeout_s: float = 5.0) -> list[SlotReport]:
    async with _connected(port, timeout_s) as session:
        return await _read_slots(session)


async def confirm_running(port: str, *, timeout_s: float = 5.0) -> SlotReport:
    """Confirm the running image (the end of a successful test)."""
    async with _connected(port, timeout_s) as session:
        response = await session.request(
            ImageStatesWrite(confirm=True), "confirming the running image"
        )
        running = next((s for s in _slots(response) if s.active), None)
        if running is None:
            raise FlashCommandError("the device reports no running image")
        return running


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printer-emu flash",
        description=(
            "Flash an MCUboot image over SMP (mcumgr) to the virtual device or a "
            "Zephyr/MCUboot board. PORT is a device path or a pyserial URL "
            "(socket://host:port, rfc2217://host:port)."
        ),
    )
    parser.add_argument("--port", required=True, help="serial port or pyserial URL")
    parser.add_argument("image", nargs="?", type=Path, help="MCUboot image (.bin or .hex)")
    marking = parser.add_mutually_exclusive_group()
    marking.add_argument(
        "--test",
        dest="mode",
        action="store_const",
        const="test",
        help="run the image once; it rolls back at the next reset unless confirmed (default)",
    )
    marking.add_argument(
        "--confirm",
        dest="mode",
        action="store_const",
        const="confirm",
        help="make the image permanent at once",
    )
    parser.add_argument("--no-reset", action="store_true", help="do not reset after marking")
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument("--list", action="store_true", help="show the slots and their states")
    actions.add_argument(
        "--confirm-running", action="store_true", help="confirm the image that runs now"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument(
        "--reset-timeout", type=float, default=30.0, help="seconds to wait for the reboot"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log the SMP traffic")
    return parser


class _ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, nothing otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self._live:
            return
        rate = done / max(time.monotonic() - self._started, 1e-6) / 1000
        percent = 100 * done // max(total, 1)
        self._stream.write(f"\ruploading {percent:3d}%  {done}/{total} bytes  {rate:.1f} kB/s")
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


def flash_main(argv: list[str]) -> int:
    """The ``flash`` subcommand: 0 on success, 2 on any user-facing failure."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # argparse: usage error (2) or --help (0)
        return exit_request.code if isinstance(exit_request.code, int) else 2
    actions = sum((args.image is not None, args.list, args.confirm_running))
    if actions != 1:
        parser.print_usage(sys.stderr)
        print(
            "printer-emu flash: error: give an IMAGE, --list or --confirm-running",
            file=sys.stderr,
        )
        return 2
    saved_levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    if not args.verbose:
        # smpclient logs timeouts and tracebacks at ERROR; the user gets one line instead.
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        if args.list:
            for slot in asyncio.run(list_slots(args.port, timeout_s=args.timeout)):
                print(slot.describe())
        elif args.confirm_running:
            slot = asyncio.run(confirm_running(args.port, timeout_s=args.timeout))
            print(f"confirmed {slot.version} (sha256 {slot.sha256.hex()[:16]})")
        else:
            asyncio.run(
                flash_image(
                    args.port,
                    args.image,
                    mode=args.mode or "test",
                    reset=not args.no_reset,
                    timeout_s=args.timeout,
                    reset_timeout_s=args.reset_timeout,
                    progress=_ProgressLine(sys.stderr),
                )
            )
    except FlashCommandError as exc:
        print(f"printer-emu flash: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("printer-emu flash: interrupted", file=sys.stderr)
        return 130
    finally:
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
    return 0
