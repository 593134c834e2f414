"""PWG raster (PWG 5102.4), read as it streams in, each page measured for its toner.

A stream is ``RaS2`` and then pages; a page is a 1,796-byte header (big-endian fields:
resolution at 276/280, width 372, height 376, bits per colour 384, bits per pixel 388,
bytes per line 392, colour order 396, colour space 400, page size name 1732) and then
its lines, run-length encoded: each line starts with a line-repeat byte (the line
occurs ``n + 1`` times), then runs until the line is full: ``0..127`` repeats the next
pixel ``n + 1`` times, ``129..255`` is ``257 - n`` pixels given literally, ``128``
fills the rest of the line with white. A pixel is ``BitsPerPixel / 8`` bytes; below 8
bits per pixel the unit is one byte (8 or more pixels).

Contract
--------
* :meth:`PwgRasterReader.feed` takes bytes as they arrive, in chunks of any size, and
  measures each line as soon as it is complete; nothing is ever expanded: memory is one
  chunk plus at most one line's compressed bytes, whatever the page's size.
* A page's coverage is measured from its pixels: the share of the page's area that is
  inked, in percent (``black``: set bits, or ``v / 255``; ``sgray`` and ``srgb``:
  ``(255 - v) / 255``, the channels averaged; 1-bit ``sgray``: clear bits).
* Colour spaces ``black`` (3), ``sgray`` (18) and ``srgb`` (19) at 1 or 8 bits per
  colour are read; anything else, and anything malformed, raises
  :class:`PwgRasterError` with a one-line reason (at the first byte that shows it).
  :meth:`PwgRasterReader.close` raises it for a stream that stops mid-page or has no
  page.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SYNC = b"RaS2"
HEADER_BYTES = 1796

COLOR_SPACE_BLACK = 3
COLOR_SPACE_SGRAY = 18
COLOR_SPACE_SRGB = 19
_READABLE = {
    (COLOR_SPACE_BLACK, 1), (COLOR_SPACE_BLACK, 8),
    (COLOR_SPACE_SGRAY, 1), (COLOR_SPACE_SGRAY, 8),
    (COLOR_SPACE_SRGB, 8),
}
"""(colour space, bits per colour) pairs this reader measures."""

MAX_PAGES = 10_000
MAX_DIMENSION_PX = 100_000
"""Past any page a printer takes (a 1.2 m roll at 2,400 dpi)."""

_U32 = struct.Struct(">I")


class PwgRasterError(ValueError):
    """A stream that is not PWG raster this reader measures; the message says why."""


@dataclass(frozen=True, slots=True)
class PageHeader:
    """The fields of a page header this reader uses."""

    resolution_dpi: tuple[int, int]
    width_px: int
    height_px: int
    bits_per_color: int
    bits_per_pixel: int
    bytes_per_line: int
    color_space: int
    page_size_name: str

    @property
    def media_type_name(self) -> str:
        """The ``pwg-raster-document-type`` keyword, e.g. ``sgray_8``."""
        names = {COLOR_SPACE_BLACK: "black", COLOR_SPACE_SGRAY: "sgray",
                 COLOR_SPACE_SRGB: "srgb"}
        return f"{names.get(self.color_space, str(self.color_space))}_{self.bits_per_color}"


@dataclass(frozen=True, slots=True)
class RasterPage:
    header: PageHeader
    coverage_pct: float


def _u32(header: bytes, offset: int) -> int:
    return int(_U32.unpack_from(header, offset)[0])


def parse_page_header(header: bytes) -> PageHeader:
    """The header's fields, checked for what the reader needs (raises PwgRasterError)."""
    if len(header) != HEADER_BYTES:
        raise PwgRasterError(f"a page header is {HEADER_BYTES} bytes, got {len(header)}")
    name = header[1732:1796].split(b"\0", 1)[0].decode("ascii", "replace")
    page = PageHeader(
        resolution_dpi=(_u32(header, 276), _u32(header, 280)),
        width_px=_u32(header, 372),
        height_px=_u32(header, 376),
        bits_per_color=_u32(header, 384),
        bits_per_pixel=_u32(header, 388),
        bytes_per_line=_u32(header, 392),
        color_space=_u32(header, 400),
        page_size_name=name,
    )
    color_order = _u32(header, 396)
    if color_order != 0:
        raise PwgRasterError(f"colour order {color_order}: only chunky pixels (0) are PWG")
    if (page.color_space, page.bits_per_color) not in _READABLE:
        raise PwgRasterError(f"colour space {page.color_space} at {page.bits_per_color} "
                             "bits is not read (black_1, black_8, sgray_1, sgray_8, srgb_8)")
    channels = 3 if page.color_space == COLOR_SPACE_SRGB else 1
    if page.bits_per_pixel != page.bits_per_color * channels:
        raise PwgRasterError(f"{page.bits_per_pixel} bits per pixel with "
                             f"{channels} x {page.bits_per_color}-bit colours")
    for what, px in (("width", page.width_px), ("height", page.height_px)):
        if not 0 < px <= MAX_DIMENSION_PX:
            raise PwgRasterError(f"page {what} {px} px is not within 1..{MAX_DIMENSION_PX}")
    expected = (page.width_px * page.bits_per_pixel + 7) // 8
    if page.bytes_per_line != expected:
        raise PwgRasterError(f"{page.bytes_per_line} bytes per line for {page.width_px} px "
                             f"at {page.bits_per_pixel} bits (expected {expected})")
    return page


class _PageMeter:
    """Sums one page's ink, line by line, from the runs without expanding them."""

    __slots__ = (
        "_bits",
        "_inked_when_set",
        "_scale",
        "header",
        "ink",
        "lines_left",
        "unit",
        "units_per_line",
    )

    def __init__(self, header: PageHeader) -> None:
        self.header = header
        self.lines_left = header.height_px
        self.ink = 0.0
        self.unit = max(1, header.bits_per_pixel // 8)
        self.units_per_line = header.bytes_per_line // self.unit
        self._bits = header.bits_per_color == 1
        # Ink is summed in the stream's own unit (bits, or 0..255 per channel) and scaled
        # once per line: to pixels' worth of ink.
        channels = 3 if header.color_space == COLOR_SPACE_SRGB else 1
        self._scale = 1.0 if self._bits else 1.0 / (255.0 * channels)
        self._inked_when_set = header.color_space == COLOR_SPACE_BLACK

    def _units_ink(self, data: bytes | bytearray, count: int) -> int:
        """Ink of ``data`` (whole units) repeated ``count`` times, in stream units."""
        if self._bits:
            set_bits = int.from_bytes(data, "big").bit_count()
            ink = set_bits if self._inked_when_set else 8 * len(data) - set_bits
        else:
            total = sum(data)
            ink = total if self._inked_when_set else 255 * len(data) - total
        return ink * count

    def line(self, buf: bytes | bytearray, pos: int) -> int:
        """Measure the line at ``pos``; returns the position after it, or -1 if ``buf``
        ends inside it."""
        end = len(buf)
        if pos >= end:
            return -1
        repeat = buf[pos] + 1
        pos += 1
        unit = self.unit
        left = self.units_per_line
        ink = 0
        while left:
            if pos >= end:
                return -1
            code = buf[pos]
            pos += 1
            if code == 128:
                left = 0  # the rest of the line is white
            elif code < 128:
                count = code + 1
                if count > left:
                    raise PwgRasterError(f"a run of {count} pixels past the end of a line")
                if pos + unit > end:
                    return -1
                ink += self._units_ink(buf[pos:pos + unit], count)
                pos += unit
                left -= count
            else:
                count = 257 - code
                if count > left:
                    raise PwgRasterError(f"{count} literal pixels past the end of a line")
                size = count * unit
                if pos + size > end:
                    return -1
                ink += self._units_ink(buf[pos:pos + size], 1)
                pos += size
                left -= count
        if repeat > self.lines_left:
            raise PwgRasterError(f"a line repeated past the page's {self.header.height_px} lines")
        self.lines_left -= repeat
        self.ink += ink * repeat * self._scale
        return pos

    def coverage_pct(self) -> float:
        header = self.header
        pixels = header.width_px * header.height_px
        if not self._bits:
            return 100.0 * self.ink / pixels
        # A 1-bit line is counted to its last byte: its padding bits are not pixels.
        return min(100.0, 100.0 * self.ink / pixels)


class PwgRasterReader:
    """Push parser for a PWG raster stream; see the module docstring."""

    def __init__(self, max_pages: int = MAX_PAGES) -> None:
        self._buf = bytearray()
        self._synced = False
        self._page: _PageMeter | None = None
        self._max_pages = max_pages
        self.pages: list[RasterPage] = []
        """Every page measured so far, in order."""
        self.bytes_read = 0

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream (raises PwgRasterError)."""
        self.bytes_read += len(data)
        buf = self._buf
        buf += data
        pos = 0
        if not self._synced:
            if len(buf) < len(SYNC):
                if not SYNC.startswith(bytes(buf)):
                    raise PwgRasterError("not PWG raster: it does not start with RaS2")
                return
            if buf[:4] != SYNC:
                raise PwgRasterError("not PWG raster: it does not start with RaS2")
            self._synced = True
            pos = 4
        while True:
            page = self._page
            if page is None:
                if len(buf) - pos < HEADER_BYTES:
                    break
                if len(self.pages) >= self._max_pages:
                    raise PwgRasterError(f"more than {self._max_pages} pages")
                self._page = _PageMeter(parse_page_header(bytes(buf[pos:pos + HEADER_BYTES])))
                pos += HEADER_BYTES
                continue
            after = page.line(buf, pos)
            if after < 0:
                break
            pos = after
            if not page.lines_left:
                self.pages.append(RasterPage(page.header, round(page.coverage_pct(), 4)))
                self._page = None
        del buf[:pos]

    def close(self) -> list[RasterPage]:
        """The stream has ended: its pages (raises PwgRasterError if it ended early)."""
        if not self._synced:
            raise PwgRasterError("not PWG raster: it does not start with RaS2")
        if self._page is not None or self._buf:
            raise PwgRasterError("the stream ends inside a page")
        if not self.pages:
            raise PwgRasterError("the stream has no page")
        return self.pages
