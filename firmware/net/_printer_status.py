"""What the printer publishes to its network task: an immutable status snapshot, kept on
the scheduler's thread, that any other thread may read.

The firmware's active objects are touched only on the scheduler's thread. The
:class:`StatusBoard` lives there too: it listens to the firmware's status events,
reads the toner sensor's last sample when a page or a toner warning says it moved, and
after each event that changes what a client can see publishes a new
:class:`PrinterStatus` by swapping one reference (:attr:`StatusBoard.snapshot`). A
reader on another thread takes that reference once and reads a consistent, frozen
picture from it; however often it reads, the scheduler's thread does no more work. The
board's :attr:`~StatusBoard.on_publish` callbacks (run on the scheduler's thread, so
they must only hand the snapshot over) are how the network loop hears of each change in
order.

Jobs the network task hands the printer (:meth:`StatusBoard.submit`, run on the
scheduler's thread through ``post_threadsafe``) are followed by their network job id:
:attr:`PrinterStatus.jobs` says what the engine did with each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from firmware import Printer, StatusEvent
from firmware.net._ipp_enums import PrinterState
from hal import AnalogChannel

ENGINE_STOPPED_STATES: Final = frozenset({"held", "jammed", "open", "failed", "offline"})
ENGINE_WORKING_STATES: Final = frozenset({"warming", "printing", "purging"})
MAX_FINISHED_JOBS = 200
"""Finished jobs the board keeps following (older ones are dropped, oldest first)."""

_WATCHED: Final = frozenset({
    "boot", "state", "job_queued", "job_started", "job_done", "page_delivered", "jam",
    "jam_cleared", "toner_low", "toner_empty", "toner_replaced", "paper_out", "paper_loaded",
    "cover_open", "cover_closed", "link_down", "link_up", "fuser_error", "power_save", "wake",
})
"""Status kinds that can change what a client sees."""


@dataclass(frozen=True, slots=True)
class JobProgress:
    """A network job as the firmware has it."""

    firmware_job: int
    pages: int
    state: str = "queued"
    """The firmware's job state: queued, printing, completed, cancelled or failed."""
    delivered: int = 0
    started_at: float | None = None
    """Wall-clock time (``time.time()``) the first page was picked; None before."""
    finished_at: float | None = None
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "cancelled", "failed")


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """One consistent picture of the printer. Immutable: read it from any thread."""

    seq: int
    """Rises by one with every snapshot published."""
    engine: str = "standby"
    toner: str = "ok"
    """The toner monitor's state: ok, low or empty."""
    toner_empty_stops: bool = True
    toner_pct: float = 100.0
    """The level sensor's last sample."""
    paper_out: bool = False
    cover_open: bool = False
    link_down: bool = False
    fuser_error: str = ""
    power_save: bool = False
    jam_at: str = ""
    pages_delivered: int = 0
    """Pages delivered since the network task started (the printer's page counter)."""
    busy_jobs: int = 0
    """Firmware jobs not yet finished, from whatever source."""
    jobs: Mapping[int, JobProgress] = field(default_factory=lambda: MappingProxyType({}))
    """Network jobs handed to the firmware, by network job id."""
    kind: str = ""
    """The status event that made this snapshot (``start`` for the first)."""
    changed_at: float = 0.0
    """Wall-clock time of this snapshot."""
    state_changed_at: float = 0.0
    """Wall-clock time :attr:`printer_state` or :attr:`reasons` last changed."""
    printer_state: PrinterState = PrinterState.IDLE
    reasons: tuple[str, ...] = ("none",)
    """``printer-state-reasons``."""
    message: str = "Ready"
    """``printer-state-message``: what the panel would say."""

    @property
    def stopped(self) -> bool:
        return self.printer_state is PrinterState.STOPPED


def _state_and_reasons(s: PrinterStatus) -> tuple[PrinterState, tuple[str, ...], str]:
    reasons: list[str] = []
    message = {"standby": "Ready", "warming": "Warming up", "printing": "Printing",
               "purging": "Clearing the paper path", "held": "Paused",
               "jammed": "Paper jam", "open": "Cover open", "failed": "Fuser error",
               "offline": "Engine offline"}.get(s.engine, s.engine)
    if s.cover_open:
        reasons += ["door-open-error", "cover-open-error"]
        message = "Cover open"
    if s.jam_at:
        reasons.append("media-jam-error")
        message = "Paper jam"
    if s.paper_out:
        reasons.append("media-empty-error")
        if s.engine == "held":
            reasons.append("media-needed-error")
            message = "Load paper"
    if s.toner == "empty":
        reasons.append("toner-empty-error" if s.toner_empty_stops else "toner-empty-warning")
        if s.toner_empty_stops and s.engine == "held" and not s.paper_out:
            message = "Replace toner"
    elif s.toner == "low":
        reasons.append("toner-low-report")
    if s.fuser_error:
        reasons.append("other-error")
        message = f"Fuser error: {s.fuser_error}"
    if s.link_down:
        reasons.append("offline-report")
        message = "Engine offline"
    if s.engine in ENGINE_STOPPED_STATES or s.cover_open:
        state = PrinterState.STOPPED
        if not any(r.endswith("-error") for r in reasons):
            reasons.append("other-error")
    elif s.engine in ENGINE_WORKING_STATES or s.busy_jobs:
        state = PrinterState.PROCESSING
    else:
        state = PrinterState.IDLE
        if s.power_save:
            message = "Power save"
    if s.toner == "low" and state is not PrinterState.STOPPED:
        message = f"{message}, toner low"
    return state, tuple(reasons) or ("none",), message


Publisher = Callable[[PrinterStatus], None]


class StatusBoard:
    """The status the network task reads, kept on the scheduler's thread; see the module
    docstring. Every method runs on the scheduler's thread."""

    def __init__(self, printer: Printer) -> None:
        self._printer = printer
        self._board = printer.board
        self.snapshot = PrinterStatus(
            seq=0, toner_empty_stops=printer.board.config.toner.empty_policy == "stop")
        """The latest snapshot: read it from any thread (one reference, swapped whole)."""
        self.on_publish: list[Publisher] = []
        """Told every new snapshot, in order, on the scheduler's thread."""
        self._fw_to_net: dict[int, int] = {}
        self._unfinished: set[int] = set()
        self._jobs: dict[int, JobProgress] = {}
        self._started = False

    def start(self) -> None:
        """Subscribe to the printer and publish the first snapshot (from the active
        objects' states now)."""
        if self._started:
            return
        self._started = True
        states = self._printer.states()
        self._unfinished = {j.id for j in self._printer.jobs.jobs.values() if not j.finished}
        s = self.snapshot
        s = replace(s, engine=states.get("engine", "standby"), toner=states.get("toner", "ok"),
                    paper_out=states.get("tray") == "empty",
                    cover_open=states.get("cover") == "open",
                    jam_at="engine" if states.get("engine") == "jammed" else "",
                    toner_pct=self._toner_pct(), busy_jobs=len(self._unfinished))
        self._publish(s, "start")
        self._printer.subscribe(self._on_status)

    def stop(self) -> None:
        """Unsubscribe (the scheduler's thread, or with the scheduler stopped)."""
        if self._started:
            self._started = False
            self._printer.unsubscribe(self._on_status)

    # -- the network task's requests ------------------------------------------------

    def submit(self, network_job: int, page_coverage_pct: Sequence[float], name: str) -> None:
        """Hand a measured document to the printer as a job followed as ``network_job``."""
        job = self._printer.submit_pages(page_coverage_pct, name)
        self._fw_to_net[job.id] = network_job
        self._jobs[network_job] = JobProgress(firmware_job=job.id, pages=job.pages)
        self._unfinished.add(job.id)
        self._publish(replace(self.snapshot, busy_jobs=len(self._unfinished)), "job_submitted")

    def cancel(self, network_job: int) -> None:
        """Cancel ``network_job`` if the printer has it and has not finished it."""
        progress = self._jobs.get(network_job)
        if progress is None or progress.finished or progress.cancel_requested:
            return
        self._jobs[network_job] = replace(progress, cancel_requested=True)
        self._printer.cancel(progress.firmware_job)
        self._publish(self.snapshot, "cancel_requested")

    # -- status events ------------------------------------------------------------

    def _toner_pct(self) -> float:
        return round(self._board.read_analog(AnalogChannel.TONER_PCT), 4)

    def _on_status(self, event: StatusEvent) -> None:
        kind = event.kind
        if kind not in _WATCHED:
            return
        s = self.snapshot
        detail = event.detail
        if kind == "state":
            source, state = event.source, detail["state"]
            if source == "engine":
                s = replace(s, engine=state, jam_at=s.jam_at if state == "jammed" else "")
            elif source == "toner":
                s = replace(s, toner=state, toner_pct=self._toner_pct())
            elif source == "tray":
                s = replace(s, paper_out=state == "empty")
            elif source == "cover":
                s = replace(s, cover_open=state == "open")
            else:
                return
        elif kind == "page_delivered":
            s = replace(s, pages_delivered=s.pages_delivered + 1, toner_pct=self._toner_pct())
            self._job_event(detail["job"], delivered=1)
        elif kind == "job_queued":
            self._unfinished.add(detail["job"])
            s = replace(s, busy_jobs=len(self._unfinished))
        elif kind == "job_started":
            self._job_event(detail["job"], state="printing")
        elif kind == "job_done":
            self._unfinished.discard(detail["job"])
            s = replace(s, busy_jobs=len(self._unfinished))
            self._job_event(detail["job"], state=str(detail["state"]))
        elif kind == "jam":
            s = replace(s, jam_at=str(detail.get("at", "path")))
        elif kind == "jam_cleared":
            s = replace(s, jam_at="")
        elif kind in ("toner_low", "toner_empty", "toner_replaced"):
            s = replace(s, toner_pct=self._toner_pct())
        elif kind in ("link_down", "link_up"):
            s = replace(s, link_down=kind == "link_down")
        elif kind == "fuser_error":
            s = replace(s, fuser_error=str(detail.get("reason", "fault")))
        elif kind in ("power_save", "wake"):
            s = replace(s, power_save=kind == "power_save")
        elif kind == "boot":
            # A new boot of the firmware: every condition is found again by its events.
            s = replace(s, engine="standby", toner="ok", paper_out=False, cover_open=False,
                        link_down=False, fuser_error="", power_save=False, jam_at="",
                        toner_pct=self._toner_pct())
        elif kind in ("paper_out", "paper_loaded", "cover_open", "cover_closed"):
            return  # the tray's and the cover's state changes say it
        self._publish(s, kind)

    def _job_event(self, firmware_job: int, *, state: str | None = None,
                   delivered: int = 0) -> None:
        network_job = self._fw_to_net.get(firmware_job)
        if network_job is None:
            return
        progress = self._jobs[network_job]
        now = time.time()
        if state == "printing":
            progress = replace(progress, state=state, started_at=now)
        elif state is not None:
            progress = replace(progress, state=state, finished_at=now,
                               started_at=progress.started_at or now)
            self._forget_old_jobs()
        if delivered:
            progress = replace(progress, delivered=progress.delivered + delivered)
        self._jobs[network_job] = progress

    def _forget_old_jobs(self) -> None:
        finished = [n for n, p in self._jobs.items() if p.finished]
        for network_job in finished[:max(0, len(finished) - MAX_FINISHED_JOBS)]:
            progress = self._jobs.pop(network_job)
            self._fw_to_net.pop(progress.firmware_job, None)

    def _publish(self, s: PrinterStatus, kind: str) -> None:
        now = time.time()
        state, reasons, message = _state_and_reasons(s)
        previous = self.snapshot
        changed_at = (now if (state, reasons) != (previous.printer_state, previous.reasons)
                      or not previous.state_changed_at else previous.state_changed_at)
        s = replace(s, seq=previous.seq + 1, kind=kind, changed_at=now,
                    state_changed_at=changed_at, printer_state=state, reasons=reasons,
                    message=message, jobs=MappingProxyType(dict(self._jobs)))
        self.snapshot = s
        for publish in self.on_publish:
            publish(s)
