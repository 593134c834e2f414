"""The PWG raster reader: headers, run-length lines, coverage measured from the pixels,
streaming in chunks of any size, and Ghostscript's own output."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from firmware.net._pwg_raster import HEADER_BYTES, PwgRasterError, PwgRasterReader
from tests.firmware.net.pwg_samples import (
    encode_line,
    encode_page,
    ghostscript,
    page_header,
    render,
    stream,
)


def _read(data: bytes, chunk: int | None = None) -> list[float]:
    reader = PwgRasterReader()
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        reader.feed(data[i:i + step])
    return [page.coverage_pct for page in reader.close()]


def test_a_white_and_a_black_sgray_page() -> None:
    white = page_header(100, 50) + encode_page([b"\xff" * 100] * 50)
    black = page_header(100, 50) + encode_page([b"\x00" * 100] * 50)
    assert _read(stream(white, black)) == [0.0, 100.0]


def test_sgray_coverage_is_the_sum_of_darkness() -> None:
    rows = [bytes([0] * 25 + [255] * 50 + [127] * 25) for _ in range(40)]
    # A quarter black, a quarter at (255 - 127) / 255.
    expected = 100.0 * (25 * 1.0 + 25 * 128 / 255) / 100
    assert _read(stream(page_header(100, 40) + encode_page(rows))) == [round(expected, 4)]


def test_black_1_coverage_counts_set_bits() -> None:
    rows = [b"\xf0" + b"\x00" * 9 for _ in range(16)]  # 4 of 80 pixels per row
    page = page_header(80, 16, color_space=3, bits=1) + encode_page(rows)
    assert _read(stream(page)) == [5.0]


def test_srgb_coverage_averages_the_channels() -> None:
    red = b"\xff\x00\x00"
    rows = [red * 10 for _ in range(10)]
    page = page_header(10, 10, color_space=19, channels=3) + encode_page(rows, unit=3)
    assert _read(stream(page)) == [round(200 / 3, 4)]


def test_run_128_fills_the_rest_of_the_line_with_white() -> None:
    line = bytes([0, 0, 0x00, 128])  # no repeat; a run of 1 black pixel; white to the end
    page = page_header(10, 1) + line
    assert _read(stream(page)) == [10.0]


def test_random_pages_measure_the_same_in_any_chunking() -> None:
    rng = random.Random(5)
    rows = []
    for _ in range(30):
        row = bytes(rng.choice((0, 255, rng.randrange(256))) for _ in range(64))
        rows.extend([row] * rng.randrange(1, 4))
    page = page_header(64, len(rows)) + encode_page(rows)
    darkness = sum(255 - v for row in rows for v in row) / 255
    expected = [round(100.0 * darkness / (64 * len(rows)), 4)]
    data = stream(page, page)
    for chunk in (1, 2, 3, 7, 100, 1795, 1797, len(data)):
        assert _read(data, chunk) == expected * 2


def test_memory_is_a_chunk_and_a_line_whatever_the_page() -> None:
    # A 600 dpi A4 page of alternating pixels: 35 MB expanded, never held.
    width, height = 4960, 7016
    line = encode_line(b"\x00\xff" * (width // 2))
    body = bytes([0]) + line
    reader = PwgRasterReader()
    reader.feed(_sync_and_header(width, height))
    high_water = 0
    for _ in range(height):
        reader.feed(body)
        high_water = max(high_water, len(reader._buf))
    assert reader.close()[0].coverage_pct == 50.0
    assert high_water < len(body)


def _sync_and_header(width: int, height: int) -> bytes:
    return stream(page_header(width, height, dpi=600))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4", "does not start with RaS2"),
        (stream(page_header(10, 1, color_space=6, bits=8, channels=4)), "colour space 6"),
        (stream(page_header(10, 1, bytes_per_line=11)), "11 bytes per line"),
        (stream(page_header(0, 1)), "width 0 px"),
        (stream(page_header(10, 1) + bytes([0, 20, 0])), "past the end of a line"),
        (stream(page_header(10, 1) + bytes([0, 200]) + bytes(57)), "literal pixels past"),
        (stream(page_header(10, 1) + bytes([1, 128])), "repeated past the page"),
    ],
)
def test_malformed_streams_are_named(data: bytes, reason: str) -> None:
    with pytest.raises(PwgRasterError, match=reason):
        _read(data)


@pytest.mark.parametrize("data", [b"", b"RaS2", stream(page_header(10, 2) + bytes([0, 128])),
                                  b"RaS2" + bytes(HEADER_BYTES - 1)])
def test_a_stream_that_stops_early_is_an_error(data: bytes) -> None:
    with pytest.raises(PwgRasterError):
        _read(data)


# -- Ghostscript's pwgraster device ---------------------------------------------------

_HALF_BLACK_PS = b"""%!PS
<< /PageSize [595 842] >> setpagedevice
0 setgray 0 0 moveto 595 0 lineto 595 421 lineto 0 421 lineto closepath fill
showpage
1 setgray 0 0 moveto 1 1 lineto stroke
showpage
"""


@pytest.fixture(scope="module")
def half_black(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if ghostscript() is None:
        pytest.skip("missing tool: Ghostscript (gs)")
    path = tmp_path_factory.mktemp("pwg") / "half.ps"
    path.write_bytes(_HALF_BLACK_PS)
    return path


@pytest.mark.parametrize(("dpi", "color_space", "bits"), [(300, 3, 1), (600, 3, 1),
                                                          (300, 18, 8), (600, 18, 8),
                                                          (300, 19, 8)])
def test_ghostscript_pages_measure_what_was_drawn(half_black: Path, tmp_path: Path, dpi: int,
                                                  color_space: int, bits: int) -> None:
    raster = render(half_black, tmp_path / "half.pwg", dpi=dpi, color_space=color_space,
                    bits=bits)
    coverage = _read(raster.read_bytes(), 65536)
    assert len(coverage) == 2
    assert coverage[0] == pytest.approx(50.0, abs=0.3)
    assert coverage[1] == 0.0
