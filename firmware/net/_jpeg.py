"""JPEG (``image/jpeg``, the format PWG 5100.14 requires), measured for its toner from
its pixels: one page, the image fitted to it, coverage ``sum(255 - v) / 255 / area`` of
its grayscale pixels, in percent.

Contract
--------
* :meth:`JpegReader.feed` takes the file in chunks of any size and keeps them (a JPEG
  decodes only whole); at most :data:`MAX_JPEG_BYTES` are taken.
* :meth:`JpegReader.close` reads the image's size from its header before any pixel is
  decoded and refuses an image of more than :data:`MAX_JPEG_PIXELS` pixels
  (:class:`JpegError` with ``too_large`` set), so memory stays bounded by the two caps
  whatever is sent; then decodes it straight to 8-bit gray (Pillow) and counts its
  histogram. Anything that is not a JPEG Pillow decodes raises :class:`JpegError`.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

JPEG_MAGIC = b"\xff\xd8\xff"
MAX_JPEG_BYTES = 64 * 1024 * 1024
MAX_JPEG_PIXELS = 7200 * 10200
"""A 12 x 17 inch sheet at 600 dpi: past any page this printer takes (a gray decode of
it is 73 MB)."""


class JpegError(ValueError):
    """A JPEG the printer cannot take; the message says why in one line. ``too_large``:
    well formed but past the printer's pixel or byte cap."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def coverage_of_gray(histogram: list[int]) -> float:
    """Percent coverage of 8-bit gray pixels from their 256-bin histogram."""
    area = sum(histogram)
    if area == 0:
        return 0.0
    ink = sum((255 - v) * n for v, n in enumerate(histogram))
    return 100.0 * ink / (255 * area)


class JpegReader:
    """One JPEG document, fed as it arrives; see the module docstring."""

    def __init__(self, max_pixels: int = MAX_JPEG_PIXELS,
                 max_bytes: int = MAX_JPEG_BYTES) -> None:
        self._max_pixels = max_pixels
        self._max_bytes = max_bytes
        self._data = bytearray()

    def feed(self, data: bytes) -> None:
        if len(self._data) + len(data) > self._max_bytes:
            raise JpegError(f"a JPEG document is at most {self._max_bytes} bytes",
                            too_large=True)
        self._data += data

    def close(self) -> float:
        """The page's coverage in percent (raises JpegError)."""
        if not self._data.startswith(JPEG_MAGIC):
            raise JpegError("the document is not a JPEG (no SOI marker)")
        try:
            with warnings.catch_warnings():
                # Our pixel cap is below Pillow's bomb warning; its warning is not ours.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(self._data), formats=("JPEG",)) as image:
                    width, height = image.size
                    if width * height > self._max_pixels:
                        raise JpegError(
                            f"the JPEG is {width}x{height} pixels; the printer takes at "
                            f"most {self._max_pixels} pixels", too_large=True)
                    image.draft("L", image.size)  # decode to gray (no scaling)
                    gray = image if image.mode == "L" else image.convert("L")
                    return coverage_of_gray(gray.histogram())
        except JpegError:
            raise
        except Image.DecompressionBombError:  # Pillow's own cap, far above ours
            raise JpegError(f"the JPEG has more pixels than the {self._max_pixels} the "
                            "printer takes", too_large=True) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise JpegError(f"the JPEG does not decode: {e}") from None
        finally:
            self._data = bytearray()
