"""Documents the engine can measure: what a client's bytes become, one coverage per page.

Formats: ``image/pwg-raster`` (each page measured from its pixels, see
:mod:`firmware.net._pwg_raster`), ``image/jpeg`` (one page, measured from its pixels,
see :mod:`firmware.net._jpeg`), ``text/plain`` (paginated by the firmware's own
:func:`firmware.pages_from_text`: a page per form feed or per 66 lines) and
``application/octet-stream`` (whichever of the three the first bytes show: PWG raster
starts ``RaS2``, JPEG ``FF D8 FF``). Compression: ``none``, ``gzip`` (RFC 1952) and
``deflate`` (RFC 1951; a zlib-wrapped stream is taken too), decompressed as the bytes
arrive.

Contract: :meth:`DocumentReader.feed` takes the document in chunks of any size;
:meth:`DocumentReader.close` returns each page's coverage in percent. Memory stays
bounded whatever is sent: decompression runs in bounded steps, raster is never
expanded, a JPEG is capped in bytes and pixels, and a text document may hold at most
:data:`MAX_TEXT_BYTES`. Anything wrong raises :class:`DocumentError`, whose
``compression`` flag tells a compression fault from a format fault and whose
``too_large`` flag a document past the printer's caps.
"""

from __future__ import annotations

import zlib

from firmware import pages_from_text
from firmware.net._jpeg import JPEG_MAGIC, JpegError, JpegReader
from firmware.net._pwg_raster import SYNC, PwgRasterError, PwgRasterReader

PWG_RASTER = "image/pwg-raster"
JPEG = "image/jpeg"
TEXT = "text/plain"
OCTET_STREAM = "application/octet-stream"
FORMATS = (OCTET_STREAM, JPEG, PWG_RASTER, TEXT)
"""``document-format-supported``, in the order advertised."""
COMPRESSIONS = ("none", "deflate", "gzip")

MAX_TEXT_BYTES = 16 * 1024 * 1024
_INFLATE_STEP_BYTES = 256 * 1024


class DocumentError(ValueError):
    """A document the printer cannot take; the message says why in one line."""

    def __init__(self, message: str, *, compression: bool = False,
                 too_large: bool = False) -> None:
        super().__init__(message)
        self.compression = compression
        self.too_large = too_large


class _Inflater:
    """gzip or deflate, decompressed in steps of at most ``_INFLATE_STEP_BYTES`` out."""

    def __init__(self, compression: str) -> None:
        self._gzip = compression == "gzip"
        self._inflater: zlib._Decompress | None = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if self._gzip else None)
        self._head = b""

    def _start_deflate(self, data: bytes) -> zlib._Decompress | None:
        # RFC 1951 raw deflate is what IPP names; a zlib header (CMF 8, check bits)
        # says the sender wrapped it, as some do.
        self._head += data
        if len(self._head) < 2:
            return None
        cmf, flg = self._head[0], self._head[1]
        wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> list[bytes]:
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = self._start_deflate(data)
            if inflater is None:
                return []
            data, self._head = self._head, b""
        out: list[bytes] = []
        try:
            chunk = inflater.decompress(data, _INFLATE_STEP_BYTES)
            while chunk:
                out.append(chunk)
                chunk = inflater.decompress(inflater.unconsumed_tail, _INFLATE_STEP_BYTES)
        except zlib.error as e:
            raise DocumentError(f"the document does not decompress: {e}",
                                compression=True) from None
        return out

    def close(self) -> list[bytes]:
        if self._inflater is None:
            raise DocumentError("the compressed document is empty", compression=True)
        try:
            rest = self._inflater.flush()
        except zlib.error as e:
            raise DocumentError(f"the document does not decompress: {e}",
                                compression=True) from None
        if not self._inflater.eof:
            raise DocumentError("the compressed document ends early", compression=True)
        return [rest] if rest else []


class DocumentReader:
    """One document, fed as it arrives; see the module docstring."""

    def __init__(self, document_format: str, compression: str = "none") -> None:
        if document_format not in FORMATS:
            raise DocumentError(f"document-format {document_format!r} is not supported")
        if compression not in COMPRESSIONS:
            raise DocumentError(f"compression {compression!r} is not supported",
                                compression=True)
        self.document_format = document_format
        """What the client said it is; :attr:`detected_format` is what it turned out to be."""
        self.detected_format: str | None = None if document_format == OCTET_STREAM \
            else document_format
        self._inflater = _Inflater(compression) if compression != "none" else None
        self._raster: PwgRasterReader | None = None
        self._jpeg: JpegReader | None = None
        self._text = bytearray()
        self._sniffed = b""
        self.bytes_received = 0
        """Bytes as sent (compressed, if it was)."""

    def feed(self, data: bytes) -> None:
        self.bytes_received += len(data)
        if self._inflater is None:
            self._take(data)
            return
        for chunk in self._inflater.feed(data):
            self._take(chunk)

    def _take(self, data: bytes) -> None:
        if self.detected_format is None:
            self._sniffed += data
            sniffed = self._sniffed
            if len(sniffed) < len(SYNC) and (SYNC.startswith(sniffed)
                                              or JPEG_MAGIC.startswith(sniffed)):
                return
            self.detected_format = (PWG_RASTER if sniffed.startswith(SYNC)
                                    else JPEG if sniffed.startswith(JPEG_MAGIC) else TEXT)
            data, self._sniffed = sniffed, b""
        if self.detected_format == PWG_RASTER:
            if self._raster is None:
                self._raster = PwgRasterReader()
            try:
                self._raster.feed(data)
            except PwgRasterError as e:
                raise DocumentError(str(e)) from None
            return
        if self.detected_format == JPEG:
            if self._jpeg is None:
                self._jpeg = JpegReader()
            try:
                self._jpeg.feed(data)
            except JpegError as e:
                raise DocumentError(str(e), too_large=e.too_large) from None
            return
        if len(self._text) + len(data) > MAX_TEXT_BYTES:
            raise DocumentError(f"a text document is at most {MAX_TEXT_BYTES} bytes")
        self._text += data

    def close(self) -> tuple[float, ...]:
        """Every page's coverage in percent (raises DocumentError)."""
        if self._inflater is not None:
            for chunk in self._inflater.close():
                self._take(chunk)
        if self.detected_format is None:  # fewer bytes than a sync word
            self.detected_format = TEXT
            self._text += self._sniffed
        if self.detected_format == PWG_RASTER:
            assert self._raster is not None
            try:
                return tuple(page.coverage_pct for page in self._raster.close())
            except PwgRasterError as e:
                raise DocumentError(str(e)) from None
        if self.detected_format == JPEG:
            try:
                return ((self._jpeg or JpegReader()).close(),)
            except JpegError as e:
                raise DocumentError(str(e), too_large=e.too_large) from None
        text = self._text.decode("utf-8", errors="replace")
        if not text.strip("\f\n\r\t "):
            raise DocumentError("the text document has nothing to print")
        return pages_from_text(text)
