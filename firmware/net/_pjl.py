"""PJL (HP Printer Job Language) as the raw port speaks it: the stream's framing, and the
printer's status in PJL's codes.

Framing (:class:`PjlParser`, sans-IO): a connection is PJL commands (``@PJL ...`` lines,
each ended by LF) and job data. The Universal Exit Language sequence (UEL,
``ESC%-12345X``) switches to PJL; ``@PJL ENTER LANGUAGE=...``, or any bytes that are
not a PJL line, start job data, which runs to the next UEL or the end of the
connection. A connection that does not start with UEL or ``@PJL`` is job data from its
first byte (plain AppSocket).

Status codes (HP PJL Technical Reference, appendix D): 10001 ready, 10003 warming up,
10006 toner low (printing goes on), 10023 printing, 40021 cover open, 40038 toner empty
(the engine waits), 41xyy load paper (x: the tray, yy: the media size code), 42xyy paper
jam (x: sheets to clear, yy: where), 50000 hardware error, 10002 offline (the engine's
link is down).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from firmware.net._printer_status import PrinterStatus

UEL = b"\x1b%-12345X"
MAX_LINE_BYTES = 4096
"""A PJL line longer than this is not PJL: it is taken as job data."""

_ENTER = re.compile(rb"^@PJL\s+ENTER\s+LANGUAGE\s*=", re.IGNORECASE)
_PJL = b"@PJL"

_MEDIA_SIZE_CODES = {"na_letter_8.5x11in": 2, "iso_a4_210x297mm": 4}
_JAM_LOCATION = {"feed": 0, "drum": 1, "exit": 2, "path": 3}


@dataclass(frozen=True, slots=True)
class PjlCommand:
    """One ``@PJL`` line, without its line end (as sent: case kept)."""

    line: str


@dataclass(frozen=True, slots=True)
class JobData:
    data: bytes


@dataclass(frozen=True, slots=True)
class JobEnd:
    """The job data has ended (a UEL, or the end of the connection)."""


Event = PjlCommand | JobData | JobEnd


class PjlParser:
    """Sans-IO framing of a raw-port connection; see the module docstring."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._mode = "start"
        self._in_job = False

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def close(self) -> list[Event]:
        """The connection has ended: what is left is data (or a last command)."""
        events: list[Event] = []
        if self._mode == "pjl" and self._buf.strip():
            line = bytes(self._buf).strip()
            if line.upper().startswith(_PJL):
                events.append(PjlCommand(line.decode("latin-1")))
                self._buf.clear()
            else:
                self._mode = "data"
        if self._mode in ("data", "start") and self._buf:
            events.append(JobData(bytes(self._buf)))
            self._in_job = True
        self._buf.clear()
        if self._in_job:
            events.append(JobEnd())
            self._in_job = False
        return events

    def _step(self, events: list[Event]) -> bool:
        buf = self._buf
        if not buf:
            return False
        if self._mode == "start":
            head = bytes(buf[:len(UEL)])
            if head == UEL or head[:4].upper() == _PJL:
                self._mode = "pjl"
            elif UEL.startswith(head) or _PJL.startswith(head.upper()):
                return False  # too few bytes yet to tell
            else:
                self._mode = "data"
            return True
        if self._mode == "pjl":
            return self._step_pjl(events)
        return self._step_data(events)

    def _step_pjl(self, events: list[Event]) -> bool:
        buf = self._buf
        skip = 0
        while skip < len(buf) and buf[skip] in b" \t\r\n\f":
            skip += 1
        del buf[:skip]
        if not buf:
            return False
        if buf.startswith(UEL):
            del buf[:len(UEL)]
            return True
        head = bytes(buf[:len(UEL)])
        if UEL.startswith(head) or _PJL.startswith(head.upper()):
            return False  # a UEL or "@PJL" still arriving
        if bytes(buf[:4]).upper() == _PJL:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_LINE_BYTES:
                    self._mode = "data"
                    return True
                return False
            line = bytes(buf[:end]).rstrip(b"\r")
            del buf[:end + 1]
            events.append(PjlCommand(line.decode("latin-1")))
            if _ENTER.match(line):
                self._mode = "data"
            return True
        self._mode = "data"  # bytes that are not PJL: the job's data starts here
        return True

    def _step_data(self, events: list[Event]) -> bool:
        buf = self._buf
        at = buf.find(UEL)
        if at >= 0:
            if at:
                events.append(JobData(bytes(buf[:at])))
                self._in_job = True
            del buf[:at + len(UEL)]
            if self._in_job:
                events.append(JobEnd())
                self._in_job = False
            self._mode = "pjl"
            return True
        keep = len(UEL) - 1  # a UEL may be arriving split across reads
        if len(buf) > keep:
            events.append(JobData(bytes(buf[:-keep])))
            self._in_job = True
            del buf[:-keep]
        return False


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    code: int
    display: str
    online: bool

    def message(self, header: str) -> bytes:
        """The status as PJL sends it: ``header``, CODE, DISPLAY, ONLINE, form feed."""
        return (f"{header}\r\nCODE={self.code}\r\nDISPLAY=\"{self.display}\"\r\n"
                f"ONLINE={'TRUE' if self.online else 'FALSE'}\r\n\f").encode("latin-1")


def device_status(status: PrinterStatus, media_keyword: str) -> DeviceStatus:
    """The printer's state as one PJL device status code (the most urgent first)."""
    if status.link_down:
        return DeviceStatus(10002, "Engine offline", False)
    if status.cover_open:
        return DeviceStatus(40021, "Cover open", False)
    if status.jam_at:
        location = _JAM_LOCATION.get(status.jam_at, 0)
        return DeviceStatus(42000 + 100 + location, "Paper jam", False)
    if status.fuser_error:
        return DeviceStatus(50000, "Fuser error", False)
    if status.paper_out:
        size = _MEDIA_SIZE_CODES.get(media_keyword, 0)
        return DeviceStatus(41000 + 100 + size, "Load tray 1", False)
    if status.toner == "empty" and status.toner_empty_stops:
        return DeviceStatus(40038, "Replace toner", False)
    if status.toner in ("low", "empty"):
        return DeviceStatus(10006, "Toner low", True)
    if status.engine == "printing":
        return DeviceStatus(10023, "Printing", True)
    if status.engine in ("warming", "purging"):
        return DeviceStatus(10003, "Warming up", True)
    return DeviceStatus(10001, "Ready", True)


def parse_command(line: str) -> tuple[str, dict[str, str], list[str]]:
    """``@PJL VERB WORD... KEY=VALUE...`` as (VERB, {KEY: value}, [WORD...]); keys and
    words upper-cased, values unquoted."""
    body = line[4:].strip()
    if not body:
        return "", {}, []
    verb, _, rest = body.partition(" ")
    settings: dict[str, str] = {}
    words: list[str] = []
    for match in re.finditer(r'(\w+)\s*=\s*("([^"]*)"|\S+)|(\S+)', rest):
        if match.group(1):
            settings[match.group(1).upper()] = (match.group(3) if match.group(3) is not None
                                                else match.group(2))
        else:
            words.append(match.group(4).upper())
    return verb.upper(), settings, words
