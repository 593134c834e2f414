"""The print engine: pickup, paper path timing, imaging, delivery.

Per page: fuser ready → pickup pulse → feed-sensor leading edge within its window (else
a misfeed: the pickup is retried up to the board's ``pickup_retries``, then it is a jam)
→ imaging request (an :class:`~hal.IoHandle` whose completion is an upcall) → feed
trailing edge, exit leading and trailing edges, each within its window (else a jam) →
page delivered. Sheets are pipelined: the next sheet is picked one rated pitch
(60 s / ``rated_ppm``) after the last, once the last one has reached the feed sensor,
so the engine runs at the board's rated speed. The pitch is the board's: the next pulse
is given when it will be carried out no earlier than one pitch after the board picked
the last sheet (that instant is the last sheet's feed edge less its travel to the
sensor), so the sheet ahead has cleared the pickup roller however late the last pulse
reached the board (``when_commands_reach``).

The imaging request is made at the feed edge, when the sheet is known to be in the
path. On a board whose commands reach it after a delay (``"remote"`` in its
capabilities: a serial board), that could be after the sheet has passed the drum; there
the page is asked for right after the pickup pulse instead, as a real engine controller
takes the page's image ahead of the sheet. The board binds it to the sheet that pulse
picks (or, when the pickup slips, to the sheet a retried pulse picks).

Every expected edge has a deadline: expected instant (from the board's geometry and
speed) plus a margin (``edge_margin_pct`` of the travel, at least
``edge_margin_min_ms``). An edge with no sheet to explain it is a jam too.

The paper path is judged in the board's time, never the host's: an edge is expected
from the instant the board stamped the edge before it, or, after a pickup pulse or the
motor's start, from when the board carried the command out (``after_commands``); a
deadline has passed only when the board's clock is known to have passed it
(``at_board``). On a serial board, then, a slow link delays the judgement and a quiet
one suspends it; it never makes a sheet late. An edge whose stamp is after its deadline
is judged late first, as the board's order of things says, whichever news came first.

Holds (paper out, toner empty under the ``stop`` policy) stop new pickups; sheets in
the path run out, then the engine waits with the motor off. After a link loss the path
runs out the same way (``Hold.LINK``); there a sheet whose edge does not come while no
sensor is covered went out unseen (its news was lost with the link) or was never picked
(its pulse was): it is out of the path, its page delivered if its imaging was reported
done, else printed again; no misfeed and no jam (a sheet stuck in the path covers a
sensor: it is longer than the gap between them). A jam or an open cover
stops everything at once; the pages of every sheet that did not come out go back to
the spooler, in order, so every page is delivered exactly once.

A sheet that will come out blank (its imaging failed, or it came out unimaged) gives
its page back at once, with the pages of the sheets behind it not yet imaged (their
imaging is cancelled: they come out blank too) and the page not yet picked: the spooler
prints them again in the job's order, and no later page overtakes a spoiled one.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from firmware._jobs import JobStore, PageTask, SheetRecord
from firmware._kernel import ActiveObject, Kernel
from hal import (
    DigitalInput,
    ImagePage,
    IoHandle,
    IoState,
    Output,
    Timer,
    timer_cancelled,
    timer_when_ns,
)


class _Edge(enum.IntEnum):
    """Where a sheet is with respect to one sensor."""

    AHEAD = 0
    COVERING = 1
    PAST = 2


class Hold(enum.StrEnum):
    PAPER = "paper"
    TONER = "toner"
    LINK = "link"
    """The link to the board has just come back: the sheets in the path run out (each
    delivered or spoiled as its imaging went) before anything new is picked."""


@dataclass(slots=True)
class _Sheet:
    """A sheet in the path. A sheet is longer than the gap between the sensors, so it
    can cover both at once: each sensor is tracked, and timed, on its own."""

    task: PageTask
    number: int
    record: SheetRecord
    attempts: int = 1
    feed: _Edge = _Edge.AHEAD
    exit: _Edge = _Edge.AHEAD
    imaged: bool | None = None
    returned: bool = False
    """Its page went back to the spooler: the sheet comes out blank, as waste."""
    handle: IoHandle | None = None
    feed_deadline: Timer | None = field(default=None, repr=False)
    exit_deadline: Timer | None = field(default=None, repr=False)


_WORKING = ["printing"]
_EVERYWHERE = ["standby", "warming", "printing", "held", "jammed", "open", "offline",
               "purging", "failed"]


class Engine(ActiveObject):
    NAME = "engine"
    PRIORITY = 50
    STATES = _EVERYWHERE
    INITIAL = "standby"
    TRANSITIONS = [
        # Work arrives. (Listed alternatives are tried in order; the first whose
        # conditions hold is taken.)
        {"trigger": "page", "source": "standby", "dest": "warming",
         "conditions": "_holds_clear", "before": "_take_page"},
        {"trigger": "page", "source": "standby", "dest": "held", "before": "_take_page"},
        {"trigger": "page", "source": ["warming", "printing", "held", "jammed", "open",
                                       "offline"],
         "dest": None, "before": "_take_page"},  # the spooler's answer to an ask: never lost
        {"trigger": "page", "source": "failed", "dest": None, "before": "_refuse_page"},
        {"trigger": "idle_timeout", "source": "standby", "dest": None, "after": "_power_save"},
        {"trigger": "nothing_held", "source": "held", "dest": "standby"},
        # Fuser.
        {"trigger": "fuser_ready", "source": "warming", "dest": "printing",
         "before": "_note_fuser_ready"},
        {"trigger": "fuser_ready", "source": _EVERYWHERE, "dest": None,
         "before": "_note_fuser_ready"},
        {"trigger": "fuser_cold", "source": _EVERYWHERE, "dest": None,
         "before": "_note_fuser_cold"},
        {"trigger": "fuser_fault", "source": _EVERYWHERE, "dest": "failed"},
        # The paper path while printing.
        {"trigger": "pick_due", "source": "printing", "dest": None, "after": "_pick"},
        {"trigger": "feed_edge", "source": _WORKING, "dest": None, "after": "_on_feed_edge"},
        {"trigger": "exit_edge", "source": _WORKING, "dest": None, "after": "_on_exit_edge"},
        {"trigger": "imaged", "source": _WORKING, "dest": None, "after": "_on_imaged"},
        {"trigger": "late", "source": _WORKING, "dest": None, "after": "_on_late"},
        {"trigger": "run_out", "source": "printing", "dest": "standby",
         "conditions": "_nothing_to_do"},
        {"trigger": "run_out", "source": "printing", "dest": "held",
         "conditions": "_path_empty", "unless": "_holds_clear"},
        {"trigger": "drop_job", "source": _EVERYWHERE, "dest": None, "after": "_drop_job"},
        # Holds: paper out, toner empty under the stop policy.
        {"trigger": "hold", "source": "warming", "dest": "held", "before": "_add_hold"},
        {"trigger": "hold", "source": _EVERYWHERE, "dest": None, "after": "_add_hold"},
        {"trigger": "release", "source": "held", "dest": "warming",
         "before": "_remove_hold", "conditions": "_can_resume"},
        {"trigger": "release", "source": _EVERYWHERE, "dest": None, "before": "_remove_hold"},
        # Faults that stop the engine at once.
        {"trigger": "jam_detected", "source": _WORKING, "dest": "jammed"},
        {"trigger": "link_jam", "source": "standby", "dest": "jammed",
         "before": "_report_path_jam"},
        {"trigger": "cover_opened", "source": ["standby", "warming", "printing", "held",
                                               "jammed", "purging"], "dest": "open"},
        # Boot with sheets left in the path (a reset mid-job): run them out first.
        {"trigger": "purge_done", "source": "purging", "dest": "standby",
         "conditions": "_path_clear", "before": "_recover_after_purge"},
        {"trigger": "purge_done", "source": "purging", "dest": "jammed",
         "before": ["_recover_after_purge", "_report_path_jam"]},
        {"trigger": "cover_closed", "source": "open", "dest": "jammed",
         "unless": "_path_clear", "before": "_report_path_jam"},
        {"trigger": "cover_closed", "source": "open", "dest": "standby",
         "before": "_resume_after_cover"},
        # The link to a serial board: the path freezes where it is (the board's failsafe
        # stops the motor) and runs out when the link is back.
        {"trigger": "link_lost", "source": ["standby", "warming", "printing", "held",
                                            "jammed", "open"], "dest": "offline",
         "before": "_remember_state"},
        {"trigger": "link_restored", "source": "offline", "dest": "printing",
         "conditions": "_sheets_in_path", "before": "_hold_for_link"},
        {"trigger": "link_restored", "source": "offline", "dest": "standby",
         "before": "_resume_after_link"},
    ]

    def __init__(self, kernel: Kernel, spooler: ActiveObject, fuser: ActiveObject,
                 store: JobStore) -> None:
        super().__init__(kernel)
        self._spooler = spooler
        self._store = store
        """The job memory that survives a reset: the engine records its sheets there."""
        self._fuser = fuser
        cfg = kernel.board.config
        self._speed_mm_per_ns = cfg.engine.paper_speed_mm_s / 1e9
        self._pitch_ns = cfg.page_pitch_ns
        self._retries = cfg.engine.pickup_retries
        self._margin_pct = cfg.engine.edge_margin_pct
        self._margin_min_ns = round(cfg.engine.edge_margin_min_ms * 1e6)
        path = cfg.paper_path
        self._to_feed_ns = self._travel_ns(path.feed_sensor_mm)
        self._sheet_ns = self._travel_ns(cfg.engine.sheet_length_mm)
        self._feed_to_exit_ns = self._travel_ns(path.exit_sensor_mm - path.feed_sensor_mm)
        self._exit_to_output_ns = self._travel_ns(path.output_mm - path.exit_sensor_mm)
        self._power_save_ns = round(cfg.engine.power_save_after_s * 1e9)
        self._image_at_pickup = "remote" in kernel.board.capabilities
        """Ask for each page's imaging right after its pickup pulse, not at the feed edge
        (see the module docstring)."""
        self.sheets: deque[_Sheet] = deque()
        self.next_task: PageTask | None = None
        self.holds: set[Hold] = set()
        self.fuser_is_ready = False
        self.sheet_count = 0
        self.jams = 0
        self.misfeeds = 0
        self._last_pickup_board_ns: int | None = None
        """The board's instant of the last pickup, known once its sheet reached the feed
        sensor (until then no sheet is picked after it)."""
        self._pick_timer: Timer | None = None
        self._run_out_timer: Timer | None = None
        self._idle_timer: Timer | None = None
        self._asked_for_page = False
        self._powered_down = False
        self.jam_report: dict[str, Any] | None = None
        self._state_before_offline = "standby"

    def _travel_ns(self, distance_mm: float) -> int:
        return round(distance_mm / self._speed_mm_per_ns)

    def _deadline(self, sheet: _Sheet, expected_in_ns: int, edge: str,
                  from_ns: int | None) -> Timer:
        """The deadline of an edge expected ``expected_in_ns``, plus the margin, after
        the board's instant ``from_ns`` (an edge it stamped) or, when ``None``, after the
        board carried out what it was just commanded (a pickup pulse, the motor's
        start). Due by the board's clock."""
        due_in_ns = expected_in_ns + max(
            self._margin_min_ns, round(expected_in_ns * self._margin_pct / 100.0))
        if from_ns is None:
            return self.after_commands(due_in_ns, "late", sheet=sheet.number, edge=edge)
        return self.at_board(from_ns + due_in_ns, "late", sheet=sheet.number, edge=edge)

    def _feed_deadline(self, sheet: _Sheet, expected_in_ns: int, edge: str,
                       from_ns: int | None = None) -> None:
        self.kernel.cancel(sheet.feed_deadline)
        sheet.feed_deadline = self._deadline(sheet, expected_in_ns, edge, from_ns)

    def _exit_deadline(self, sheet: _Sheet, expected_in_ns: int, edge: str,
                       from_ns: int | None = None) -> None:
        self.kernel.cancel(sheet.exit_deadline)
        sheet.exit_deadline = self._deadline(sheet, expected_in_ns, edge, from_ns)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Called once at boot: ask the spooler for work."""
        self._ask_for_page()
        self.on_enter_standby()

    def start_with_purge(self) -> None:
        """Called once at boot instead of :meth:`start` when sheets may be left in the
        path: run the motor for a whole path's travel, imaging nothing. The exit ISR
        counts what comes out; then the spooler settles which pages those were."""
        self.machine.set_state("purging")
        self._published_state = "purging"
        self.publish("state", state="purging")
        self.board.set_output(Output.LASER, False)
        self.board.set_output(Output.MOTOR, True)
        whole_path_ns = self._travel_ns(self.board.config.paper_path.output_mm) + self._sheet_ns
        margin = max(self._margin_min_ns, round(whole_path_ns * self._margin_pct / 100.0))
        # From the motor's start on the board: the sensors are read when it has run.
        self.after_commands(whole_path_ns + margin, "purge_done")

    def _recover_after_purge(self, **_: Any) -> None:
        self.board.set_output(Output.MOTOR, False)
        self._spooler.post("recover")

    def _ask_for_page(self) -> None:
        if self.next_task is None and not self._asked_for_page:
            self._asked_for_page = True
            self._spooler.post("need_page")

    # -- conditions ----------------------------------------------------------------

    def _holds_clear(self, **_: Any) -> bool:
        return not self.holds

    def _can_resume(self, reason: str, **_: Any) -> bool:
        # Conditions run before the hold is removed: ask about the holds left after it.
        return not (self.holds - {Hold(reason)}) and self.next_task is not None

    def _path_empty(self, **_: Any) -> bool:
        return not self.sheets

    def _nothing_to_do(self, **_: Any) -> bool:
        return not self.sheets and self.next_task is None

    def _path_clear(self, **_: Any) -> bool:
        return not self._path_covered()

    def _path_covered(self) -> bool:
        board = self.board
        return (board.read_input(DigitalInput.FEED_SENSOR)
                or board.read_input(DigitalInput.EXIT_SENSOR))

    # -- state entry ---------------------------------------------------------------

    def on_enter_standby(self, **_: Any) -> None:
        self.holds.discard(Hold.LINK)
        self.board.set_output(Output.MOTOR, False)
        self.board.set_output(Output.LASER, False)
        self.kernel.cancel(self._idle_timer)
        self._idle_timer = self.after(self._power_save_ns, "idle_timeout")
        self._ask_for_page()

    def on_exit_standby(self, **_: Any) -> None:
        self.kernel.cancel(self._idle_timer)
        self._idle_timer = None

    def on_enter_warming(self, **_: Any) -> None:
        if self._powered_down:
            self._powered_down = False
            self.publish("wake")
        self._fuser.post("warm_up")
        if self.fuser_is_ready and not self.holds:
            self.post("fuser_ready")

    def on_enter_printing(self, **_: Any) -> None:
        self.board.set_output(Output.MOTOR, True)
        self.board.set_output(Output.LASER, True)
        self._schedule_pick()

    def on_exit_printing(self, **_: Any) -> None:
        self.kernel.cancel(self._pick_timer)
        self._pick_timer = None
        self.kernel.cancel(self._run_out_timer)
        self._run_out_timer = None

    def on_enter_jammed(self, **_: Any) -> None:
        self._stop_path()
        self.jams += 1
        self.publish("jam", **(self.jam_report or {}))

    def on_enter_open(self, **_: Any) -> None:
        # The interlock ISR has already cut motor, laser and heater; opening the cover
        # is how the user takes every sheet out of the path.
        self._stop_path()

    def on_enter_offline(self, **_: Any) -> None:
        # Keep the sheets and their imaging requests: the board still holds both, and
        # when the link is back each sheet comes out delivered or spoiled as it went.
        self._freeze_path()

    def _remember_state(self, **_: Any) -> None:
        self._state_before_offline = self.state

    def _sheets_in_path(self, **_: Any) -> bool:
        return bool(self.sheets) and self._state_before_offline == "printing"

    def _hold_for_link(self, **_: Any) -> None:
        """Run the path out: no pickup until every sheet in it has come out or is late
        by a whole path's travel from the motor's start (then it is a jam)."""
        self.holds.add(Hold.LINK)
        whole_path_ns = self._to_feed_ns + self._feed_to_exit_ns + self._sheet_ns
        for sheet in self.sheets:
            if sheet.exit is _Edge.COVERING:
                self._exit_deadline(sheet, whole_path_ns, "exit_trail")
            elif sheet.feed is _Edge.AHEAD:
                self._feed_deadline(sheet, whole_path_ns, "feed_lead")
            else:
                self._exit_deadline(sheet, whole_path_ns, "exit_lead")

    def _resume_after_link(self, **_: Any) -> None:
        if self._state_before_offline in ("jammed", "open"):
            # The operator's part is still to come: a jam stays a jam.
            self.post("link_jam")
        self._give_pages_back()
        self._ask_for_page()

    def on_enter_failed(self, **_: Any) -> None:
        self._stop_path()
        self._give_pages_back()
        self._spooler.post("fail_all", reason="fuser error")
        self._ask_for_page()  # jobs that come later fail too (see _refuse_page)

    def _refuse_page(self, task: PageTask, **_: Any) -> None:
        """Nothing can be printed until the board resets: the job fails at once."""
        self._asked_for_page = False
        self._spooler.post("pages_back", tasks=[task])
        self._spooler.post("fail_all", reason="fuser error")
        self._ask_for_page()

    def _freeze_path(self) -> None:
        """Motor and laser off, no pickup, no deadline: the sheets stay where they are."""
        self.board.set_output(Output.MOTOR, False)
        self.board.set_output(Output.LASER, False)
        self.kernel.cancel(self._pick_timer)
        self._pick_timer = None
        self.kernel.cancel(self._run_out_timer)
        self._run_out_timer = None
        for sheet in self.sheets:
            self.kernel.cancel(sheet.feed_deadline)
            self.kernel.cancel(sheet.exit_deadline)
            sheet.feed_deadline = sheet.exit_deadline = None

    def _stop_path(self) -> None:
        """Freeze the path and drop its imaging requests: its sheets will not be imaged
        (a jam, an open cover, a fuser error)."""
        self._freeze_path()
        for sheet in self.sheets:
            if sheet.handle is not None:
                sheet.handle.cancel()

    def _give_pages_back(self) -> None:
        tasks = [s.task for s in self.sheets if not s.returned]
        if self.next_task is not None:
            tasks.append(self.next_task)
            self.next_task = None
        self.sheets.clear()
        self._store.sheets.clear()
        self._last_pickup_board_ns = None
        if tasks:
            self._spooler.post("pages_back", tasks=tasks)

    def _report_path_jam(self, **_: Any) -> None:
        if self.jam_report is None:
            self.jam_report = {"at": "path"}

    def _resume_after_cover(self, **_: Any) -> None:
        requeued = len(self.sheets) + (1 if self.next_task is not None else 0)
        if self.jam_report is not None:
            self.publish("jam_cleared", pages_requeued=requeued)
            self.jam_report = None
        self._give_pages_back()
        self._ask_for_page()

    # -- work ----------------------------------------------------------------------

    def _take_page(self, task: PageTask, **_: Any) -> None:
        self._asked_for_page = False
        if self.next_task is not None:  # never expected: the spooler answers one ask
            self._spooler.post("pages_back", tasks=[task])
            return
        self.next_task = task
        if self.state == "printing":
            self._schedule_pick()

    def _drop_job(self, job: int, **_: Any) -> None:
        if self.next_task is not None and self.next_task.job == job:
            # The spooler counts it in flight until it comes back.
            self._spooler.post("pages_back", tasks=[self.next_task])
            self.next_task = None
            self.kernel.cancel(self._pick_timer)  # its pickup is not coming either
            self._pick_timer = None
            self._ask_for_page()
            if self.state == "printing":
                self._maybe_run_out()
            elif self.state == "held":
                self.nothing_held()  # type: ignore[attr-defined]

    def _power_save(self, **_: Any) -> None:
        self._powered_down = True
        self._fuser.post("power_save")
        self.publish("power_save")

    def _note_fuser_ready(self, **_: Any) -> None:
        self.fuser_is_ready = True
        if self.state == "printing":  # warm again after going cold: pick again
            self._schedule_pick()

    def _note_fuser_cold(self, **_: Any) -> None:
        self.fuser_is_ready = False
        self.kernel.cancel(self._pick_timer)  # no sheet into a cold fuser
        self._pick_timer = None

    def _add_hold(self, reason: str, **_: Any) -> None:
        self.holds.add(Hold(reason))
        if self.state == "printing":
            self.kernel.cancel(self._pick_timer)
            self._pick_timer = None
            self._maybe_run_out()

    def _remove_hold(self, reason: str, **_: Any) -> None:
        self.holds.discard(Hold(reason))
        if self.state == "printing" and not self.holds:
            self._schedule_pick()

    def on_enter_held(self, **_: Any) -> None:
        self.board.set_output(Output.MOTOR, False)
        self.board.set_output(Output.LASER, False)
        if Hold.LINK in self.holds:
            self.post("release", reason=Hold.LINK.value)  # the path has run out

    # -- the paper path --------------------------------------------------------------

    def _schedule_pick(self) -> None:
        """Pick the next sheet once the last is at the feed sensor, with its pulse carried
        out one pitch after the board picked the last, if there is a page and nothing
        holds the engine."""
        if self.next_task is None or self.holds or self._pick_timer is not None:
            return
        if not self.fuser_is_ready:
            return
        if self.sheets and self.sheets[-1].feed is _Edge.AHEAD:
            return
        self.kernel.cancel(self._run_out_timer)
        self._run_out_timer = None
        if self._last_pickup_board_ns is None:
            self._pick_timer = self.after(0, "pick_due")
        else:
            self._pick_timer = self.when_commands_reach(
                self._last_pickup_board_ns + self._pitch_ns, "pick_due")

    def _pick(self, **_: Any) -> None:
        self._pick_timer = None
        task = self.next_task
        if task is None or self.holds or not self.fuser_is_ready:
            self._maybe_run_out()
            return
        if not self.board.read_input(DigitalInput.PAPER_PRESENT):
            # The tray's own report is on its way; do not pick from an empty tray.
            self.holds.add(Hold.PAPER)
            self._maybe_run_out()
            return
        self.next_task = None
        self.sheet_count += 1
        record = SheetRecord(task)
        sheet = _Sheet(task, self.sheet_count, record)
        self.sheets.append(sheet)
        self._store.sheets.append(record)
        self.board.pulse_pickup()
        if self._image_at_pickup:
            # Binds on the board to the sheet this pulse picks (or a retried pulse does).
            self._request_imaging(sheet)
        self.publish("page_feeding", job=task.job, page=task.page, sheet=sheet.number)
        self._feed_deadline(sheet, self._to_feed_ns, "feed_lead")

    def _on_feed_edge(self, level: bool, t_ns: int, **_: Any) -> None:
        want = _Edge.AHEAD if level else _Edge.COVERING
        sheet = next((s for s in self.sheets if s.feed is want), None)
        if sheet is None:
            self._jam("feed", None)  # a sheet nobody picked, or one that moved backwards
            return
        if self._passed(sheet.feed_deadline, t_ns) and self._late(
                sheet, "feed_lead" if level else "feed_trail"):
            return
        if level:
            sheet.feed = _Edge.COVERING
            self._last_pickup_board_ns = t_ns - self._to_feed_ns
            self._feed_deadline(sheet, self._sheet_ns, "feed_trail", t_ns)
            self._exit_deadline(sheet, self._feed_to_exit_ns, "exit_lead", t_ns)
            # A sheet whose page went back passes blank; one asked for at pickup has it.
            if sheet.handle is None and not sheet.returned:
                self._request_imaging(sheet)
            self._ask_for_page()
            self._schedule_pick()
        else:
            sheet.feed = _Edge.PAST
            self.kernel.cancel(sheet.feed_deadline)
            sheet.feed_deadline = None

    def _request_imaging(self, sheet: _Sheet) -> None:
        task = sheet.task
        handle = self.board.submit(ImagePage(task.job, task.page, task.coverage_pct))
        sheet.handle = handle
        sheet.record.imaging_requested = True
        sheet.record.handle = handle
        number = sheet.number
        handle.on_done(lambda h: self.post("imaged", sheet=number, ok=h.state is IoState.DONE))

    def _on_exit_edge(self, level: bool, t_ns: int, **_: Any) -> None:
        if not level and self._store.exits_captured:
            self._store.exits_captured -= 1  # the ISR's count: this exit is now seen
        if level:
            sheet = next((s for s in self.sheets
                          if s.exit is _Edge.AHEAD and s.feed is not _Edge.AHEAD), None)
        else:
            sheet = next((s for s in self.sheets if s.exit is _Edge.COVERING), None)
        if sheet is None:
            self._jam("exit", None)
            return
        if self._passed(sheet.exit_deadline, t_ns) and self._late(
                sheet, "exit_lead" if level else "exit_trail"):
            return
        if level:
            sheet.exit = _Edge.COVERING
            self._exit_deadline(sheet, self._sheet_ns, "exit_trail", t_ns)
            return
        self._sheet_out(sheet, t_ns)

    def _sheet_out(self, sheet: _Sheet, board_t_ns: int | None = None) -> None:
        """``sheet`` has left the path (at the board's ``board_t_ns``, when its edge told
        us): its page is delivered, or printed again."""
        self.kernel.cancel(sheet.exit_deadline)
        self.kernel.cancel(sheet.feed_deadline)
        self.sheets.remove(sheet)
        self._store.sheets.remove(sheet.record)
        task = sheet.task
        if sheet.imaged and not sheet.returned:
            self._store.record_delivered(task)
            self.publish_stamped(board_t_ns, "page_delivered", job=task.job, page=task.page,
                                 sheet=sheet.number)
            self._spooler.post("page_done", job=task.job, page=task.page)
        else:
            # A blank or half-imaged sheet came out: the page is printed again (given back
            # now, if it was not when its imaging failed).
            self._give_back_from(sheet)
            self.publish("page_spoiled", job=task.job, page=task.page, sheet=sheet.number)
        self._maybe_run_out()

    def _on_imaged(self, sheet: int, ok: bool, **_: Any) -> None:
        for s in self.sheets:
            if s.number == sheet:
                s.imaged = ok
                if not ok:
                    self._give_back_from(s)
                return

    def _give_back_from(self, spoiled: _Sheet) -> None:
        """``spoiled`` comes out blank: its page goes back to the spooler now, with the
        page of every sheet behind it not yet imaged and the next task, in the job's
        order. Those sheets' imaging is cancelled (they come out blank too: a page of
        theirs must not come out before ``spoiled``'s is printed again), and so is
        ``spoiled``'s own, or the board would image the next sheet with it."""
        if spoiled.returned:
            return
        tasks = []
        behind = (s for s in self.sheets if s.number > spoiled.number)  # picked after it
        for sheet in (spoiled, *behind):
            if sheet.returned or (sheet.imaged and sheet is not spoiled):
                continue
            sheet.returned = True
            sheet.record.handle = None  # after a reset too, this sheet is not the page's
            if sheet.handle is not None:
                sheet.handle.cancel()
            tasks.append(sheet.task)
        if self.next_task is not None:
            tasks.append(self.next_task)
            self.next_task = None
            self.kernel.cancel(self._pick_timer)
            self._pick_timer = None
        self._spooler.post("pages_back", tasks=tasks)
        self._ask_for_page()

    @staticmethod
    def _passed(deadline: Timer | None, t_ns: int) -> bool:
        """Whether an edge stamped ``t_ns`` came after ``deadline`` by the board's clock
        (on a serial board its news can beat the deadline's)."""
        return (deadline is not None and not timer_cancelled(deadline)
                and timer_when_ns(deadline) < t_ns)

    def _on_late(self, sheet: int, edge: str, **_: Any) -> None:
        late = next((s for s in self.sheets if s.number == sheet), None)
        if late is not None:
            self._late(late, edge)

    def _awaits(self, sheet: _Sheet, edge: str) -> bool:
        """Whether ``sheet`` still waits for ``edge`` under a live deadline: a deadline's
        event can come after its edge's (an edge and the board's clock passing the
        deadline heard together), and then it is moot."""
        if edge.startswith("feed"):
            at, deadline = sheet.feed, sheet.feed_deadline
        else:
            at, deadline = sheet.exit, sheet.exit_deadline
        return deadline is not None and at is (
            _Edge.AHEAD if edge.endswith("lead") else _Edge.COVERING)

    def _late(self, late: _Sheet, edge: str) -> bool:
        """``late``'s ``edge`` missed its deadline: a misfeed retried, or a jam. Returns
        whether the path stopped (a jam)."""
        if not self._awaits(late, edge):
            return False
        if Hold.LINK in self.holds and not self._path_covered():
            # The run-out after a link loss, and no sheet stuck at a sensor: the news of
            # this sheet was lost with the link (it went out unseen), or its pickup pulse
            # was (it was never picked). A sheet is longer than the gap between the
            # sensors, so one stuck in the path covers one of them.
            self._sheet_out(late)
            return False
        if edge == "feed_lead":
            self.misfeeds += 1
            self.publish("misfeed", job=late.task.job, page=late.task.page,
                         attempt=late.attempts)
            if late.attempts <= self._retries and not self.holds:
                # An imaging request made at pickup stays with the board, for the sheet
                # this pulse picks.
                late.attempts += 1
                self.board.pulse_pickup()
                self._feed_deadline(late, self._to_feed_ns, "feed_lead")
                return False
            self._jam("feed", late)
            return True
        # The sheet stuck where its leading edge last got to: past the exit sensor or
        # not. (A sheet is longer than the gap between the sensors, so a sheet stuck at
        # the exit still covers the feed sensor and its feed trailing edge is late first.)
        self._jam("feed" if late.exit is _Edge.AHEAD else "exit", late)
        return True

    def _jam(self, at: str, sheet: _Sheet | None) -> None:
        if sheet is None and self.sheets:
            sheet = self.sheets[0]
        report: dict[str, Any] = {"at": at}
        if sheet is not None:
            report.update(job=sheet.task.job, page=sheet.task.page, sheet=sheet.number)
        self.jam_report = report
        self.jam_detected()  # type: ignore[attr-defined]

    def _maybe_run_out(self) -> None:
        """Once the path is empty and no pickup is coming, let the last sheet drop into
        the output tray, then stop the motor."""
        if self.sheets or self._pick_timer is not None or self._run_out_timer is not None:
            return
        if self.next_task is not None and not self.holds:
            return
        margin = max(self._margin_min_ns,
                     round(self._exit_to_output_ns * self._margin_pct / 100.0))
        self._run_out_timer = self.after(self._exit_to_output_ns + margin, "run_out")
