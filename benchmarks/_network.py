"""The network front end's costs: ``python -m benchmarks network``.

In one run, on the devkit board (rated 600 ppm) in real time (a virtual clock tied to
the wall, as ``printer-emu run --ipp`` runs it), the firmware's scheduler on a thread of
its own and :class:`firmware.net.NetworkFrontEnd` on loopback:

* **Printing while polled**: a 200-page job (at scale 1) printed twice, one run after
  the other: unpolled, then with 20 clients (one subprocess, as a LAN's monitors are
  other machines: their CPU is not the printer's) each sending Get-Printer-Attributes
  for the status a monitor reads (state, reasons, message, marker levels, queue) as
  fast as the answers come, on keep-alive connections. Pages per minute in wall time,
  ``60 * (pages - 1) / (last delivery - first delivery)``, polled ÷ unpolled (goal 1.00
  ± 0.01); the largest lateness of a page against the board's own schedule (wall time
  from the first page minus board time from the first page); the queries' round trip
  p50/p99 as the clients measure it (goal p99 < 10 ms); queries per second.
* **Print-Job ingest**: one US-letter page at 600 dpi, ``sgray_8`` and ``black_1``
  (text-like rows: a line of glyph-sized runs, then white), sent by Print-Job; from the
  request's first byte to the answer, which comes once the page is decoded and
  measured: MB/s of raster (the page's raw size, width x height x bits). Beside it the
  same page through :class:`firmware.net.DocumentReader` alone, in process.

``--scale F`` runs ``F`` of the job's pages (at least 5), of the ingest repeats and of
the ingested page's height.
"""

from __future__ import annotations

import http.client
import json
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from benchmarks import scale as workload_scale
from boards import load_board
from emulator.board import EmulatedBoard
from firmware import Printer, StatusEvent
from firmware.net import DocumentReader, NetworkFrontEnd
from hal import Scheduler, VirtualClock

BOARD: Final = "devkit"
PAGES: Final = 200
"""Within the devkit's tray (250 sheets), which is filled before each job."""
CLIENTS: Final = 20
COVERAGE_PCT: Final = 5.0
INGEST_REPEATS: Final = 3
PAGE_W_PX: Final = 5100
PAGE_H_PX: Final = 6600
"""US letter at 600 dpi."""
PPM_TOLERANCE: Final = 0.01
P99_TARGET_MS: Final = 10.0
STATUS_ATTRIBUTES: Final = (
    "printer-state", "printer-state-reasons", "printer-state-message", "marker-levels",
    "marker-names", "printer-is-accepting-jobs", "queued-job-count",
)
"""What a status monitor asks for (CUPS's backend and Home Assistant ask for these)."""
_WAIT_S: Final = 600.0
_REPO: Final = Path(__file__).resolve().parents[1]


def _progress(text: str) -> None:
    print(f"[network] {text}", file=sys.stderr, flush=True)


# -- IPP requests, encoded here (RFC 8010) -----------------------------------------------


def _attribute(tag: int, name: str, *values: bytes) -> bytes:
    out = bytearray()
    for i, value in enumerate(values):
        key = name.encode() if i == 0 else b""
        out += struct.pack(">BH", tag, len(key)) + key + struct.pack(">H", len(value)) + value
    return bytes(out)


def ipp_request(operation: int, uri: str, *extra: bytes) -> bytes:
    """An IPP/2.0 request: the operation group with ``extra`` attributes after the usual
    four, then end-of-attributes."""
    return (struct.pack(">BBHI", 2, 0, operation, 1) + b"\x01"
            + _attribute(0x47, "attributes-charset", b"utf-8")
            + _attribute(0x48, "attributes-natural-language", b"en")
            + _attribute(0x45, "printer-uri", uri.encode())
            + _attribute(0x42, "requesting-user-name", b"bench")
            + b"".join(extra) + b"\x03")


def status_request(uri: str) -> bytes:
    return ipp_request(0x000B, uri, _attribute(
        0x44, "requested-attributes", *(n.encode() for n in STATUS_ATTRIBUTES)))


def print_job_request(uri: str, document_format: str) -> bytes:
    return ipp_request(0x0002, uri, _attribute(0x49, "document-format",
                                               document_format.encode()))


# -- a 600 dpi page -------------------------------------------------------------------------


def _runs(row: bytes) -> bytes:
    """One row as PWG runs of one-byte units: repeats, and literals of mixed bytes."""
    out = bytearray()
    i, n = 0, len(row)
    while i < n:
        run = 1
        while i + run < n and run < 128 and row[i + run] == row[i]:
            run += 1
        if run > 1:
            out += bytes((run - 1, row[i]))
            i += run
            continue
        j = i + 1  # a literal: up to where a repeat starts, 128 bytes at most
        while j < n and j - i < 128 and (j + 1 >= n or row[j + 1] != row[j]):
            j += 1
        if j - i == 1:
            out += bytes((0, row[i]))
        else:
            out.append(257 - (j - i))
            out += row[i:j]
        i = j
    return bytes(out)


def pwg_page(*, bits: int, height_px: int = PAGE_H_PX) -> tuple[bytes, int]:
    """A text-like US-letter page at 600 dpi as a PWG raster stream, and its raw size in
    bytes: text lines of 60 rows of glyph-like runs, each row sent (a rasteriser's glyph
    rows differ), then 72 white rows."""
    bytes_per_line = (PAGE_W_PX * bits + 7) // 8
    header = bytearray(1796)
    header[0:9] = b"PwgRaster"
    for offset, value in ((276, 600), (280, 600), (372, PAGE_W_PX), (376, height_px),
                          (384, bits), (388, bits), (392, bytes_per_line),
                          (400, 18 if bits == 8 else 3), (420, 1)):
        struct.pack_into(">I", header, offset, value)
    header[1732:1732 + 18] = b"na_letter_8.5x11in"
    dark, white = (0, 255) if bits == 8 else (255, 0)
    glyphs = bytearray([white]) * bytes_per_line
    if bits == 8:  # a pixel in seven inked across the text's width
        for x in range(bytes_per_line // 10, bytes_per_line * 9 // 10, 7):
            glyphs[x] = dark if (x // 3) % 4 else (dark + white) // 2
    else:  # words: five bytes of glyph bits, three white
        for x in range(bytes_per_line // 10, bytes_per_line * 9 // 10 - 8, 8):
            glyphs[x:x + 5] = b"\x3c\x66\x7e\x18\xc3"
    text_row = _runs(bytes(glyphs))
    white_row = bytes((127, white)) * (bytes_per_line // 128) + (
        bytes((bytes_per_line % 128 - 1, white)) if bytes_per_line % 128 else b"")
    body = bytearray()
    rows = 0
    while rows < height_px:
        n = min(60, height_px - rows)
        for _ in range(n):
            body += b"\x00" + text_row
        rows += n
        n = min(72, height_px - rows)
        if n:
            body += bytes((n - 1,)) + white_row
            rows += n
    return b"RaS2" + bytes(header) + bytes(body), bytes_per_line * height_px


# -- the printer on the network ---------------------------------------------------------------


class _Rig:
    """The devkit's firmware on a scheduler thread in real time, its front end on
    loopback; each delivered page's wall time (``time.perf_counter``) and board time."""

    def __init__(self) -> None:
        self.scheduler = Scheduler(VirtualClock(realtime_ratio=1.0))
        self.board = EmulatedBoard(load_board(BOARD), self.scheduler, seed=0)
        self.pages: list[tuple[float, int]] = []
        self.done = threading.Event()
        self.printer = Printer(self.board, listeners=[self._on_status])
        self.front_end = NetworkFrontEnd(self.printer, ipp=("127.0.0.1", 0))
        self._thread = threading.Thread(target=self.scheduler.run, name="scheduler",
                                        daemon=True)
        self._job: int | None = None

    def _on_status(self, event: StatusEvent) -> None:
        if event.kind == "page_delivered":
            self.pages.append((time.perf_counter(), event.t_ns))
        elif event.kind == "job_done" and event.detail["job"] == self._job:
            self.done.set()

    @property
    def uri(self) -> str:
        assert self.front_end.ipp_address is not None
        host, port = self.front_end.ipp_address
        return f"ipp://{host}:{port}/ipp/print"

    def print_job(self, pages: int) -> list[tuple[float, int]]:
        """Print ``pages`` pages (submitted on the scheduler's thread) and return their
        deliveries."""
        self.pages.clear()
        self.done.clear()

        def submit() -> None:
            faults = self.board.faults
            assert faults is not None
            faults.set_tray(self.board.config.tray.capacity_sheets)  # each job a full tray
            self._job = self.printer.submit(pages, COVERAGE_PCT).id

        self.scheduler.post_threadsafe(submit)
        rated_s = 60.0 * pages / self.board.config.engine.rated_ppm
        if not self.done.wait(30.0 + 3 * rated_s):
            raise RuntimeError(f"the {pages}-page job did not finish: {self.printer.states()}")
        return list(self.pages)

    def __enter__(self) -> _Rig:
        self.front_end.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.scheduler.stop()
        self._thread.join(_WAIT_S)
        self.front_end.close()


def _ppm(pages: list[tuple[float, int]]) -> float:
    n = len(pages)
    return 60.0 * (n - 1) / (pages[-1][0] - pages[0][0]) if n > 1 else 0.0


def _max_lateness_ms(pages: list[tuple[float, int]]) -> float:
    wall0, board0 = pages[0]
    return max(((wall - wall0) - (t_ns - board0) / 1e9) * 1000 for wall, t_ns in pages)


# -- the polling clients (a subprocess) ---------------------------------------------------------

_CLIENTS_SCRIPT: Final = r"""
import asyncio, json, sys, time

host, port, clients, request_hex = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = bytes.fromhex(request_hex)
request = (f"POST /ipp/print HTTP/1.1\r\nHost: {host}:{port}\r\n"
           f"Content-Type: application/ipp\r\nContent-Length: {len(body)}\r\n\r\n"
           ).encode() + body
stop = False
latencies = []
failures = 0


async def client():
    global failures
    reader, writer = await asyncio.open_connection(host, port)
    while not stop:
        t0 = time.perf_counter_ns()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        answer = await reader.readexactly(length)
        latencies.append(time.perf_counter_ns() - t0)
        if not head.startswith(b"HTTP/1.1 200") or answer[2:4] != b"\0\0":
            failures += 1
    writer.close()


async def main():
    global stop
    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    print("ready", flush=True)
    t0 = time.perf_counter()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop = True
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    print(json.dumps({"latencies_ns": latencies, "elapsed_s": elapsed,
                      "failures": failures}), flush=True)


asyncio.run(main())
"""


@contextmanager
def _polling(rig: _Rig, clients: int) -> Iterator[dict[str, Any]]:
    """``clients`` clients polling the printer's status for the ``with`` block; the
    dict is filled with their figures when the block ends."""
    assert rig.front_end.ipp_address is not None
    host, port = rig.front_end.ipp_address
    process = subprocess.Popen(
        [sys.executable, "-c", _CLIENTS_SCRIPT, host, str(port), str(clients),
         status_request(rig.uri).hex()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=_REPO)
    assert process.stdin is not None and process.stdout is not None
    figures: dict[str, Any] = {}
    try:
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the polling clients did not start")
        yield figures
    finally:
        out, _ = process.communicate("", timeout=_WAIT_S)
    figures.update(json.loads(out))


def _percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])


# -- ingest -------------------------------------------------------------------------------------


def _ingest(rig: _Rig, page: bytes, raw_bytes: int, repeats: int) -> dict[str, float]:
    assert rig.front_end.ipp_address is not None
    host, port = rig.front_end.ipp_address
    body = print_job_request(rig.uri, "image/pwg-raster") + page
    over_ipp = []
    for _ in range(repeats):
        connection = http.client.HTTPConnection(host, port, timeout=_WAIT_S)
        try:
            t0 = time.perf_counter()
            connection.request("POST", "/ipp/print", body,
                               {"Content-Type": "application/ipp"})
            answer = connection.getresponse().read()
            over_ipp.append(time.perf_counter() - t0)
        finally:
            connection.close()
        if answer[2:4] != b"\0\0":
            raise RuntimeError(f"Print-Job answered status {answer[2:4].hex()}")
    in_process = []
    coverage = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        reader = DocumentReader("image/pwg-raster")
        for i in range(0, len(page), 64 * 1024):
            reader.feed(page[i:i + 64 * 1024])
        coverage = reader.close()[0]
        in_process.append(time.perf_counter() - t0)
    mb = raw_bytes / 1e6
    return {"ipp_mb_s": mb / min(over_ipp), "reader_mb_s": mb / min(in_process),
            "ipp_s": min(over_ipp), "sent_mb": len(page) / 1e6, "raw_mb": mb,
            "coverage_pct": coverage}


# -- the benchmark ------------------------------------------------------------------------------


def run(scale: float | None = None) -> dict[str, Any]:
    s = workload_scale() if scale is None else scale
    pages = max(5, round(PAGES * s))
    repeats = max(1, round(INGEST_REPEATS * s))
    height_px = max(132, round(PAGE_H_PX * min(1.0, s)))
    with _Rig() as rig:
        _progress(f"a {pages}-page {BOARD} job, unpolled")
        rig.print_job(1)  # warm the fuser: both measured jobs start from ready
        unpolled = rig.print_job(pages)
        _progress(f"the same job with {CLIENTS} clients polling its status")
        with _polling(rig, CLIENTS) as polling:
            polled = rig.print_job(pages)
        _progress("Print-Job ingest of a 600 dpi page")
        gray_page, gray_raw = pwg_page(bits=8, height_px=height_px)
        gray = _ingest(rig, gray_page, gray_raw, repeats)
        mono_page, mono_raw = pwg_page(bits=1, height_px=height_px)
        mono = _ingest(rig, mono_page, mono_raw, repeats)

    latencies = polling["latencies_ns"]
    queries = len(latencies)
    p50_ms = _percentile(latencies, 0.50) / 1e6
    p99_ms = _percentile(latencies, 0.99) / 1e6
    qps = queries / polling["elapsed_s"]
    ppm_unpolled, ppm_polled = _ppm(unpolled), _ppm(polled)
    ratio = ppm_polled / ppm_unpolled if ppm_unpolled else 0.0
    late_unpolled, late_polled = _max_lateness_ms(unpolled), _max_lateness_ms(polled)
    targets = {
        "same_ppm_while_polled": abs(ratio - 1.0) <= PPM_TOLERANCE,
        "status_p99_under_10ms": p99_ms < P99_TARGET_MS,
    }
    rows: list[list[Any]] = [
        [f"{pages}-page job, unpolled (ppm, wall time)", round(ppm_unpolled, 2),
         round(late_unpolled, 1), "-"],
        [f"same job, {CLIENTS} clients polling (ppm, wall time)", round(ppm_polled, 2),
         round(late_polled, 1), f"ratio {ratio:.4f} (goal 1.00 ± {PPM_TOLERANCE:g})"],
        ["Get-Printer-Attributes round trip p50 (ms)", round(p50_ms, 2), "-", "-"],
        ["Get-Printer-Attributes round trip p99 (ms)", round(p99_ms, 2), "-",
         f"goal < {P99_TARGET_MS:g} ms"],
        ["status queries per second", round(qps), "-",
         f"{queries} queries, {polling['failures']} failed"],
        ["Print-Job ingest, sgray_8 (MB/s raw)", round(gray["ipp_mb_s"], 1),
         "-", f"{gray['raw_mb']:.1f} MB raw, {gray['sent_mb']:.2f} MB sent, "
              f"{gray['ipp_s'] * 1000:.0f} ms"],
        ["  DocumentReader alone (MB/s raw)", round(gray["reader_mb_s"], 1),
         "-", "-"],
        ["Print-Job ingest, black_1 (MB/s raw)", round(mono["ipp_mb_s"], 1),
         "-", f"{mono['raw_mb']:.1f} MB raw, {mono['sent_mb']:.2f} MB sent, "
              f"{mono['ipp_s'] * 1000:.0f} ms"],
        ["  DocumentReader alone (MB/s raw)", round(mono["reader_mb_s"], 1),
         "-", "-"],
    ]
    return {
        "name": "network",
        "board": BOARD,
        "pages": pages,
        "clients": CLIENTS,
        "ppm_unpolled": ppm_unpolled,
        "ppm_polled": ppm_polled,
        "polled_vs_unpolled_ppm": ratio,
        "page_lateness_max_unpolled_ms": late_unpolled,
        "page_lateness_max_polled_ms": late_polled,
        "status_p50_ms": p50_ms,
        "status_p99_ms": p99_ms,
        "status_mean_ms": statistics.fmean(latencies) / 1e6,
        "status_queries_per_s": qps,
        "status_failures": polling["failures"],
        "ingest_sgray8_mb_s": gray["ipp_mb_s"],
        "ingest_sgray8_reader_mb_s": gray["reader_mb_s"],
        "ingest_black1_mb_s": mono["ipp_mb_s"],
        "ingest_black1_reader_mb_s": mono["reader_mb_s"],
        "targets": targets,
        "table": {
            "title": f"network front end on {BOARD} in real time (ingest: a 600 dpi letter "
                     "page)",
            "columns": ["measure", "figure", "max page lateness (ms)", "note"],
            "rows": rows,
        },
        "notes": [f"targets met: {', '.join(k for k, v in targets.items() if v) or 'none'}; "
                  f"missed: {', '.join(k for k, v in targets.items() if not v) or 'none'}"],
    }
