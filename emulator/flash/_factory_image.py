"""The factory image: what a virtual device's flash holds before anyone flashes it.

A real board leaves the factory programmed; so does the virtual device, whose flash
file would otherwise boot nothing and answer only SMP (MCUboot's serial recovery). The
image is a genuine MCUboot image — header, body, protected TLVs (security counter,
imgtool's vendor/class UUIDs for the board), SHA-256 — built here byte for byte as
``imgtool sign`` lays it out, but unsigned: a board file that names a signing key gets
no factory image, since only its owner can sign one.
"""

from __future__ import annotations

import hashlib
import struct

from emulator.flash._image import (
    HEADER_STRUCT,
    IMAGE_MAGIC,
    TLV_INFO_MAGIC,
    TLV_PROT_INFO_MAGIC,
    TLV_STRUCT,
    TlvType,
    image_class_uuids,
)

FACTORY_VERSION = (0, 1, 0, 0)
_HEADER_SIZE_BYTES = 0x200  # imgtool sign --pad-header --header-size 0x200


def _tlv(tlv_type: int, value: bytes) -> bytes:
    return TLV_STRUCT.pack(tlv_type, len(value)) + value


def _area(magic: int, entries: bytes) -> bytes:
    return TLV_STRUCT.pack(magic, TLV_STRUCT.size + len(entries)) + entries


def factory_image(vendor: str, board: str, body: bytes | None = None,
                  version: tuple[int, int, int, int] = FACTORY_VERSION,
                  security_counter: int = 0) -> bytes:
    """An unsigned MCUboot image for ``vendor``/``board`` (imgtool's --vid/--cid)."""
    if body is None:
        body = f"printer-emu factory firmware for {board}\n".encode().ljust(1024, b"\0")
    vid, cid = image_class_uuids(vendor, board)
    protected = _area(TLV_PROT_INFO_MAGIC,
                      _tlv(TlvType.SEC_CNT, struct.pack("<I", security_counter))
                      + _tlv(TlvType.UUID_VID, vid) + _tlv(TlvType.UUID_CID, cid))
    major, minor, revision, build = version
    header = HEADER_STRUCT.pack(IMAGE_MAGIC, 0, _HEADER_SIZE_BYTES, len(protected), len(body),
                                0, major, minor, revision, build, 0)
    hashed = header.ljust(_HEADER_SIZE_BYTES, b"\0") + body + protected
    return hashed + _area(TLV_INFO_MAGIC, _tlv(TlvType.SHA256, hashlib.sha256(hashed).digest()))
