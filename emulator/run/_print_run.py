"""One run of the firmware on a board: jobs in, scenario actions applied, a record out.

:class:`PrintRun` is what ``printer-emu run`` and the HIL harness share. It boots a
:class:`firmware.Printer` on any :class:`hal.Board`, queues jobs, applies scenario
actions at their moments through the board's :class:`hal.FaultInjector`, and records
every status event. :meth:`PrintRun.result` is the ``--json`` contract (README).

A run ends when every job has finished and the engine is at rest, with no timed action
still to come; or when the printer has been waiting on its operator (paper out, a jam
not cleared, the cover left open) with nothing scheduled that could help, for a grace
period (``stalled``); or at ``max_run_ns``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from emulator.run._scenario import Action, JobSpec, TimedAction
from firmware import Job, JobState, Printer, StatusEvent
from hal import Board, Button, JamPoint

_NOT_RECORDED = frozenset({"state", "page_feeding", "page_delivered"})
_WAITING_STATES = frozenset({"held", "jammed", "open", "offline"})
_DEFAULT_MAX_RUN_NS = 48 * 3600 * 1_000_000_000


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    """Every job finished, none failed (a cancelled job counts as finished)."""
    FAILED = "failed"
    """A job failed (a fuser error, say)."""
    STALLED = "stalled"
    """The printer waits on its operator and nothing scheduled will help."""
    TIMEOUT = "timeout"


class BoardObservation:
    """What a run can learn of a board beyond the firmware's view (for the summary and
    the JSON record). Boards that cannot tell return ``None``."""

    def __init__(self, board: Board) -> None:
        self._board = board

    def toner_pct(self) -> float | None:
        value = getattr(self._board, "toner_level_pct", None)
        return None if value is None else float(value)

    def tray_sheets(self) -> int | None:
        value = getattr(self._board, "tray_sheets", None)
        return None if value is None else int(value)

    def sheets_used(self) -> int | None:
        value = getattr(self._board, "sheets_picked", None)
        return None if value is None else int(value)


@dataclass
class _PageWatch:
    page: int
    job: int | None
    action: Action


class PrintRun:
    """See the module docstring. Make one per run; ``run()`` once."""

    def __init__(self, board: Board, *, seed: int, board_name: str | None = None,
                 observation: BoardObservation | None = None,
                 listeners: Iterable[Callable[[StatusEvent], None]] = ()) -> None:
        """``listeners`` see every status event from the first boot on."""
        self.board = board
        self.scheduler = board.scheduler
        self.seed = seed
        self.board_name = board_name or board.config.name
        self.observation = observation or BoardObservation(board)
        self.start_ns = self.scheduler.now_ns
        self.events: list[dict[str, Any]] = []
        self.page_log: list[dict[str, Any]] = []
        self.status_listeners: list[Callable[[StatusEvent], None]] = list(listeners)
        self.jams = 0
        self.warnings = 0
        self._page_watches: list[_PageWatch] = []
        self._pages_fed_in_run = 0
        self._pages_fed_by_job: dict[int, int] = {}
        self._fed: set[tuple[int, int]] = set()
        self._time_actions_left = 0
        self._running = False
        self._done = False
        self.outcome: Outcome | None = None
        self.wall_time_s = 0.0
        self.end_ns: int | None = None
        # Last, and subscribed before the first boot: the run sees the boot's own reports.
        self.printer = Printer(board, listeners=[self._on_status])

    # -- setting up ------------------------------------------------------------------

    def add_job(self, spec: JobSpec) -> Job:
        if spec.file is not None:
            return self.printer.submit_file(spec.file)
        return self.printer.submit(spec.pages, spec.coverage_pct)

    def add_actions(self, actions: Iterable[TimedAction]) -> None:
        for timed in actions:
            moment = timed.moment
            if moment.t_ns is not None:
                self._time_actions_left += 1
                self.scheduler.call_at(self.start_ns + moment.t_ns,
                                       self._timed(timed.action))
            else:
                assert moment.page is not None
                self._page_watches.append(_PageWatch(moment.page, moment.job, timed.action))

    def _timed(self, action: Action) -> Callable[[], None]:
        def fire() -> None:
            self._time_actions_left -= 1
            self.apply(action)
            self._check_done()

        return fire

    def apply(self, action: Action) -> None:
        """Carry out one scenario action now."""
        kind, value = action.kind, action.value
        if kind == "submit":
            spec: JobSpec = value
            self.add_job(spec)
            return
        faults = self.board.faults
        if faults is None:
            raise RuntimeError(f"board {self.board_name} cannot inject faults ({kind})")
        if kind == "toner_pct":
            faults.set_toner_pct(float(value))
        elif kind == "replace_toner":
            faults.replace_toner()
        elif kind == "tray":
            faults.set_tray(int(value))
        elif kind == "jam":
            faults.jam(JamPoint(value))
        elif kind == "misfeed":
            faults.misfeed()
        elif kind == "cover":
            faults.set_cover(value == "open")
        elif kind == "press":
            faults.press(Button(value))
        elif kind == "heater":
            faults.set_heater_failed(value == "failed")
        else:  # the scenario loader admits no other kind
            raise ValueError(f"unknown action {kind!r}")

    # -- what happens --------------------------------------------------------------------

    def _t_s(self, t_ns: int) -> float:
        return round((t_ns - self.start_ns) / 1e9, 9)

    def _on_status(self, event: StatusEvent) -> None:
        kind = event.kind
        if kind == "page_delivered":
            d = event.detail
            self.page_log.append({"job": d["job"], "page": d["page"],
                                  "t_s": self._t_s(event.t_ns)})
        elif kind == "page_feeding":
            self._on_page_feeding(event)
        elif kind not in _NOT_RECORDED:
            self.events.append({"t_s": self._t_s(event.t_ns), "kind": kind, **event.detail})
            if kind == "jam":
                self.jams += 1
            elif kind in ("toner_low", "toner_empty", "paper_out", "misfeed", "fuser_error",
                          "watchdog_reset", "self_test_failed"):
                self.warnings += 1
        for listener in self.status_listeners:
            listener(event)
        if kind in ("job_done", "state"):
            self._check_done()

    def _on_page_feeding(self, event: StatusEvent) -> None:
        job, page = event.detail["job"], event.detail["page"]
        if (job, page) in self._fed:
            return  # a page printed again after a jam has already started to feed once
        self._fed.add((job, page))
        self._pages_fed_in_run += 1
        self._pages_fed_by_job[job] = self._pages_fed_by_job.get(job, 0) + 1
        due = [w for w in self._page_watches
               if (w.job is None and w.page == self._pages_fed_in_run)
               or (w.job == job and w.page == self._pages_fed_by_job[job])]
        for watch in due:
            self._page_watches.remove(watch)
            # Applied just after the firmware's own step at this instant, never inside it.
            action = watch.action
            self.scheduler.call_soon(lambda a=action: self.apply(a))  # type: ignore[misc]

    @property
    def jobs(self) -> list[Job]:
        return list(self.printer.jobs.jobs.values())

    @property
    def pages_total(self) -> int:
        return sum(job.pages for job in self.jobs)

    @property
    def pages_delivered(self) -> int:
        return len(self.page_log)

    def _finished(self) -> bool:
        if self._time_actions_left:
            return False
        return self.printer.idle

    def _check_done(self) -> None:
        # Only a run() in progress ends itself; between runs (the HIL harness drives the
        # scheduler directly) nothing is stopped behind the caller's back.
        if self._running and not self._done and self._finished():
            self._done = True
            self.end_ns = self.scheduler.now_ns
            self.scheduler.stop()

    def _stall_grace_ns(self) -> int:
        return max(20 * self.board.config.page_pitch_ns, 2_000_000_000)

    # -- running -----------------------------------------------------------------------

    def run(self, *, on_progress: Callable[[PrintRun], None] | None = None,
            progress_every_s: float = 0.1, max_run_ns: int = _DEFAULT_MAX_RUN_NS,
            slice_ns: int | None = None) -> Outcome:
        """Run to the end (see the module docstring) and return how it ended."""
        scheduler = self.scheduler
        step_ns = slice_ns or max(self.board.config.page_pitch_ns * 5, 100_000_000)
        if not scheduler.is_virtual:
            step_ns = min(step_ns, round(progress_every_s * 1e9))
        wall_start = time.perf_counter()
        self._running, self._done, self.end_ns, self.outcome = True, False, None, None
        try:
            self._run_slices(on_progress, progress_every_s, max_run_ns, step_ns)
        finally:
            self._running = False
        self.wall_time_s = time.perf_counter() - wall_start
        if self.end_ns is None:
            self.end_ns = scheduler.now_ns
        if self.outcome is None:
            failed = any(job.state is JobState.FAILED for job in self.jobs)
            self.outcome = Outcome.FAILED if failed else Outcome.COMPLETED
        return self.outcome

    def _run_slices(self, on_progress: Callable[[PrintRun], None] | None,
                    progress_every_s: float, max_run_ns: int, step_ns: int) -> None:
        scheduler = self.scheduler
        last_progress = time.perf_counter()
        waiting_since: int | None = None
        self._check_done()
        while not self._done:
            now = scheduler.now_ns
            if now - self.start_ns >= max_run_ns:
                self.outcome = Outcome.TIMEOUT
                break
            scheduler.run_until(now + step_ns)
            if self._done:
                break
            engine_state = self.printer.firmware.engine.state
            if engine_state in _WAITING_STATES and not self._time_actions_left:
                if waiting_since is None:
                    waiting_since = scheduler.now_ns
                elif scheduler.now_ns - waiting_since >= self._stall_grace_ns():
                    self.outcome = Outcome.STALLED
                    break
            else:
                waiting_since = None
            if on_progress is not None:
                wall_now = time.perf_counter()
                if wall_now - last_progress >= progress_every_s:
                    last_progress = wall_now
                    on_progress(self)

    # -- the record --------------------------------------------------------------------

    @property
    def sim_time_s(self) -> float:
        end = self.end_ns if self.end_ns is not None else self.scheduler.now_ns
        return self._t_s(end)

    def result(self) -> dict[str, Any]:
        """The ``--json`` contract. Only ``wall_time_s`` and ``speedup`` depend on the
        machine; everything else is the same for the same board, jobs, scenario, seed."""
        obs = self.observation
        toner = obs.toner_pct()
        sim_s = self.sim_time_s
        return {
            "board": self.board_name,
            "seed": self.seed,
            "outcome": (self.outcome or Outcome.COMPLETED).value,
            "sim_time_s": sim_s,
            "wall_time_s": round(self.wall_time_s, 6),
            "speedup": round(sim_s / self.wall_time_s, 1) if self.wall_time_s > 0 else None,
            "pages_delivered": self.pages_delivered,
            "sheets_used": obs.sheets_used(),
            "jams": self.jams,
            "warnings": self.warnings,
            "jobs": [
                {"id": j.id, "name": j.name, "pages": j.pages, "delivered": j.delivered,
                 "state": j.state.value}
                for j in self.jobs
            ],
            "page_log": self.page_log,
            "events": self.events,
            "states": self.printer.states(),
            "toner_pct": None if toner is None else round(toner, 4),
            "tray_sheets": obs.tray_sheets(),
        }
