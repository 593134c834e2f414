"""What the device accepts: `BootPolicy` and `verify_image`.

`verify_image` checks an image against a policy: the SHA-256 TLV present and matching
(mandatory), a signature (ECDSA-P256 ``0x22`` or Ed25519 ``0x24``, found through the
key-hash TLV ``0x01``) when the policy trusts keys, and the board's image class
(imgtool ``--vid``/``--cid`` UUID TLVs) when the policy names a board. Version and
security counter depend on what the device runs: the bootloader checks them
(`emulator.flash._bootloader.Bootloader.check_candidate`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

from emulator.flash._image import (
    ImageFlag,
    ImageInfo,
    ImageRejected,
    RejectReason,
    TlvType,
    image_class_uuids,
    parse_image,
)

# TLVs whose value the hash must cover: MCUboot ignores or refuses them outside the
# protected area, since anyone could edit an unprotected TLV without breaking the hash.
_MUST_BE_PROTECTED = frozenset(
    {TlvType.SEC_CNT, TlvType.DEPENDENCY, TlvType.BOOT_RECORD, TlvType.UUID_VID, TlvType.UUID_CID}
)

_UNSUPPORTED_FLAGS = (
    ImageFlag.ENCRYPTED_AES128
    | ImageFlag.ENCRYPTED_AES256
    | ImageFlag.COMPRESSED_LZMA1
    | ImageFlag.COMPRESSED_LZMA2
)

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
        try:
            loaded = serialization.load_pem_private_key(pem, password=None).public_key()
        except (ValueError, TypeError):  # TypeError: a private key with a password
            raise ValueError("not a PEM public key or unencrypted private key "
                             "(imgtool getpub -k KEY -e pem writes one)") from None
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
