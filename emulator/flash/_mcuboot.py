"""MCUboot's image format and its bootloader, run on the emulated flash.

Image format (what `imgtool sign` writes; all little-endian):

- A 32-byte header: magic ``0x96f3b83d``, load address, header size, protected-TLV
  size, image (body) size, flags, version (``u8 major, u8 minor, u16 revision,
  u32 build``), padding.
- The body, then an optional protected TLV area (info magic ``0x6908``) and the
  TLV area (info magic ``0x6907``). The SHA-256 TLV covers header + body +
  protected TLVs, and signatures sign that digest. `parse_image` checks the
  structure; `verify_image` checks an image against a `BootPolicy`: SHA-256 TLV
  present and matching (mandatory), signature (ECDSA-P256 ``0x22`` or Ed25519
  ``0x24``, found through the key-hash TLV ``0x01``) when the policy trusts keys,
  and the board's image class (imgtool ``--vid``/``--cid`` UUID TLVs) when the
  policy names a board.

Bootloader (`Bootloader`), MCUboot's "swap using scratch" on a `FlashLayout`:

- Slot trailers as MCUboot keeps them at the end of each slot: 16-byte magic,
  ``image_ok``, ``copy_done``, ``swap_info``; a flag is SET (``0x01``) or UNSET
  (erased). The decision at boot is MCUboot's table: secondary trailer has the
  magic -> TEST (``image_ok`` unset) or PERM (set); else primary has the magic,
  ``copy_done`` set and ``image_ok`` unset -> REVERT (a test image that was not
  confirmed); else NONE.
- Before a TEST/PERM swap the secondary image is verified, and refused (erased,
  the primary keeps running) if it fails, is a lower version than the primary
  (``downgrade_prevention``) or carries a security counter below the device's
  stored one. The stored counter rises when an image is confirmed.
- The swap runs sector by sector through the scratch sector, three steps each
  (secondary -> scratch, primary -> secondary, scratch -> primary). Before any
  step the swap type and size are written to a status sector (its magic written
  last, as the commit), and one progress byte is written after each step, with a
  barrier before and after it. A boot that finds a committed status finishes that
  swap first (each step erases its destination, and its source is intact until the
  step is recorded, so redoing a step is always safe), then rewrites the trailers
  and only then erases the status.
- Records that commit a decision are written magic-last: a power cut half-way
  through leaves the old decision in force. Hence a power cut at any instant of an
  upload (only the secondary slot changes), a state change or a swap leaves a
  flash that boots a valid image.
- The application side (`set_pending`, `confirm_running`, `erase_secondary`, the
  upload helpers) never erases or writes the primary slot's image, and refuses to
  touch the secondary while it holds the image a revert would bring back
  (`SlotBusy`).

Beyond MCUboot, on purpose: if the primary slot holds no valid image and the
secondary does, the bootloader installs it permanently rather than staying
without an image; if a revert target is invalid, the running image is kept and
confirmed instead of reverting to garbage.
"""

from __future__ import annotations

import binascii
import hashlib
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum, IntFlag

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

from emulator.flash._storage import ERASED_BYTE, FlashLayout, FlashStorage

# --------------------------------------------------------------------------------------
# Image format
# --------------------------------------------------------------------------------------

IMAGE_MAGIC = 0x96F3B83D
IMAGE_HEADER_SIZE_BYTES = 32
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908

_HEADER = struct.Struct("<IIHHIIBBHII")
_TLV_INFO = struct.Struct("<HH")
_TLV_ENTRY = struct.Struct("<HH")


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


# TLVs whose value the hash must cover: MCUboot ignores or refuses them outside the
# protected area, since anyone could edit an unprotected TLV without breaking the hash.
_MUST_BE_PROTECTED = frozenset(
    {TlvType.SEC_CNT, TlvType.DEPENDENCY, TlvType.BOOT_RECORD, TlvType.UUID_VID, TlvType.UUID_CID}
)


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


_UNSUPPORTED_FLAGS = (
    ImageFlag.ENCRYPTED_AES128
    | ImageFlag.ENCRYPTED_AES256
    | ImageFlag.COMPRESSED_LZMA1
    | ImageFlag.COMPRESSED_LZMA2
)


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
        _HEADER.unpack_from(data)
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
    if offset + _TLV_INFO.size > len(data):
        raise ImageRejected(RejectReason.MALFORMED, "TLV area missing or truncated")
    found_magic, total = _TLV_INFO.unpack_from(data, offset)
    if found_magic != magic:
        raise ImageRejected(
            RejectReason.MALFORMED,
            f"TLV info magic 0x{found_magic:04x} at 0x{offset:x}, expected 0x{magic:04x}",
        )
    end = offset + total
    if total < _TLV_INFO.size or end > len(data):
        raise ImageRejected(RejectReason.MALFORMED, "TLV area runs past the image data")
    entries: list[Tlv] = []
    pos = offset + _TLV_INFO.size
    while pos < end:
        if pos + _TLV_ENTRY.size > end:
            raise ImageRejected(RejectReason.MALFORMED, "truncated TLV entry")
        tlv_type, length = _TLV_ENTRY.unpack_from(data, pos)
        pos += _TLV_ENTRY.size
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


# --------------------------------------------------------------------------------------
# Verification policy
# --------------------------------------------------------------------------------------

_PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class _TrustedKey:
    key_hash: bytes
    key: _PublicKey
    signature_tlv: TlvType


def _load_trusted_key(pem: bytes) -> _TrustedKey:
    """Accept a public or private PEM (imgtool keygen writes the private one)."""
    loaded: object
    try:
        loaded = serialization.load_pem_public_key(pem)
    except ValueError:
        loaded = serialization.load_pem_private_key(pem, password=None).public_key()
    if isinstance(loaded, ec.EllipticCurvePublicKey):
        if not isinstance(loaded.curve, ec.SECP256R1):
            raise ValueError(f"only P-256 ECDSA keys are supported, not {loaded.curve.name}")
        key: _PublicKey = loaded
        signature_tlv = TlvType.ECDSA_SIG
    elif isinstance(loaded, ed25519.Ed25519PublicKey):
        key = loaded
        signature_tlv = TlvType.ED25519
    else:
        raise ValueError(f"unsupported signing key type {type(loaded).__name__}")
    # imgtool's key-hash TLV: SHA-256 of the SubjectPublicKeyInfo DER encoding.
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _TrustedKey(hashlib.sha256(spki).digest(), key, signature_tlv)


def image_class_uuids(vendor: str, board: str) -> tuple[bytes, bytes]:
    """The VID and CID UUID bytes imgtool writes for ``--vid vendor --cid board``."""
    vid = uuid.uuid5(uuid.NAMESPACE_DNS, vendor)
    cid = uuid.uuid5(vid, board)
    return vid.bytes, cid.bytes


@dataclass(frozen=True)
class BootPolicy:
    """What the device accepts.

    - ``trusted_keys_pem``: PEM public (or private) keys; when any is given, images
      must carry a valid ECDSA-P256 or Ed25519 signature by one of them.
    - ``vendor``/``board``: when both are set, images must carry imgtool's
      ``--vid vendor --cid board`` UUID TLVs (MCUboot's image-class check; a
      mismatch is a wrong board).
    - ``downgrade_prevention``: refuse a lower version than the running image.
    - ``compare_build_number``: include the build number in that comparison.
    """

    trusted_keys_pem: tuple[bytes, ...] = ()
    vendor: str | None = None
    board: str | None = None
    downgrade_prevention: bool = True
    compare_build_number: bool = False
    _keys: tuple[_TrustedKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.vendor is None) != (self.board is None):
            raise ValueError("set both vendor and board, or neither")
        keys = tuple(_load_trusted_key(pem) for pem in self.trusted_keys_pem)
        object.__setattr__(self, "_keys", keys)

    @property
    def requires_signature(self) -> bool:
        return bool(self._keys)

    @property
    def trusted_keys(self) -> tuple[_TrustedKey, ...]:
        return self._keys


def _trim_der_signature(signature: bytes) -> bytes:
    """Drop the zero padding imgtool ``--pad-sig`` appends to a DER ECDSA signature."""
    if len(signature) >= 2 and signature[0] == 0x30 and signature[1] < 0x80:
        return signature[: 2 + signature[1]]
    return signature


def _signature_ok(trusted: _TrustedKey, signature: bytes, digest: bytes) -> bool:
    try:
        if isinstance(trusted.key, ec.EllipticCurvePublicKey):
            trusted.key.verify(
                _trim_der_signature(signature),
                digest,
                ec.ECDSA(utils.Prehashed(hashes.SHA256())),
            )
        else:
            # imgtool signs the SHA-256 digest itself with Ed25519 (not the "pure" variant).
            trusted.key.verify(signature, digest)
    except InvalidSignature:
        return False
    return True


def _check_signature(info: ImageInfo, digest: bytes, policy: BootPolicy) -> None:
    signatures = [
        t for t in info.tlvs if not t.protected and t.type in (TlvType.ECDSA_SIG, TlvType.ED25519)
    ]
    if not signatures:
        raise ImageRejected(RejectReason.UNSIGNED, "the device only boots signed images")
    named = set(info.tlv_values(TlvType.KEYHASH, protected=False))
    named |= {
        hashlib.sha256(pub).digest() for pub in info.tlv_values(TlvType.PUBKEY, protected=False)
    }
    candidates = [k for k in policy.trusted_keys if not named or k.key_hash in named]
    if not candidates:
        raise ImageRejected(
            RejectReason.UNKNOWN_KEY, "the image's key hash matches no key the device trusts"
        )
    for trusted in candidates:
        for sig in signatures:
            if sig.type == trusted.signature_tlv and _signature_ok(trusted, sig.value, digest):
                return
    raise ImageRejected(RejectReason.BAD_SIGNATURE, "no signature verifies with a trusted key")


def verify_image(data: bytes, policy: BootPolicy, capacity_bytes: int | None = None) -> ImageInfo:
    """Parse and check the image at the start of ``data``; raise `ImageRejected`.

    Checks, in order: structure, size against ``capacity_bytes``, flags (encrypted
    and compressed images are not supported, non-bootable ones refused), TLV
    placement, the SHA-256 TLV, the signature (when the policy trusts keys) and
    the image class (when the policy names a board). Version and security counter
    are the bootloader's business (`Bootloader.check_candidate`).
    """
    info = parse_image(data)
    if capacity_bytes is not None and info.total_size_bytes > capacity_bytes:
        raise ImageRejected(
            RejectReason.TOO_LARGE,
            f"{info.total_size_bytes} bytes, the slot holds {capacity_bytes}",
        )
    flags = info.header.flags
    if flags & _UNSUPPORTED_FLAGS:
        raise ImageRejected(RejectReason.UNSUPPORTED, f"encrypted or compressed ({flags!r})")
    if flags & ImageFlag.NON_BOOTABLE:
        raise ImageRejected(RejectReason.UNSUPPORTED, "the image is marked non-bootable")
    for tlv in info.tlvs:
        if not tlv.protected and tlv.type in _MUST_BE_PROTECTED:
            raise ImageRejected(
                RejectReason.MALFORMED, f"TLV 0x{tlv.type:02x} outside the protected area"
            )
    hashes_found = info.tlv_values(TlvType.SHA256, protected=False)
    if len(hashes_found) != 1 or len(hashes_found[0]) != 32:
        raise ImageRejected(RejectReason.MALFORMED, "exactly one SHA-256 TLV is required")
    digest = hashlib.sha256(data[: info.hashed_size_bytes]).digest()
    if digest != hashes_found[0]:
        raise ImageRejected(
            RejectReason.BAD_HASH,
            f"SHA-256 of the image is {digest.hex()[:16]}..., "
            f"its TLV says {hashes_found[0].hex()[:16]}...",
        )
    if policy.requires_signature:
        _check_signature(info, digest, policy)
    if policy.vendor is not None and policy.board is not None:
        vid, cid = image_class_uuids(policy.vendor, policy.board)
        image_vid = info.tlv_values(TlvType.UUID_VID, protected=True)
        image_cid = info.tlv_values(TlvType.UUID_CID, protected=True)
        if image_vid != [vid] or image_cid != [cid]:
            raise ImageRejected(
                RejectReason.WRONG_BOARD,
                f"the device is {policy.vendor}/{policy.board} and the image's vendor/class "
                "ids (imgtool --vid/--cid) do not match it",
            )
    return info


# --------------------------------------------------------------------------------------
# Slot trailers and the swap-status sector
# --------------------------------------------------------------------------------------

BOOT_MAGIC = bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
_FLAG_SET = 0x01

# Offsets back from the end of a slot, as MCUboot lays them out with an 8-byte alignment.
_MAGIC_FROM_END = 16
_IMAGE_OK_FROM_END = 24
_COPY_DONE_FROM_END = 32
_SWAP_INFO_FROM_END = 40
_TRAILER_BYTES = 48

_STATUS_MAGIC = b"prn-emu swap st\x01"
_STATUS_FIELDS = struct.Struct("<BBHI")  # swap type, reserved, sectors, crc32 of the first 4
_STATUS_FIELDS_AT = 0
_STATUS_MAGIC_AT = 8
_STATUS_DONE_AT = 32  # written once the trailers are final, before the sector is erased
_STATUS_PROGRESS_AT = 64  # one byte per step, 3 steps per sector

_COUNTER_ENTRY = struct.Struct("<II")  # value, value ^ 0xffffffff (a torn entry fails this)


class Magic(Enum):
    GOOD = "good"
    UNSET = "unset"
    BAD = "bad"


class FlagState(Enum):
    SET = "set"
    UNSET = "unset"
    BAD = "bad"


def _flag_state(byte: int) -> FlagState:
    if byte == _FLAG_SET:
        return FlagState.SET
    return FlagState.UNSET if byte == ERASED_BYTE else FlagState.BAD


@dataclass(frozen=True)
class SlotTrailer:
    magic: Magic
    image_ok: FlagState
    copy_done: FlagState
    swap_info: int


class SwapType(IntEnum):
    """MCUboot's ``BOOT_SWAP_TYPE_*``."""

    NONE = 1
    TEST = 2
    PERM = 3
    REVERT = 4
    FAIL = 5


@dataclass(frozen=True)
class _SwapStatus:
    swap_type: SwapType
    sectors: int
    next_step: int
    done: bool


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


class _SecurityCounterStore:
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
        return max(self._scan(sector)[0] for sector in self._sectors)

    def raise_to(self, value: int) -> None:
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


class Bootloader:
    """MCUboot's boot decision and swap, plus the application-side slot operations.

    One instance per power-on: `boot` must run first; after it, `running` is the
    primary slot's image (or None when nothing valid could be booted).
    """

    def __init__(self, storage: FlashStorage, policy: BootPolicy | None = None) -> None:
        self.storage = storage
        self.layout: FlashLayout = storage.layout
        self.policy = policy if policy is not None else BootPolicy()
        self._counter = _SecurityCounterStore(storage)
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
        end = self.layout.slot_end(slot)
        raw = self.storage.read(end - _TRAILER_BYTES, _TRAILER_BYTES)

        def at(from_end: int) -> int:
            return raw[_TRAILER_BYTES - from_end]

        magic_raw = raw[_TRAILER_BYTES - _MAGIC_FROM_END :]
        if magic_raw == BOOT_MAGIC:
            magic = Magic.GOOD
        elif magic_raw.count(ERASED_BYTE) == len(magic_raw):
            magic = Magic.UNSET
        else:
            magic = Magic.BAD
        return SlotTrailer(
            magic=magic,
            image_ok=_flag_state(at(_IMAGE_OK_FROM_END)),
            copy_done=_flag_state(at(_COPY_DONE_FROM_END)),
            swap_info=at(_SWAP_INFO_FROM_END),
        )

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
        sector = self.layout.sector_size_bytes
        self.storage.erase(self.layout.trailer_sector_offset(1), sector)
        self.storage.barrier()
        needed = self.layout.sectors_for(size_bytes) * sector
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
                self._write_flag(1, _IMAGE_OK_FROM_END)
                self.storage.barrier()
                return info
        swap = SwapType.PERM if permanent else SwapType.TEST
        self._rewrite_trailer(1, image_ok=permanent, copy_done=False, swap_info=swap)
        return info

    def confirm_running(self) -> None:
        """Make the running image permanent (MCUboot's ``boot_set_confirmed``)."""
        if self.running is None:
            raise BootStateError("no image is running, nothing to confirm")
        trailer = self.trailer(0)
        if trailer.magic is Magic.GOOD and trailer.image_ok is FlagState.UNSET:
            self._write_flag(0, _IMAGE_OK_FROM_END)
            self.storage.barrier()
        elif trailer.magic is Magic.BAD or trailer.image_ok is FlagState.BAD:
            self._rewrite_trailer(0, image_ok=True, copy_done=True, swap_info=SwapType.NONE)
        self._counter.raise_to(self.running.security_counter or 0)

    # -- boot -----------------------------------------------------------------------------

    def boot(self) -> BootResult:
        """Run the bootloader: finish or start a swap, then boot the primary slot."""
        notes: list[str] = []
        resumed = False
        self.running = None  # nothing runs until this boot picks an image
        status = self._read_status()
        if status is _GARBAGE_STATUS:
            # A status whose commit (magic) never completed: no step ran yet.
            notes.append("discarded an uncommitted swap status")
            self._erase_status()
            status = None
        if isinstance(status, _SwapStatus):
            resumed = True
            swap = status.swap_type
            if status.done:
                notes.append(f"finished clean-up of a completed {swap.name} swap")
                self._erase_status()
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
                self._rewrite_trailer(0, image_ok=True, copy_done=True, swap_info=SwapType.NONE)
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
        self._commit_status(swap, sectors)
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
            self.storage.write(self.layout.status_offset + _STATUS_PROGRESS_AT + step, b"\x01")
            self.storage.barrier()  # the record is on flash before the next erase
        self._finalize(swap)

    def _finalize(self, swap: SwapType) -> None:
        """Trailers after a swap; redone from scratch if a cut interrupts it."""
        confirmed = swap in (SwapType.PERM, SwapType.REVERT)
        self._rewrite_trailer(0, image_ok=confirmed, copy_done=True, swap_info=swap)
        self.storage.erase(self.layout.trailer_sector_offset(1), self.layout.sector_size_bytes)
        self.storage.barrier()
        self.storage.write(self.layout.status_offset + _STATUS_DONE_AT, b"\x01")
        self.storage.barrier()
        self._erase_status()

    def _commit_status(self, swap: SwapType, sectors: int) -> None:
        self._erase_status()
        fields = struct.pack("<BBH", swap, 0, sectors)
        record = _STATUS_FIELDS.pack(swap, 0, sectors, binascii.crc32(fields))
        self.storage.write(self.layout.status_offset + _STATUS_FIELDS_AT, record)
        self.storage.barrier()
        self.storage.write(self.layout.status_offset + _STATUS_MAGIC_AT, _STATUS_MAGIC)
        self.storage.barrier()

    def _read_status(self) -> _SwapStatus | object | None:
        size = self.layout.sector_size_bytes
        raw = self.storage.read(self.layout.status_offset, size)
        if raw.count(ERASED_BYTE) == size:
            return None
        if raw[_STATUS_MAGIC_AT : _STATUS_MAGIC_AT + len(_STATUS_MAGIC)] != _STATUS_MAGIC:
            return _GARBAGE_STATUS
        swap_raw, _reserved, sectors, crc = _STATUS_FIELDS.unpack_from(raw, _STATUS_FIELDS_AT)
        if (
            crc != binascii.crc32(raw[_STATUS_FIELDS_AT : _STATUS_FIELDS_AT + 4])
            or swap_raw not in (SwapType.TEST, SwapType.PERM, SwapType.REVERT)
            or not 1 <= sectors <= self.layout.data_sectors
        ):
            return _GARBAGE_STATUS
        progress = raw[_STATUS_PROGRESS_AT : _STATUS_PROGRESS_AT + 3 * sectors]
        next_step = next((i for i, b in enumerate(progress) if b != _FLAG_SET), 3 * sectors)
        done = raw[_STATUS_DONE_AT] == _FLAG_SET
        return _SwapStatus(SwapType(swap_raw), sectors, next_step, done)

    def _erase_status(self) -> None:
        self.storage.erase(self.layout.status_offset, self.layout.sector_size_bytes)
        self.storage.barrier()

    def _erase_slot(self, slot: int) -> None:
        sector = self.layout.sector_size_bytes
        self.storage.erase(self.layout.trailer_sector_offset(slot), sector)
        self.storage.barrier()
        self.storage.erase(self.layout.slot_offset(slot), self.layout.image_capacity_bytes)
        self.storage.barrier()

    def _write_flag(self, slot: int, from_end: int) -> None:
        self.storage.write(self.layout.slot_end(slot) - from_end, bytes([_FLAG_SET]))

    def _rewrite_trailer(
        self, slot: int, *, image_ok: bool, copy_done: bool, swap_info: SwapType
    ) -> None:
        """Erase the trailer sector and write it flags first, magic last (the commit)."""
        self.storage.erase(self.layout.trailer_sector_offset(slot), self.layout.sector_size_bytes)
        end = self.layout.slot_end(slot)
        flags: Iterable[tuple[int, int]] = (
            (_IMAGE_OK_FROM_END, _FLAG_SET if image_ok else ERASED_BYTE),
            (_COPY_DONE_FROM_END, _FLAG_SET if copy_done else ERASED_BYTE),
            (_SWAP_INFO_FROM_END, int(swap_info)),
        )
        for from_end, value in flags:
            if value != ERASED_BYTE:
                self.storage.write(end - from_end, bytes([value]))
        self.storage.barrier()
        self.storage.write(end - _MAGIC_FROM_END, BOOT_MAGIC)
        self.storage.barrier()


_GARBAGE_STATUS = object()
