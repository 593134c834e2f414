"""One run of the firmware on a board: jobs in, scenario actions applied, a record out.

:class:`PrintRun` is what ``printer-emu run`` and the HIL harness share. It boots a
:class:`firmware.Printer` on any :class:`hal.Board`, queues jobs, applies scenario
actions at their moments through the board's :class:`hal.FaultInjector`, and records
every status event. :meth:`PrintRun.result` is the ``--json`` contract (README).
Observers follow a run through hooks: ``listeners`` (status events) and
:meth:`PrintRun.on_action` (scenario actions).

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

from emulator.run._scenario import Action, JobSpec, Moment, ScenarioError, TimedAction
from firmware import Job, JobState, Printer, StatusEvent
from hal import Board, Button, JamPoint

_NOT_RECORDED = frozenset({"state", "page_feeding", "page_delivered"})
_WAITING_STATES = frozenset({"held", "jammed", "open", "offline"})
_DEFAULT_MAX_RUN_NS = 48 * 3600 * 1_000_000_000
_MAX_RUN_NS_PER_PAGE = 10 * 1_000_000_000
"""Beyond the two days, each page of the run's jobs allows this much more simulated time
(ten seconds: several times the slowest board's page pitch, jams and refills included)."""
_REPORTED_ACTIONS = {"press": "button", "heater": "state"}
"""Injected actions the firmware has no status event of its own for: the record gets an
``injected_<kind>`` event (``misfeed``, ``jam``, ``cover``, ``tray`` and ``toner`` have
the firmware's own ``misfeed``, ``jam``, ``cover_open``, ``paper_loaded``,
``toner_replaced`` ... when they take effect)."""

ActionListener = Callable[[Action], None]
"""``listener(action)``: a scenario action is about to be carried out."""


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    """Every job finished, none failed (a cancelled job counts as finished)."""
    FAILED = "failed"
    """A job failed (a fuser error, say)."""
    STALLED = "stalled"
    """The printer waits on its operator and nothing scheduled will help."""
    TIMEOUT = "timeout"
    """The run reached ``max_run_ns`` of simulated time first."""
    INTERRUPTED = "interrupted"
    """Ctrl-C stopped the run; the record is what happened until then."""


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
        self.start_board_ns = board.device_now_ns
        """The board's clock at the start (the newest instant of it known): pages are
        logged by the board's clock, from here."""
        self.events: list[dict[str, Any]] = []
        self.page_log: list[dict[str, Any]] = []
        self.status_listeners: list[Callable[[StatusEvent], None]] = list(listeners)
        self._action_listeners: list[ActionListener] = []
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

    def add_actions(self, actions: Iterable[TimedAction], source: str = "scenario") -> None:
        """Apply ``actions`` at their moments. A moment the run's jobs can never reach
        (page 50 of a 3-page run, job 5 of one) or a tray filled past the board's
        capacity is a `ScenarioError` naming ``source``, raised before anything is
        scheduled: jobs added later (other than the actions' own ``submit``) are not
        counted, so add the jobs first."""
        actions = list(actions)
        self._check_actions(actions, source)
        for timed in actions:
            moment = timed.moment
            if moment.t_ns is not None:
                self._time_actions_left += 1
                self.scheduler.call_at(self.start_ns + moment.t_ns,
                                       self._timed(timed.action))
            else:
                assert moment.page is not None
                self._page_watches.append(_PageWatch(moment.page, moment.job, timed.action))

    def _check_actions(self, actions: list[TimedAction], source: str) -> None:
        capacity = self.board.config.tray.capacity_sheets
        submits = [t.action.value for t in actions if t.action.kind == "submit"]
        job_pages = {job.id: job.pages for job in self.jobs}
        next_id = max(job_pages, default=0) + 1
        for offset, spec in enumerate(submits):
            job_pages[next_id + offset] = spec.pages
        run_pages = sum(job_pages.values())
        for number, timed in enumerate(actions, 1):
            where = f"{source}: [[at]] #{number}"
            action, moment = timed.action, timed.moment
            if action.kind == "tray" and action.value > capacity:
                raise ScenarioError(
                    f"{where} tray: {action.value} sheets is over the tray's capacity on "
                    f"{self.board_name} ({capacity} sheets)")
            if moment.page is None:
                continue
            if moment.job is None:
                if moment.page > run_pages:
                    raise ScenarioError(f"{where} page: {moment.page} never comes: the run "
                                        f"has {run_pages} pages")
            elif moment.job not in job_pages:
                known = ", ".join(map(str, job_pages)) or "none"
                raise ScenarioError(f"{where} job: job {moment.job} never comes (jobs: {known})")
            elif moment.page > job_pages[moment.job]:
                raise ScenarioError(f"{where} page: {moment.page} never comes: job "
                                    f"{moment.job} has {job_pages[moment.job]} pages")

    def _timed(self, action: Action) -> Callable[[], None]:
        def fire() -> None:
            self._time_actions_left -= 1
            self.apply(action)
            self._check_done()

        return fire

    def on_action(self, listener: ActionListener) -> None:
        """Call ``listener(action)`` for every action :meth:`apply` carries out from now
        on (timed, page-bound or applied directly), just before it is carried out."""
        self._action_listeners.append(listener)

    def remove_action_listener(self, listener: ActionListener) -> None:
        """Undo one :meth:`on_action`. ValueError if ``listener`` was never added."""
        self._action_listeners.remove(listener)

    def apply(self, action: Action) -> None:
        """Carry out one scenario action now (its listeners are told first)."""
        for listener in self._action_listeners:
            listener(action)
        kind, value = action.kind, action.value
        if kind in _REPORTED_ACTIONS:
            self.events.append({"t_s": self._t_s(self.scheduler.now_ns),
                                "kind": f"injected_{kind}", _REPORTED_ACTIONS[kind]: value})
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
            # By the board's clock where it stamped the delivery: a link's latency or a
            # loaded host never moves a page (a page settled without its edge: ours).
            t_s = (self._t_s(event.t_ns) if event.board_t_ns is None
                   else round((event.board_t_ns - self.start_board_ns) / 1e9, 9))
            self.page_log.append({"job": d["job"], "page": d["page"], "t_s": t_s})
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

    def default_max_run_ns(self) -> int:
        """The simulated time a run may take before it ends ``timeout``: two days, or
        ten seconds a page of its jobs when that is more (a million-page job is not cut
        off at two days)."""
        return max(_DEFAULT_MAX_RUN_NS, self.pages_total * _MAX_RUN_NS_PER_PAGE)

    def run(self, *, on_progress: Callable[[PrintRun], None] | None = None,
            progress_every_s: float = 0.1, max_run_ns: int | None = None,
            slice_ns: int | None = None) -> Outcome:
        """Run to the end (see the module docstring) and return how it ended;
        ``max_run_ns`` defaults to :meth:`default_max_run_ns`. On Ctrl-C the run ends
        ``interrupted`` (its record, wall time included, is what happened until then)
        and the KeyboardInterrupt goes on to the caller."""
        scheduler = self.scheduler
        step_ns = slice_ns or max(self.board.config.page_pitch_ns * 5, 100_000_000)
        if not scheduler.is_virtual:
            step_ns = min(step_ns, round(progress_every_s * 1e9))
        limit_ns = self.default_max_run_ns() if max_run_ns is None else max_run_ns
        wall_start = time.perf_counter()
        self._running, self._done, self.end_ns, self.outcome = True, False, None, None
        try:
            self._run_slices(on_progress, progress_every_s, limit_ns, step_ns)
        except KeyboardInterrupt:
            self.outcome = Outcome.INTERRUPTED
            raise
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
            self._run_slice(now + step_ns, on_progress, progress_every_s)
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

    def _run_slice(self, until_ns: int, on_progress: Callable[[PrintRun], None] | None,
                   progress_every_s: float) -> None:
        # A clock tied to wall time spends a slice (five page pitches) in seconds of
        # wall time: the display is told within it, while the run's own checks (stall,
        # timeout) stay at the slice's end, so a run is the same with a display or without.
        ratio = getattr(self.scheduler.clock, "realtime_ratio", None)
        sub_ns = 0 if ratio is None else max(round(progress_every_s * ratio * 1e9), 1)
        if on_progress is None or not 0 < sub_ns < until_ns - self.scheduler.now_ns:
            # no display, a clock not tied to the wall, or a slice within one refresh
            self.scheduler.run_until(until_ns)
            return
        while not self._done and self.scheduler.now_ns < until_ns:
            self.scheduler.run_until(min(self.scheduler.now_ns + sub_ns, until_ns))
            on_progress(self)

    # -- the record --------------------------------------------------------------------

    @property
    def sim_time_s(self) -> float:
        end = self.end_ns if self.end_ns is not None else self.scheduler.now_ns
        return self._t_s(end)

    def moments_not_reached(self) -> list[str]:
        """The page moments whose page never started to feed (a job cancelled or failed
        before it), described as the scenario says them: the run is honest about actions
        it never carried out."""
        return [f"{Moment(page=w.page, job=w.job).describe()}: {w.action.kind}"
                for w in self._page_watches]

    def result(self) -> dict[str, Any]:
        """The ``--json`` contract. Only ``wall_time_s`` and ``speedup`` depend on the
        machine; everything else is the same for the same board, jobs, scenario, seed.
        ``moments_not_reached`` is there only when some are."""
        obs = self.observation
        toner = obs.toner_pct()
        sim_s = self.sim_time_s
        record = {
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
        missed = self.moments_not_reached()
        if missed:
            record["moments_not_reached"] = missed
        return record
