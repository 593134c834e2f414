"""PWG raster made here: a page header and a run-length encoder for pixel rows, and
documents rendered by Ghostscript at test time (nothing from another project is kept)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path

from firmware.net._pwg_raster import HEADER_BYTES, SYNC


def page_header(width_px: int, height_px: int, *, color_space: int = 18, bits: int = 8,
                dpi: int = 300, channels: int = 1, size_name: str = "iso_a4_210x297mm",
                bytes_per_line: int | None = None) -> bytes:
    header = bytearray(HEADER_BYTES)
    header[0:9] = b"PwgRaster"
    bpp = bits * channels

    def put(offset: int, value: int) -> None:
        struct.pack_into(">I", header, offset, value)

    put(276, dpi)
    put(280, dpi)
    put(372, width_px)
    put(376, height_px)
    put(384, bits)
    put(388, bpp)
    put(392, bytes_per_line if bytes_per_line is not None else (width_px * bpp + 7) // 8)
    put(400, color_space)
    put(420, channels)
    name = size_name.encode()
    header[1732:1732 + len(name)] = name
    return bytes(header)


def encode_line(line: bytes, unit: int = 1) -> bytes:
    """PackBits-style runs of ``unit``-byte pixels (no line repeat byte)."""
    pixels = [line[i:i + unit] for i in range(0, len(line), unit)]
    out = bytearray()
    i = 0
    while i < len(pixels):
        run = 1
        while i + run < len(pixels) and run < 128 and pixels[i + run] == pixels[i]:
            run += 1
        if run > 1:
            out.append(run - 1)
            out += pixels[i]
            i += run
            continue
        start = i
        while i < len(pixels) and i - start < 128 and (
                i + 1 >= len(pixels) or pixels[i + 1] != pixels[i]):
            i += 1
        if i - start <= 1:  # one pixel: a run of one (a literal run is 2..128)
            out.append(0)
            out += pixels[start]
            i = start + 1
            continue
        out.append(257 - (i - start))
        out += b"".join(pixels[start:i])
    return bytes(out)


def encode_page(rows: Sequence[bytes], unit: int = 1) -> bytes:
    """Rows (raw bytes each) with identical neighbours folded into line repeats."""
    out = bytearray()
    i = 0
    while i < len(rows):
        repeat = 1
        while i + repeat < len(rows) and repeat < 256 and rows[i + repeat] == rows[i]:
            repeat += 1
        out.append(repeat - 1)
        out += encode_line(rows[i], unit)
        i += repeat
    return bytes(out)


def stream(*pages: bytes) -> bytes:
    return SYNC + b"".join(pages)


def ghostscript() -> str | None:
    return shutil.which("gs")


def render(pdf: Path, out: Path, *, dpi: int, color_space: int, bits: int) -> Path:
    """``pdf`` rendered to PWG raster by Ghostscript's ``pwgraster`` device."""
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pwgraster", f"-r{dpi}",
         f"-dcupsColorSpace={color_space}", f"-dcupsBitsPerColor={bits}", "-o", str(out),
         str(pdf)],
        check=True, capture_output=True, timeout=120)
    return out


def text_pdf(out: Path, text: str) -> Path:
    """A PDF of ``text`` made by CUPS's own filter (``cupsfilter``)."""
    src = out.with_suffix(".txt")
    src.write_text(text)
    with out.open("wb") as f:
        subprocess.run(["cupsfilter", "-m", "application/pdf", str(src)], stdout=f,
                       stderr=subprocess.DEVNULL, check=True, timeout=120)
    return out
