"""Documents: formats (PWG raster, text, sniffed octet-stream) and compression (gzip,
deflate), fed in chunks of any size, with bounded memory."""

from __future__ import annotations

import gzip
import zlib

import pytest

from firmware import pages_from_text
from firmware.net._documents import MAX_TEXT_BYTES, DocumentError, DocumentReader
from tests.firmware.net.pwg_samples import encode_page, page_header, stream

RASTER = stream(page_header(100, 10) + encode_page([b"\x00" * 50 + b"\xff" * 50] * 10))
TEXT = "Hello\nworld\f" + "x" * 80 + "\n"


def _read(fmt: str, data: bytes, compression: str = "none", chunk: int = 7) -> DocumentReader:
    reader = DocumentReader(fmt, compression)
    for i in range(0, len(data), chunk):
        reader.feed(data[i:i + chunk])
    return reader


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(("compression", "pack"), [
    ("none", lambda b: b),
    ("gzip", gzip.compress),
    ("deflate", _raw_deflate),
    ("deflate", zlib.compress),  # zlib-wrapped, as some senders do
])
def test_every_compression_gives_the_same_pages(compression: str, pack: object) -> None:
    assert callable(pack)
    assert _read("image/pwg-raster", pack(RASTER), compression).close() == (50.0,)
    assert _read("text/plain", pack(TEXT.encode()), compression).close() == pages_from_text(TEXT)


def test_octet_stream_is_sniffed() -> None:
    raster = _read("application/octet-stream", RASTER, chunk=1)
    assert raster.close() == (50.0,)
    assert raster.detected_format == "image/pwg-raster"
    text = _read("application/octet-stream", b"Ra\n")
    assert text.close() == pages_from_text("Ra\n")
    assert text.detected_format == "text/plain"


def test_unsupported_formats_and_compressions() -> None:
    with pytest.raises(DocumentError, match="document-format 'application/pdf'"):
        DocumentReader("application/pdf")
    with pytest.raises(DocumentError, match="compression 'compress'") as e:
        DocumentReader("text/plain", "compress")
    assert e.value.compression


def test_broken_compression_is_a_compression_error() -> None:
    with pytest.raises(DocumentError, match="does not decompress") as e:
        _read("text/plain", b"\x1f\x8b\x08\x00garbage-garbage", "gzip").close()
    assert e.value.compression
    with pytest.raises(DocumentError, match="ends early"):
        _read("text/plain", gzip.compress(TEXT.encode())[:-12], "gzip").close()


def test_a_decompression_bomb_stops_at_the_text_limit() -> None:
    bomb = gzip.compress(b"a" * (MAX_TEXT_BYTES + 1024 * 1024))
    reader = DocumentReader("text/plain", "gzip")
    with pytest.raises(DocumentError, match="at most"):
        for i in range(0, len(bomb), 65536):
            reader.feed(bomb[i:i + 65536])


def test_a_bad_raster_is_a_format_error() -> None:
    with pytest.raises(DocumentError, match="RaS2") as e:
        _read("image/pwg-raster", b"%PDF-1.7\n").close()
    assert not e.value.compression


def test_an_empty_text_has_nothing_to_print() -> None:
    with pytest.raises(DocumentError, match="nothing to print"):
        _read("text/plain", b"\n\f\n").close()


def _jpeg(image: object) -> bytes:
    import io

    from PIL import Image

    assert isinstance(image, Image.Image)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def test_a_jpeg_is_one_page_measured_from_its_pixels() -> None:
    from PIL import Image

    half = Image.new("L", (200, 100), 255)
    half.paste(0, (0, 0, 100, 100))
    pages = _read("image/jpeg", _jpeg(half), chunk=100).close()
    assert len(pages) == 1 and pages[0] == pytest.approx(50.0, abs=1.0)
    white = _read("image/jpeg", _jpeg(Image.new("RGB", (64, 64), "white"))).close()
    assert white[0] == pytest.approx(0.0, abs=0.5)
    gray = _read("image/jpeg", _jpeg(Image.new("RGB", (64, 64), (128, 128, 128)))).close()
    assert gray[0] == pytest.approx(100 * 127 / 255, abs=1.0)


def test_a_jpeg_is_sniffed_and_may_come_compressed() -> None:
    from PIL import Image

    data = _jpeg(Image.new("L", (40, 40), 0))
    reader = _read("application/octet-stream", gzip.compress(data), "gzip", chunk=1)
    assert reader.close()[0] == pytest.approx(100.0, abs=0.5)
    assert reader.detected_format == "image/jpeg"


def test_a_jpeg_past_the_pixel_cap_is_refused_before_it_is_decoded() -> None:
    from PIL import Image

    from firmware.net._jpeg import JpegError, JpegReader

    reader = JpegReader(max_pixels=100 * 100)
    reader.feed(_jpeg(Image.new("L", (101, 100), 0)))
    with pytest.raises(JpegError, match="101x100 pixels") as e:
        reader.close()
    assert e.value.too_large
    with pytest.raises(JpegError, match="at most 10 bytes") as e:
        JpegReader(max_bytes=10).feed(b"\xff\xd8\xff" + b"\0" * 10)
    assert e.value.too_large


def test_a_broken_jpeg_is_a_format_error() -> None:
    from PIL import Image

    data = _jpeg(Image.new("L", (64, 64), 0))
    with pytest.raises(DocumentError, match="does not decode") as e:
        _read("image/jpeg", data[:len(data) // 2]).close()
    assert not e.value.too_large
    with pytest.raises(DocumentError, match="not a JPEG"):
        _read("image/jpeg", b"hello").close()
