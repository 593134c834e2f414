"""The IPP printer's HTTP side (aiohttp): ``POST /ipp/print`` carries IPP; ``GET /`` is
a status page (``printer-more-info``), ``/supplies`` the supply page and ``/icon.png``
the printer's icon.

aiohttp reads chunked request bodies and answers ``Expect: 100-continue``, as ipptool
and CUPS send them. The IPP message head is read until its end-of-attributes tag (at
most :data:`MAX_ATTRIBUTES_BYTES`); the document after it is streamed to the service
chunk by chunk, never held whole.
"""

from __future__ import annotations

import dataclasses
import html
import struct
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator

from aiohttp import web

from firmware.net._ipp_codec import IppDecodeError, IppIncomplete, IppMessage, decode_message
from firmware.net._ipp_printer_attributes import PrinterUris
from firmware.net._ipp_service import IppService

IPP_PATH = "/ipp/print"
MAX_ATTRIBUTES_BYTES = 1024 * 1024
_CHUNK_BYTES = 64 * 1024
_SHUTDOWN_TIMEOUT_S = 1.0
_REMEMBERED_REQUESTS = 64
_REMEMBERED_MAX_BYTES = 4096


def _icon_png(size_px: int = 128) -> bytes:
    """A plain printer icon (grey body, white paper slot), made here rather than shipped."""
    rows = []
    for y in range(size_px):
        row = bytearray()
        for x in range(size_px):
            inside = 8 <= x < size_px - 8 and size_px // 4 <= y < size_px - 16
            slot = size_px // 4 <= x < size_px - size_px // 4 and 8 <= y < size_px // 4 + 8
            row.append(255 if slot else 70 if inside else 230)
        rows.append(b"\x00" + bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size_px, size_px, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


class IppServer:
    """One aiohttp application on one address, serving :class:`IppService`."""

    def __init__(self, service: IppService, host: str, port: int) -> None:
        self._service = service
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._icon = _icon_png()
        self._decoded: OrderedDict[bytes, IppMessage] = OrderedDict()
        """Small all-attribute requests decoded lately, by their bytes but the
        request-id (see :meth:`_decode`)."""
        self.address: tuple[str, int] = (host, port)
        """Where it listens (the port read back once bound)."""

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_ATTRIBUTES_BYTES)
        app.router.add_post(IPP_PATH, self._ipp)
        app.router.add_post(IPP_PATH + "/{job}", self._ipp)
        app.router.add_post("/", self._ipp)
        app.router.add_get("/", self._status_page)
        app.router.add_get("/supplies", self._status_page)
        app.router.add_get("/icon.png", self._icon_handler)
        # A long-polling Get-Notifications must not hold a closing printer for a minute.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.address = (str(host), int(port))

    async def close(self) -> None:
        self._service.subscriptions.release_waiters()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _uris(self, request: web.Request) -> PrinterUris:
        host = request.host or f"{self.address[0]}:{self.address[1]}"
        return PrinterUris(ipp=f"ipp://{host}{IPP_PATH}", http=f"http://{host}")

    async def _ipp(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/ipp":
            return web.Response(status=415, text="IPP requests are application/ipp\n")
        stream = request.content
        head = bytearray()
        whole = request.content_length
        while True:
            try:
                message, offset = self._decode(head, whole)
                break
            except IppIncomplete:
                chunk = await stream.readany()
                if not chunk or len(head) > MAX_ATTRIBUTES_BYTES:
                    return self._bad_request(head, "the IPP message ends early"
                                             if not chunk else "attributes too long")
                head += chunk
            except IppDecodeError as e:
                return self._bad_request(head, str(e))

        async def body() -> AsyncIterator[bytes]:
            while True:
                data = await stream.read(_CHUNK_BYTES)
                if not data:
                    return
                yield data

        response = await self._service.handle(message, self._uris(request),
                                              bytes(head[offset:]), body())
        return web.Response(body=response, content_type="application/ipp")

    def _decode(self, head: bytearray, whole: int | None) -> tuple[IppMessage, int]:
        """``decode_message(head)``, remembered for small requests that are all
        attributes: a status monitor sends the same bytes but the request-id again and
        again. Under 20 polling clients (``python -m benchmarks network``) this takes a
        query from ~270 to ~170 us of CPU, and its p99 from 8-12 ms to 5.5 ms."""
        if whole is None or whole != len(head) or whole > _REMEMBERED_MAX_BYTES:
            return decode_message(head)
        key = bytes(head[:4] + head[8:])
        known = self._decoded.get(key)
        if known is not None:
            self._decoded.move_to_end(key)
            request_id = int.from_bytes(head[4:8], "big", signed=True)
            return dataclasses.replace(known, request_id=request_id), len(head)
        message, offset = decode_message(head)
        if offset == len(head):
            self._decoded[key] = message
            if len(self._decoded) > _REMEMBERED_REQUESTS:
                self._decoded.popitem(last=False)
        return message, offset

    def _bad_request(self, head: bytes | bytearray, reason: str) -> web.Response:
        """RFC 8010: answer what cannot be parsed with client-error-bad-request when the
        head can be read (to name the request); plain HTTP 400 otherwise."""
        if len(head) < 8:
            return web.Response(status=400, text=f"not an IPP request: {reason}\n")
        response = self._service.bad_request(bytes(head[:8]), reason)
        return web.Response(body=response, content_type="application/ipp")

    async def _icon_handler(self, request: web.Request) -> web.Response:
        return web.Response(body=self._icon, content_type="image/png")

    async def _status_page(self, request: web.Request) -> web.Response:
        status = self._service.status
        description = self._service.description
        rows = [
            ("State", f"{status.printer_state.name.lower()}: {status.message}"),
            ("Reasons", ", ".join(status.reasons)),
            ("Toner", f"{status.toner_pct:.1f} %"),
            ("Paper", "out" if status.paper_out else "loaded"),
            ("Pages printed", str(status.pages_delivered)),
        ]
        table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                        for k, v in rows)
        title = html.escape(f"{description.name} (printer-emu)")
        page = (f"<!DOCTYPE html><html><head><title>{title}</title>"
                f"<meta http-equiv=refresh content=5></head><body><h1>{title}</h1>"
                f"<p>{html.escape(description.config.board.description)}</p>"
                f"<table>{table}</table></body></html>")
        return web.Response(text=page, content_type="text/html")
