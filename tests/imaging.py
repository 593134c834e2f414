"""MCUboot images for tests, built at test time with imgtool (in-process) and signed
with keys made at test time: nothing binary is committed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

VENDOR = "printer-emu"
"""imgtool --vid of every test image (the board files' ``[flash] vendor``)."""


def run_imgtool(*args: str) -> None:
    from imgtool.main import imgtool

    imgtool.main(list(args), standalone_mode=False)


@dataclass
class ImageFactory:
    """Images of pseudo-random bodies (seeded by their parameters, so the same call
    gives the same bytes), signed with the named keys made in ``directory``."""

    directory: Path
    keys: dict[str, Path]

    def path(self, version: str, *, key: str | None = "ec", payload_bytes: int = 7000,
             board: str | None = "laser-a", security_counter: int | None = 1,
             slot_size: int = 1 << 20, suffix: str = ".bin") -> Path:
        name = f"{version}-{key}-{payload_bytes}-{board}-{security_counter}-{slot_size}"
        raw, out = self.directory / f"{name}.raw", self.directory / f"{name}{suffix}"
        if out.exists():
            return out
        raw.write_bytes(random.Random(name).randbytes(payload_bytes))
        args = ["sign", "--pad-header", "-H", "0x200", "-S", str(slot_size), "-v", version,
                "--sha", "256"]
        if key is not None:
            args += ["-k", str(self.keys[key])]
        if security_counter is not None:
            args += ["-s", str(security_counter)]
        if board is not None:
            args += ["--vid", VENDOR, "--cid", board]
        if suffix == ".hex":
            args += ["-x", "0x10000"]
        run_imgtool(*args, str(raw), str(out))
        return out

    def make(self, version: str, **options: object) -> bytes:
        return self.path(version, **options).read_bytes()  # type: ignore[arg-type]


def image_factory(directory: Path, key_kinds: dict[str, str]) -> ImageFactory:
    """An ImageFactory with a key per name (``{"ec": "ecdsa-p256", "ed": "ed25519"}``)."""
    keys = {}
    for name, kind in key_kinds.items():
        keys[name] = directory / f"{name}.pem"
        run_imgtool("keygen", "-k", str(keys[name]), "-t", kind)
    return ImageFactory(directory, keys)
