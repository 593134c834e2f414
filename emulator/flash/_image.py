"""MCUboot's image format: what ``imgtool sign`` writes, parsed (all little-endian).

- A 32-byte header: magic ``0x96f3b83d``, load address, header size, protected-TLV
  size, image (body) size, flags, version (``u8 major, u8 minor, u16 revision,
  u32 build``), padding. imgtool pads the header to ``--header-size`` bytes.
- The body, then an optional protected TLV area (info magic ``0x6908``) and the
  TLV area (info magic ``0x6907``). The SHA-256 TLV covers header + body +
  protected TLVs, and signatures sign that digest.

`parse_image` checks the structure only; whether the device accepts an image is
`emulator.flash._verify`'s business. `image_class_uuids` are the vendor/class ids of
imgtool's ``--vid``/``--cid``, how an image names the board it was built for.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag

IMAGE_MAGIC = 0x96F3B83D
IMAGE_HEADER_SIZE_BYTES = 32
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908

HEADER_STRUCT = struct.Struct("<IIHHIIBBHII")
"""The header's fields, as `parse_header` reads them and the factory image writes them."""
TLV_STRUCT = struct.Struct("<HH")
"""A TLV area's info (magic, total size) and each entry's (type, length)."""


class TlvType(IntEnum):
    """TLV types this emulator knows (MCUboot's ``IMAGE_TLV_*``)."""

    KEYHASH = 0x01
    PUBKEY = 0x02
    SHA256 = 0x10
    SHA384 = 0x11
    SHA512 = 0x12
    RSA2048_PSS = 0x20
    ECDSA_SIG = 0x22
    RSA3072_PSS = 0x23
    ED25519 = 0x24
    SIG_PURE = 0x25
    DEPENDENCY = 0x40
    SEC_CNT = 0x50
    BOOT_RECORD = 0x60
    DECOMP_SIZE = 0x70
    DECOMP_SHA = 0x71
    DECOMP_SIGNATURE = 0x72
    UUID_VID = 0x74
    UUID_CID = 0x75


class ImageFlag(IntFlag):
    PIC = 0x01
    ENCRYPTED_AES128 = 0x04
    ENCRYPTED_AES256 = 0x08
    NON_BOOTABLE = 0x10
    RAM_LOAD = 0x20
    ROM_FIXED = 0x100
    COMPRESSED_LZMA1 = 0x200
    COMPRESSED_LZMA2 = 0x400
    COMPRESSED_ARM_THUMB = 0x800


@dataclass(frozen=True)
class ImageVersion:
    """``major.minor.revision+build`` as in the image header."""

    major: int
    minor: int
    revision: int
    build: int = 0

    def __str__(self) -> str:
        # Zephyr's img_mgmt writes the build only when it is not zero, after a dot.
        text = f"{self.major}.{self.minor}.{self.revision}"
        return f"{text}.{self.build}" if self.build else text

    def order_key(self, *, compare_build_number: bool = False) -> tuple[int, ...]:
        """What MCUboot compares to refuse a downgrade (the build only if configured)."""
        key = (self.major, self.minor, self.revision)
        return (*key, self.build) if compare_build_number else key

    @staticmethod
    def parse(text: str) -> ImageVersion:
        """Parse ``1.2.3``, ``1.2.3+4`` (imgtool) or ``1.2.3.4`` (Zephyr)."""
        main, _, build = text.partition("+")
        parts = main.split(".")
        if build:
            parts.append(build)
        if not 1 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
            raise ValueError(f"not an image version: {text!r}")
        numbers = [int(p) for p in parts] + [0] * (4 - len(parts))
        return ImageVersion(*numbers)


@dataclass(frozen=True)
class ImageHeader:
    load_address: int
    header_size_bytes: int
    protected_tlv_size_bytes: int
    image_size_bytes: int
    flags: ImageFlag
    version: ImageVersion


@dataclass(frozen=True)
class Tlv:
    type: int
    value: bytes
    protected: bool


class RejectReason(Enum):
    """Why an image is refused; the SMP server maps each to an error code."""

    MALFORMED = "malformed image"
    TOO_LARGE = "image too large for the slot"
    UNSUPPORTED = "unsupported image"
    BAD_HASH = "bad hash"
    UNSIGNED = "image not signed"
    UNKNOWN_KEY = "signed with an untrusted key"
    BAD_SIGNATURE = "bad signature"
    WRONG_BOARD = "image built for another board"
    DOWNGRADE = "version lower than the running image"
    SECURITY_COUNTER = "security counter lower than the device's"


class ImageRejected(Exception):
    """An image failed a check; ``reason`` says which, the message says how."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    """A parsed image: header, TLVs and the sizes that locate them."""

    header: ImageHeader
    tlvs: tuple[Tlv, ...]
    hashed_size_bytes: int
    total_size_bytes: int

    @property
    def version(self) -> ImageVersion:
        return self.header.version

    def tlv_values(self, tlv_type: int, *, protected: bool | None = None) -> list[bytes]:
        return [
            t.value
            for t in self.tlvs
            if t.type == tlv_type and (protected is None or t.protected == protected)
        ]

    @property
    def sha256(self) -> bytes | None:
        """The image hash as MCUboot and SMP name it (the SHA-256 TLV's value)."""
        values = self.tlv_values(TlvType.SHA256, protected=False)
        return values[0] if values else None

    @property
    def security_counter(self) -> int | None:
        values = self.tlv_values(TlvType.SEC_CNT, protected=True)
        if not values or len(values[0]) != 4:
            return None
        return int.from_bytes(values[0], "little")

    @property
    def bootable(self) -> bool:
        return not self.header.flags & ImageFlag.NON_BOOTABLE


def parse_header(data: bytes) -> ImageHeader:
    """Decode the 32-byte header; raises `ImageRejected` (MALFORMED)."""
    if len(data) < IMAGE_HEADER_SIZE_BYTES:
        raise ImageRejected(RejectReason.MALFORMED, "shorter than the 32-byte image header")
    magic, load, hdr_size, ptlv_size, img_size, flags, major, minor, rev, build, _pad = (
        HEADER_STRUCT.unpack_from(data)
    )
    if magic != IMAGE_MAGIC:
        raise ImageRejected(
            RejectReason.MALFORMED, f"no MCUboot header (magic 0x{magic:08x}, not 0x96f3b83d)"
        )
    if hdr_size < IMAGE_HEADER_SIZE_BYTES:
        raise ImageRejected(RejectReason.MALFORMED, f"header size {hdr_size} is below 32")
    return ImageHeader(
        load_address=load,
        header_size_bytes=hdr_size,
        protected_tlv_size_bytes=ptlv_size,
        image_size_bytes=img_size,
        flags=ImageFlag(flags),
        version=ImageVersion(major, minor, rev, build),
    )


def _parse_tlv_area(data: bytes, offset: int, magic: int, protected: bool) -> tuple[list[Tlv], int]:
    """Parse one TLV area at ``offset``; return its entries and its end offset."""
    if offset + TLV_STRUCT.size > len(data):
        raise ImageRejected(RejectReason.MALFORMED, "TLV area missing or truncated")
    found_magic, total = TLV_STRUCT.unpack_from(data, offset)
    if found_magic != magic:
        raise ImageRejected(
            RejectReason.MALFORMED,
            f"TLV info magic 0x{found_magic:04x} at 0x{offset:x}, expected 0x{magic:04x}",
        )
    end = offset + total
    if total < TLV_STRUCT.size or end > len(data):
        raise ImageRejected(RejectReason.MALFORMED, "TLV area runs past the image data")
    entries: list[Tlv] = []
    pos = offset + TLV_STRUCT.size
    while pos < end:
        if pos + TLV_STRUCT.size > end:
            raise ImageRejected(RejectReason.MALFORMED, "truncated TLV entry")
        tlv_type, length = TLV_STRUCT.unpack_from(data, pos)
        pos += TLV_STRUCT.size
        if pos + length > end:
            raise ImageRejected(RejectReason.MALFORMED, f"TLV 0x{tlv_type:02x} runs past its area")
        entries.append(Tlv(tlv_type, bytes(data[pos : pos + length]), protected))
        pos += length
    return entries, end


def parse_image(data: bytes) -> ImageInfo:
    """Parse header and TLV areas of an image at the start of ``data`` (slot or file).

    Checks structure only; `verify_image` checks the hash and signature.
    Raises `ImageRejected` (MALFORMED).
    """
    header = parse_header(data)
    body_end = header.header_size_bytes + header.image_size_bytes
    tlvs: list[Tlv] = []
    pos = body_end
    if header.protected_tlv_size_bytes:
        protected, pos = _parse_tlv_area(data, pos, TLV_PROT_INFO_MAGIC, protected=True)
        if pos - body_end != header.protected_tlv_size_bytes:
            raise ImageRejected(
                RejectReason.MALFORMED, "protected TLV size differs from the header's"
            )
        tlvs.extend(protected)
    hashed_size = pos
    unprotected, end = _parse_tlv_area(data, pos, TLV_INFO_MAGIC, protected=False)
    tlvs.extend(unprotected)
    return ImageInfo(header, tuple(tlvs), hashed_size, end)


def image_class_uuids(vendor: str, board: str) -> tuple[bytes, bytes]:
    """The VID and CID UUID bytes imgtool writes for ``--vid vendor --cid board``."""
    vid = uuid.uuid5(uuid.NAMESPACE_DNS, vendor)
    cid = uuid.uuid5(vid, board)
    return vid.bytes, cid.bytes
