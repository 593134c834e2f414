"""The raw port (AppSocket, "port 9100"): a job is the data of one connection, optionally
wrapped in PJL, and PJL status is answered on the same connection.

Each connection is a :class:`_Session` on the network loop. Its job data (PWG raster or
text, told apart by its first bytes) is measured as it arrives and handed to the
printer when it ends (a UEL or the end of the connection); a page description language
the printer does not read (PCL, PostScript) is taken as text, a page per form feed.
PJL it answers:

* ``@PJL INFO STATUS`` (CODE, DISPLAY, ONLINE), ``@PJL INFO ID``, ``@PJL INFO PAGECOUNT``,
  ``@PJL INFO USTATUS``, ``@PJL ECHO``;
* ``@PJL USTATUS DEVICE=ON|VERBOSE|OFF``: from then on every change of the device
  status code is pushed unasked (``@PJL USTATUS DEVICE``; ON and VERBOSE push the same:
  every code this printer has is worth telling); ``JOB=ON``: START and END of this
  connection's jobs; ``PAGE=ON``: each page of them as it is delivered; ``TIMED=n``:
  the device status every ``n`` seconds (5..300); ``@PJL USTATUSOFF``.

A connection that asked for unsolicited status stays open after the client has sent
its last byte, until the client closes it (or the printer closes).

Every reply ends with a form feed. Status comes from the printer's published snapshots,
each seen in order (:meth:`AppSocketServer.observe`).
"""

from __future__ import annotations

import asyncio
import contextlib

from firmware.net._documents import OCTET_STREAM, DocumentError, DocumentReader
from firmware.net._ipp_printer_attributes import PrinterDescription
from firmware.net._job_table import JobTable, NetworkJob
from firmware.net._pjl import (
    DeviceStatus,
    JobData,
    JobEnd,
    PjlCommand,
    PjlParser,
    device_status,
    parse_command,
)
from firmware.net._printer_status import PrinterStatus, StatusBoard

_READ_BYTES = 64 * 1024
_TIMED_RANGE_S = (5, 300)


class _Session:
    """One raw-port connection."""

    def __init__(self, server: AppSocketServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self._parser = PjlParser()
        self.device = "OFF"
        self.job_status = False
        self.page_status = False
        self._timed: asyncio.Task[None] | None = None
        self._job_name = ""
        self._job: NetworkJob | None = None
        self._document: DocumentReader | None = None
        self._failed = ""
        self.jobs: dict[int, tuple[str, int]] = {}
        """This connection's unfinished jobs: id -> (name, pages told so far)."""
        self.last_code: int | None = None

    async def run(self) -> None:
        try:
            while True:
                data = await self._reader.read(_READ_BYTES)
                if not data:
                    break
                self._handle(self._parser.feed(data))
                await self._writer.drain()
            self._handle(self._parser.close())
            # Keep the connection while the client listens for unsolicited status.
            if self.device != "OFF" or self.job_status or self.page_status:
                await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        finally:
            if self._timed is not None:
                self._timed.cancel()
            self._abandon()

    def close(self) -> None:
        if self._timed is not None:
            self._timed.cancel()
        self._writer.close()

    def send(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    # -- what the client sent ---------------------------------------------------------

    def _handle(self, events: list[PjlCommand | JobData | JobEnd]) -> None:
        for event in events:
            if isinstance(event, PjlCommand):
                self._command(event.line)
            elif isinstance(event, JobData):
                self._data(event.data)
            else:
                self._end()

    def _data(self, data: bytes) -> None:
        if self._job is None:
            name = self._job_name or "raw job"
            self._job = self._server.jobs.create(name=name, user="raw", origin="raw")
            self._document = DocumentReader(OCTET_STREAM)
            self._failed = ""
        if self._failed or self._document is None:
            return
        try:
            self._document.feed(data)
        except DocumentError as e:
            self._failed = str(e)

    def _end(self) -> None:
        job, document = self._job, self._document
        self._job = self._document = None
        if job is None or document is None:
            return
        job.octets = document.bytes_received
        try:
            if self._failed:
                raise DocumentError(self._failed)
            pages = document.close()
        except DocumentError as e:
            job.detected_format = document.detected_format
            self._server.jobs.abort(job, str(e))
            return
        job.detected_format = document.detected_format
        self._server.jobs.submit(job, pages)
        self.jobs[job.id] = (job.name, 0)
        if self.job_status:
            self.send(f"@PJL USTATUS JOB\r\nSTART\r\nNAME=\"{job.name}\"\r\n\f".encode("latin-1"))

    def _abandon(self) -> None:
        """The connection broke inside a job: its data never all came."""
        if self._job is not None:
            self._server.jobs.abort(self._job, "the connection ended inside the job")
            self._job = self._document = None

    def _command(self, line: str) -> None:
        verb, settings, words = parse_command(line)
        server = self._server
        status = server.board.snapshot
        if verb == "JOB":
            self._job_name = settings.get("NAME", "")
        elif verb == "ECHO":
            self.send(f"{line}\r\n\f".encode("latin-1"))
        elif verb == "USTATUSOFF":
            self.device, self.job_status, self.page_status = "OFF", False, False
            self._set_timed(0)
        elif verb == "USTATUS":
            if "DEVICE" in settings:
                self.device = settings["DEVICE"].upper()
                self.last_code = server.device_status(status).code
            if "JOB" in settings:
                self.job_status = settings["JOB"].upper() == "ON"
            if "PAGE" in settings:
                self.page_status = settings["PAGE"].upper() == "ON"
            if "TIMED" in settings:
                self._set_timed(int(settings["TIMED"]) if settings["TIMED"].isdigit() else 0)
        elif verb == "INFO" and words:
            self._info(words[0], status)

    def _info(self, category: str, status: PrinterStatus) -> None:
        server = self._server
        if category == "STATUS":
            self.send(server.device_status(status).message("@PJL INFO STATUS"))
        elif category == "ID":
            self.send(f"@PJL INFO ID\r\n\"{server.description_id}\"\r\n\f".encode("latin-1"))
        elif category == "PAGECOUNT":
            self.send(f"@PJL INFO PAGECOUNT\r\nPAGECOUNT={status.pages_delivered}\r\n\f"
                      .encode("latin-1"))
        elif category == "USTATUS":
            self.send(("@PJL INFO USTATUS\r\nDEVICE=OFF [3 ENUMERATED]\r\n\tOFF\r\n\tON\r\n"
                       "\tVERBOSE\r\nJOB=OFF [2 ENUMERATED]\r\n\tOFF\r\n\tON\r\n"
                       "PAGE=OFF [2 ENUMERATED]\r\n\tOFF\r\n\tON\r\n"
                       "TIMED=0 [2 RANGE]\r\n\t5\r\n\t300\r\n\f").encode("latin-1"))

    def _set_timed(self, period_s: int) -> None:
        if self._timed is not None:
            self._timed.cancel()
            self._timed = None
        if period_s:
            low, high = _TIMED_RANGE_S
            self._timed = asyncio.get_running_loop().create_task(
                self._tick(max(low, min(high, period_s))))

    async def _tick(self, period_s: int) -> None:
        while True:
            await asyncio.sleep(period_s)
            status = self._server.board.snapshot
            self.send(self._server.device_status(status).message("@PJL USTATUS TIMED"))

    # -- the printer's side -------------------------------------------------------------

    def observe(self, status: PrinterStatus, device: DeviceStatus) -> None:
        if self.device != "OFF" and device.code != self.last_code:
            self.last_code = device.code
            self.send(device.message("@PJL USTATUS DEVICE"))
        for job_id, (name, told) in list(self.jobs.items()):
            progress = status.jobs.get(job_id)
            if progress is None:
                continue
            if self.page_status:
                for page in range(told + 1, progress.delivered + 1):
                    self.send(f"@PJL USTATUS PAGE\r\n{page}\r\n\f".encode("latin-1"))
            if progress.finished:
                if self.job_status:
                    self.send(f"@PJL USTATUS JOB\r\nEND\r\nNAME=\"{name}\"\r\n"
                              f"PAGES={progress.delivered}\r\n\f".encode("latin-1"))
                del self.jobs[job_id]
            else:
                self.jobs[job_id] = (name, progress.delivered)


class AppSocketServer:
    """The raw port; see the module docstring."""

    def __init__(self, board: StatusBoard, jobs: JobTable, description: PrinterDescription,
                 host: str, port: int) -> None:
        self.board = board
        self.jobs = jobs
        self._media = description.media.keyword
        self.description_id = f"printer-emu {description.name.upper()}"
        self._host, self._port = host, port
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self.address: tuple[str, int] = (host, port)

    def device_status(self, status: PrinterStatus) -> DeviceStatus:
        return device_status(status, self._media)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connected, self._host, self._port)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = (str(host), int(port))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for session in list(self._sessions):
                session.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None

    async def _connected(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            writer.close()

    def observe(self, status: PrinterStatus) -> None:
        """Each new snapshot, in order: push what the sessions asked to hear."""
        if not self._sessions:
            return
        device = self.device_status(status)
        for session in list(self._sessions):
            session.observe(status, device)
