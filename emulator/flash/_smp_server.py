"""An SMP (mcumgr) server for the virtual device: the OS and image groups.

Sans-IO: nothing here reads or writes a port. The device loop gives SMP lines in
(`emulator.flash._smp_serial` frames them, `hal.serial.LineDemux` tells them from
other traffic) and writes back what it gets::

    demux = LineDemux()
    for is_smp, piece in demux.feed(chunk):
        if is_smp:
            port.write(server.feed(piece))
        else:
            ...  # the device's own protocol (COBS frames) or console noise

Groups served (request version 1 or 2; the reply uses the request's version):

- OS: echo, reset (the reply is produced, then ``on_reset`` is called; the caller
  must still write that reply, so the hook should schedule the reboot, not do it),
  mcumgr parameters (``buf_size``/``buf_count``, which clients use to size upload
  chunks), application info, bootloader info (queries ``mode`` and
  `IMAGE_CLASS_QUERY`, the image ids the device boots).
- Image: state read; state write (test = mark pending, confirm = make permanent or
  confirm the running image); upload (resumable: every reply carries the offset
  the server wants next, and a new upload at offset 0 with the same ``sha`` and
  ``len`` as an unfinished one resumes it); erase of the secondary slot.

An upload is checked early (first chunk: header, size, downgrade; slot not busy)
and in full when the last byte arrives (SHA-256 of the data against ``sha``, then
the image itself: hash TLV, signature, board, version, security counter); a
refused image is erased at once. Group errors are replied as SMP version 2
``{"err": {"group", "rc"}}`` (Zephyr's ``IMG_MGMT_ERR`` codes, see
`IMAGE_ERROR_FOR_REJECTION`), or version 1 ``{"rc", "rsn"}``.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cbor2
from pydantic import ValidationError
from smp import header as smphdr
from smp import image_management as smpimg
from smp import message as smpmsg
from smp import os_management as smpos
from smp.error import MGMT_ERR

from emulator.flash._bootloader import Bootloader, BootStateError, RunningImage, SlotBusy
from emulator.flash._image import ImageRejected, RejectReason, parse_header
from emulator.flash._smp_serial import DEFAULT_BUF_SIZE_BYTES, SmpFrameDecoder, encode_smp_frame
from emulator.flash._storage import FlashError

_log = logging.getLogger(__name__)

_SMP_HEADER = struct.Struct(">BBHHBB")

DEFAULT_BUF_COUNT = 4

IMAGE_CLASS_QUERY = "image-class"
"""Bootloader information query (the query is the bootloader's to define) answered with
the ``imgtool sign --vid VID --cid CID`` a device boots, ``{"vid": ..., "cid": ...}``;
no answer from a device that boots images of any board."""


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------

IMG = smpimg.IMG_MGMT_ERR

IMAGE_ERROR_FOR_REJECTION: dict[RejectReason, smpimg.IMG_MGMT_ERR] = {
    RejectReason.MALFORMED: IMG.INVALID_IMAGE_HEADER,
    RejectReason.UNSUPPORTED: IMG.INVALID_IMAGE_HEADER,
    RejectReason.TOO_LARGE: IMG.INVALID_IMAGE_TOO_LARGE,
    RejectReason.BAD_HASH: IMG.INVALID_HASH,
    # img_mgmt has no signature code: MCUboot finds bad signatures at boot. The
    # closest is a bad TLV (the signature TLVs are what failed).
    RejectReason.UNSIGNED: IMG.INVALID_TLV,
    RejectReason.UNKNOWN_KEY: IMG.INVALID_TLV,
    RejectReason.BAD_SIGNATURE: IMG.INVALID_TLV,
    # An image for another board is one not meant for this flash area.
    RejectReason.WRONG_BOARD: IMG.INVALID_FLASH_ADDRESS,
    RejectReason.DOWNGRADE: IMG.CURRENT_VERSION_IS_NEWER,
    RejectReason.SECURITY_COUNTER: IMG.CURRENT_VERSION_IS_NEWER,
}

_V1_CODE_FOR_IMAGE_ERROR: dict[smpimg.IMG_MGMT_ERR, MGMT_ERR] = {
    IMG.NO_FREE_SLOT: MGMT_ERR.EBADSTATE,
    IMG.IMAGE_ALREADY_PENDING: MGMT_ERR.EBADSTATE,
    IMG.HASH_NOT_FOUND: MGMT_ERR.ENOENT,
    IMG.NO_IMAGE: MGMT_ERR.ENOENT,
    IMG.FLASH_WRITE_FAILED: MGMT_ERR.EUNKNOWN,
    IMG.INVALID_IMAGE_TOO_LARGE: MGMT_ERR.ENOMEM,
}


class _GroupError(Exception):
    def __init__(self, code: int, reason: str, v1_code: MGMT_ERR = MGMT_ERR.EINVAL) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.v1_code = v1_code


class _ProtocolError(Exception):
    """An SMP-level error (``{"rc": MGMT_ERR}``), not a group one."""

    def __init__(self, code: MGMT_ERR, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _image_error(code: smpimg.IMG_MGMT_ERR, reason: str) -> _GroupError:
    return _GroupError(code, reason, _V1_CODE_FOR_IMAGE_ERROR.get(code, MGMT_ERR.EINVAL))


def _rejection(refusal: ImageRejected) -> _GroupError:
    return _image_error(IMAGE_ERROR_FOR_REJECTION[refusal.reason], str(refusal))


# --------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceIdentity:
    """What OS application info reports; ``board`` is the hardware platform (``i``)."""

    board: str = "printer-emu-virtual"
    node_name: str = "printer-emu"
    kernel_name: str = "printer-emu"
    machine: str = "emulated"


@dataclass
class _Upload:
    total_bytes: int
    sha: bytes | None
    next_offset: int = 0
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)
    verified: bool = False


@dataclass(frozen=True)
class _Incoming:
    """A decoded request: its header, CBOR fields and the packet they came from."""

    header: smphdr.Header
    fields: dict[str, Any]
    packet: bytes

    def parse(self, cls: type[_RequestT]) -> _RequestT:
        """Build the smp request model, ignoring fields it does not know (newer clients)."""
        known = {k: v for k, v in self.fields.items() if k in cls.model_fields}
        for reserved in ("header", "version", "sequence", "smp_data"):
            known.pop(reserved, None)
        return cls(header=self.header, smp_data=self.packet, **known)

    def reply(self) -> dict[str, Any]:
        """Arguments that make a response answer this request (sequence, version)."""
        return {"sequence": self.header.sequence, "version": self.header.version}


_RequestT = TypeVar("_RequestT", bound=smpmsg.Request)
_Handler = Callable[[_Incoming], smpmsg.Response]


class SmpServer:
    """Serves SMP requests against a `Bootloader` (the device's image management).

    `feed` takes one SMP line and returns the encoded reply lines (empty until a
    request is complete). `handle_packet` does the same for a raw SMP packet.
    """

    def __init__(
        self,
        bootloader: Bootloader,
        *,
        identity: DeviceIdentity | None = None,
        on_reset: Callable[[], None] | None = None,
        buf_size_bytes: int = DEFAULT_BUF_SIZE_BYTES,
        buf_count: int = DEFAULT_BUF_COUNT,
    ) -> None:
        self.bootloader = bootloader
        self.identity = identity if identity is not None else DeviceIdentity()
        self.on_reset = on_reset
        self.buf_size_bytes = buf_size_bytes
        self.buf_count = buf_count
        self.reset_requested = False
        self._decoder = SmpFrameDecoder(buf_size_bytes)
        self._upload: _Upload | None = None
        OS, IMAGE = smphdr.GroupId.OS_MANAGEMENT, smphdr.GroupId.IMAGE_MANAGEMENT
        os_cmd, img_cmd = smphdr.CommandId.OSManagement, smphdr.CommandId.ImageManagement
        read, write = smphdr.OP.READ, smphdr.OP.WRITE
        self._handlers: dict[tuple[int, int, int], _Handler] = {
            (OS, os_cmd.ECHO, write): self._echo,
            (OS, os_cmd.RESET, write): self._reset,
            (OS, os_cmd.MCUMGR_PARAMETERS, read): self._parameters,
            (OS, os_cmd.OS_APPLICATION_INFO, read): self._application_info,
            (OS, os_cmd.BOOTLOADER_INFO, read): self._bootloader_info,
            (IMAGE, img_cmd.STATE, read): self._state_read,
            (IMAGE, img_cmd.STATE, write): self._state_write,
            (IMAGE, img_cmd.UPLOAD, write): self._upload_chunk,
            (IMAGE, img_cmd.ERASE, write): self._erase,
        }

    def running_image(self) -> RunningImage | None:
        """Version, hash and confirmed state of the image that runs (None: no image)."""
        return self.bootloader.running_image()

    @property
    def upload_offset(self) -> int | None:
        """Offset the unfinished upload wants next (None when there is none)."""
        return None if self._upload is None else self._upload.next_offset

    def feed(self, line: bytes) -> bytes:
        """Take one SMP line; return the reply, framed (``b""`` if none is due yet)."""
        packet = self._decoder.feed_line(line)
        if packet is None:
            return b""
        reply = self.handle_packet(packet)
        encoded = encode_smp_frame(reply) if reply else b""
        if self.reset_requested and self.on_reset is not None:
            self.on_reset()
        return encoded

    def handle_packet(self, packet: bytes) -> bytes:
        """Serve one raw SMP packet; return the raw reply packet (``b""`` to ignore it)."""
        if len(packet) < _SMP_HEADER.size:
            _log.warning("SMP packet shorter than its header dropped")
            return b""
        op_byte, _flags, length, group, seq, command = _SMP_HEADER.unpack_from(packet)
        op, version = op_byte & 0x07, (op_byte >> 3) & 0x03
        if op not in (smphdr.OP.READ, smphdr.OP.WRITE):
            return b""  # a response sent to us: nothing to answer
        raw = (op, version, group, seq, command)
        try:
            if version not in (smphdr.Version.V1, smphdr.Version.V2):
                raise _ProtocolError(MGMT_ERR.UNSUPPORTED_TOO_NEW, f"SMP version {version}")
            handler = self._handlers.get((group, command, op))
            if handler is None:
                raise _ProtocolError(MGMT_ERR.ENOTSUP, "command not supported")
            header = smphdr.Header.loads(packet[: _SMP_HEADER.size])
            body = packet[_SMP_HEADER.size : _SMP_HEADER.size + length]
            try:
                fields = cbor2.loads(body) if body else {}
            except (cbor2.CBORDecodeError, ValueError) as exc:
                raise _ProtocolError(MGMT_ERR.EINVAL, f"body is not CBOR: {exc}") from None
            if not isinstance(fields, dict):
                raise _ProtocolError(MGMT_ERR.EINVAL, "body is not a CBOR map")
            return handler(_Incoming(header, fields, packet)).BYTES
        except _ProtocolError as exc:
            return _error_packet(raw, {"rc": int(exc.code)})
        except _GroupError as exc:
            if version == smphdr.Version.V1:
                return _error_packet(raw, {"rc": int(exc.v1_code), "rsn": exc.reason})
            return _error_packet(raw, {"err": {"group": group, "rc": int(exc.code)}})
        except ValidationError as exc:
            reason = f"invalid request: {exc.error_count()} field error(s)"
            return _error_packet(raw, {"rc": int(MGMT_ERR.EINVAL), "rsn": reason})
        except (ValueError, TypeError) as exc:
            # Whatever a client sends, the device answers and keeps serving.
            _log.warning("malformed SMP request: %s", exc)
            return _error_packet(raw, {"rc": int(MGMT_ERR.EINVAL)})

    # -- OS group -------------------------------------------------------------------------

    def _echo(self, incoming: _Incoming) -> smpmsg.Response:
        request = incoming.parse(smpos.EchoWriteRequest)
        return smpos.EchoWriteResponse(**incoming.reply(), r=request.d)

    def _reset(self, incoming: _Incoming) -> smpmsg.Response:
        incoming.parse(smpos.ResetWriteRequest)
        self.reset_requested = True
        return smpos.ResetWriteResponse(**incoming.reply())

    def _parameters(self, incoming: _Incoming) -> smpmsg.Response:
        return smpos.MCUMgrParametersReadResponse(
            **incoming.reply(), buf_size=self.buf_size_bytes, buf_count=self.buf_count
        )

    def _application_info(self, incoming: _Incoming) -> smpmsg.Response:
        request = incoming.parse(smpos.OSApplicationInfoReadRequest)
        running = self.bootloader.running
        release = str(running.version) if running is not None else "none"
        ident = self.identity
        # Zephyr's order: kernel name, node, release, version, build date, machine,
        # processor, hardware platform, operating system.
        table = [
            ("s", ident.kernel_name),
            ("n", ident.node_name),
            ("r", release),
            ("v", release),
            ("m", ident.machine),
            ("p", ident.machine),
            ("i", ident.board),
            ("o", "printer-emu"),
        ]
        wanted = request.format or "s"
        if wanted == "a":
            wanted = "".join(key for key, _ in table)
        unknown = set(wanted) - {key for key, _ in table} - {"b"}
        if unknown:
            raise _GroupError(
                smpos.OS_MGMT_RET_RC.INVALID_FORMAT, f"unknown format {''.join(sorted(unknown))}"
            )
        output = " ".join(value for key, value in table if key in wanted)
        return smpos.OSApplicationInfoReadResponse(**incoming.reply(), output=output)

    def _bootloader_info(self, incoming: _Incoming) -> smpmsg.Response:
        request = incoming.parse(smpos.BootloaderInformationReadRequest)
        if request.query is None:
            return smpos.BootloaderInformationReadResponse(**incoming.reply(), bootloader="MCUboot")
        if request.query == "mode":
            mode = {
                "mode": int(smpos.MCUbootMode.SWAP_USING_SCRATCH),
                "no-downgrade": self.bootloader.policy.downgrade_prevention,
            }
            return smpos.BootloaderInformationReadResponse(
                **incoming.reply(), bootloader="MCUboot", response=mode
            )
        if request.query == IMAGE_CLASS_QUERY:
            policy = self.bootloader.policy
            if policy.vendor is None or policy.board is None:
                raise _GroupError(smpos.OS_MGMT_RET_RC.QUERY_YIELDS_NO_ANSWER,
                                  "this device boots images of any board")
            return smpos.BootloaderInformationReadResponse(
                **incoming.reply(), bootloader="MCUboot",
                response={"vid": policy.vendor, "cid": policy.board},
            )
        raise _GroupError(smpos.OS_MGMT_RET_RC.QUERY_YIELDS_NO_ANSWER, "unknown query")

    # -- image group ----------------------------------------------------------------------

    def _image_states(self) -> list[smpimg.ImageState]:
        return [
            smpimg.ImageState(
                slot=state.slot,
                version=str(state.version),
                hash=state.sha256,
                bootable=state.bootable,
                pending=state.pending,
                confirmed=state.confirmed,
                active=state.active,
                permanent=state.permanent,
            )
            for state in self.bootloader.slot_states()
        ]

    def _state_read(self, incoming: _Incoming) -> smpmsg.Response:
        return smpimg.ImageStatesReadResponse(
            **incoming.reply(), images=self._image_states(), splitStatus=0
        )

    def _state_write(self, incoming: _Incoming) -> smpmsg.Response:
        request = incoming.parse(smpimg.ImageStatesWriteRequest)
        boot = self.bootloader
        primary, secondary = boot.slot_image(0), boot.slot_image(1)
        primary_hash = primary.sha256 if primary is not None else None
        secondary_hash = secondary.sha256 if secondary is not None else None
        try:
            if request.confirm and request.hash in (None, primary_hash):
                boot.confirm_running()
            elif request.hash is None:
                raise _image_error(IMG.INVALID_HASH, "a test request needs the image hash")
            elif request.hash == secondary_hash:
                boot.set_pending(permanent=request.confirm)
            elif request.hash == primary_hash:
                raise _image_error(
                    IMG.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED, "that image already runs"
                )
            else:
                raise _image_error(IMG.HASH_NOT_FOUND, "no image with that hash")
        except ImageRejected as refusal:
            raise _rejection(refusal) from None
        except SlotBusy as busy:
            raise _image_error(IMG.NO_FREE_SLOT, str(busy)) from None
        except BootStateError as exc:
            raise _image_error(IMG.NO_IMAGE, str(exc)) from None
        except FlashError as exc:
            raise _image_error(IMG.FLASH_WRITE_FAILED, str(exc)) from None
        return smpimg.ImageStatesWriteResponse(
            **incoming.reply(), images=self._image_states(), splitStatus=0
        )

    def _erase(self, incoming: _Incoming) -> smpmsg.Response:
        request = incoming.parse(smpimg.ImageEraseRequest)
        if request.slot not in (None, 1):
            raise _image_error(IMG.NO_FREE_SLOT, f"slot {request.slot} holds the running image")
        self._upload = None
        try:
            self.bootloader.erase_secondary()
        except SlotBusy as busy:
            raise _image_error(IMG.NO_FREE_SLOT, str(busy)) from None
        except FlashError as exc:
            raise _image_error(IMG.FLASH_ERASE_FAILED, str(exc)) from None
        return smpimg.ImageEraseResponse(**incoming.reply())

    def _upload_chunk(self, incoming: _Incoming) -> smpmsg.Response:
        request = incoming.parse(smpimg.ImageUploadWriteRequest)
        session = self._upload
        try:
            if request.off == 0:
                resumed = self._resumable(request)
                if resumed is not None:
                    return self._upload_reply(incoming, resumed)
                session = self._start_upload(request)
            elif session is None or request.off != session.next_offset:
                # Zephyr's answer to an unexpected offset: drop the data, say what we want.
                wanted = 0 if session is None else session.next_offset
                return smpimg.ImageUploadWriteResponse(**incoming.reply(), rc=0, off=wanted)
            if session.next_offset + len(request.data) > session.total_bytes:
                raise _image_error(
                    IMG.INVALID_IMAGE_DATA_OVERRUN, "more data than the announced length"
                )
            self.bootloader.write_secondary(session.next_offset, request.data)
            session.hasher.update(request.data)
            session.next_offset += len(request.data)
            if session.next_offset == session.total_bytes:
                self._finish_upload(session)
        except ImageRejected as refusal:
            if session is not None and session.next_offset == session.total_bytes:
                self._abandon_upload()
            else:
                self._upload = None
            raise _rejection(refusal) from None
        except SlotBusy as busy:
            raise _image_error(IMG.NO_FREE_SLOT, str(busy)) from None
        except FlashError as exc:
            self._upload = None
            raise _image_error(IMG.FLASH_WRITE_FAILED, str(exc)) from None
        return self._upload_reply(incoming, session)

    def _resumable(self, request: smpimg.ImageUploadWriteRequest) -> _Upload | None:
        session = self._upload
        if (
            session is not None
            and session.sha is not None
            and request.sha == session.sha
            and request.len == session.total_bytes
            and session.next_offset > 0
        ):
            _log.info("SMP upload resumed at offset %d", session.next_offset)
            return session
        return None

    def _start_upload(self, request: smpimg.ImageUploadWriteRequest) -> _Upload:
        self._upload = None
        if request.image not in (None, 0):
            raise _image_error(IMG.INVALID_SLOT, f"this device has no image {request.image}")
        if request.len is None:
            raise _image_error(IMG.INVALID_LENGTH, "the first chunk must carry len")
        if request.sha is not None and not 1 <= len(request.sha) <= 32:
            raise _image_error(IMG.INVALID_HASH, "sha must be 1 to 32 bytes")
        capacity = self.bootloader.layout.image_capacity_bytes
        if request.len > capacity:
            raise ImageRejected(
                RejectReason.TOO_LARGE, f"{request.len} bytes, the slot holds {capacity}"
            )
        image_header = parse_header(request.data)
        declared = (
            image_header.header_size_bytes
            + image_header.image_size_bytes
            + image_header.protected_tlv_size_bytes
        )
        if declared > request.len:
            raise ImageRejected(RejectReason.MALFORMED, "header sizes exceed the upload length")
        self.bootloader.check_version(image_header.version, strictly_newer=bool(request.upgrade))
        self.bootloader.begin_secondary_upload(request.len)
        session = _Upload(request.len, request.sha)
        self._upload = session
        return session

    def _finish_upload(self, session: _Upload) -> None:
        self.bootloader.storage.barrier()
        if session.sha is not None and session.hasher.digest()[: len(session.sha)] != session.sha:
            raise ImageRejected(
                RejectReason.BAD_HASH, "the data received does not match the upload's sha"
            )
        self.bootloader.check_candidate(self.bootloader.read_slot(1))
        session.verified = True

    def _abandon_upload(self) -> None:
        """Erase a refused image so that it can never be marked for boot."""
        self._upload = None
        # Cannot be busy: the upload itself was only allowed because no revert is pending.
        self.bootloader.erase_secondary()

    def _upload_reply(self, incoming: _Incoming, session: _Upload) -> smpmsg.Response:
        done = session.next_offset == session.total_bytes
        match = True if done and session.sha is not None and session.verified else None
        return smpimg.ImageUploadWriteResponse(
            **incoming.reply(), rc=0, off=session.next_offset, match=match
        )


def _error_packet(raw: tuple[int, int, int, int, int], body: dict[str, Any]) -> bytes:
    op, version, group, seq, command = raw
    payload = cbor2.dumps(body)
    op_byte = (version << 3) | (op + 1)  # READ -> READ_RSP, WRITE -> WRITE_RSP
    return _SMP_HEADER.pack(op_byte, 0, len(payload), group, seq, command) + payload
