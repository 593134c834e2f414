"""The paper path: sheets moving from the pickup roller past the sensors, the drum and the
fuser into the output tray, in exact integer-nanosecond time.

Contract
--------
* Positions are distances from the pickup roller along the path (the board file's
  ``[paper_path]``). A sheet enters with its leading edge at 0 mm (:meth:`insert_sheet`,
  refused while the previous sheet's trailing edge has not cleared the roller) and moves
  at ``paper_speed_mm_s`` while the main motor runs. When the motor stops every sheet
  stops where it is; when it starts again they go on.
* A sheet's progress is kept as *travel*: the nanoseconds of motor time it has moved.
  The leading edge reaches ``x`` mm at travel :func:`travel_ns` ``(x, speed)``
  (``round(x / speed * 1e9)``); the trailing edge passes ``x`` at
  ``travel_ns(x + sheet_length_mm, speed)``. Every edge instant is therefore exact: the
  motor time since the sheet entered, plus every stop in between.
* Each sheet has one scheduler timer at a time: its next landmark (an edge at a sensor,
  the drum or the fuser nip; the trailing edge at ``output_mm``). Motor stop cancels
  the timers, motor start schedules them again. About eight events a sheet, no ticks.
* Sensors (``feed_sensor``, ``exit_sensor``) read ``True`` while a sheet covers them:
  the leading edge reaching a sensor makes it ``True``, the trailing edge passing makes
  it ``False``; each change of level raises the sensor's line with the new level.
* A sheet whose trailing edge passes ``output_mm`` leaves the path into the output tray
  (``delivered``).
* Jam (:meth:`jam`): the sheet approaching the point (its leading edge has not yet
  reached the sensor), or else the next one inserted, sticks with its leading edge at
  the sensor: it stops there for good and the sensor stays covered. A sheet behind a
  stopped sheet stops where its leading edge touches the stopped sheet's trailing edge,
  and so on down the line: sheets never pass through each other.
* :meth:`pull_all` (the user, with the cover open) takes every sheet out of the path:
  sensors go ``False`` with their edges raised, and the sheets are counted in
  ``removed``.
* The path calls its owner back at the instants that matter to others — a sheet
  inserted, its leading edge at the drum, its trailing edge off the drum, its leading
  edge into the fuser nip, delivered, pulled out — through the ``on_*`` attributes.
  Callbacks may re-enter the path (stop the motor, pull the sheets): the path re-reads
  its state after every one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from functools import partial
from typing import Any

from boards import EngineConfig, PaperPathConfig
from hal import InterruptController, JamPoint, Scheduler, Timer


def travel_ns(distance_mm: float, speed_mm_s: float) -> int:
    """Motor time, in integer nanoseconds, a sheet takes to move ``distance_mm``."""
    return round(distance_mm / speed_mm_s * 1e9)


class Landmark(enum.IntEnum):
    """What happens when a sheet's edge reaches a place; at equal travel, lower first."""

    FEED_LEAD = 0
    DRUM_LEAD = 1
    FUSER_LEAD = 2
    EXIT_LEAD = 3
    FEED_TRAIL = 4
    DRUM_TRAIL = 5
    EXIT_TRAIL = 6
    OUTPUT = 7


_STICK_AT: dict[JamPoint, Landmark] = {
    JamPoint.FEED: Landmark.FEED_LEAD,
    JamPoint.EXIT: Landmark.EXIT_LEAD,
}


class Sheet:
    """One sheet in the path. ``handle`` and ``image`` belong to the path's owner (the
    board binds imaging requests to sheets); the rest is the path's."""

    __slots__ = (
        "drum_lead_passed",
        "drum_trail_passed",
        "halted",
        "handle",
        "image",
        "imaging",
        "in_path",
        "limit_ns",
        "next_mark",
        "number",
        "spoiled",
        "stick_at",
        "timer",
        "travel_ns",
    )

    def __init__(self, number: int) -> None:
        self.number = number
        """1 for the first sheet picked since power-on, and so on."""
        self.travel_ns = 0
        """Motor time moved: as of the last motor start while it moves, else now."""
        self.next_mark = 0
        self.limit_ns: int | None = None
        """Travel at which it touches the stopped sheet ahead."""
        self.halted = False
        """Stuck (a jam) or blocked behind a stuck sheet: moves no more until pulled."""
        self.stick_at: Landmark | None = None
        self.timer: Timer | None = None
        self.in_path = True
        self.drum_lead_passed = False
        self.drum_trail_passed = False
        # The owner's imaging state, carried with the sheet.
        self.handle: Any = None
        """The imaging request bound to this sheet (a ``hal.IoHandle``), if any."""
        self.image: Any = None
        """What was imaged on it (a ``hal.ImagePage``), once imaging completed."""
        self.imaging = False
        self.spoiled = False
        """An imaging attempt on it failed, or its request was cancelled: not to be reused."""

    def __repr__(self) -> str:
        return f"<Sheet {self.number} travel={self.travel_ns}ns>"


SheetCallback = Callable[[Sheet], None]


def _ignore(sheet: Sheet) -> None:
    return None


class PaperPath:
    """See the module docstring."""

    def __init__(
        self,
        engine: EngineConfig,
        path: PaperPathConfig,
        scheduler: Scheduler,
        irq: InterruptController,
    ) -> None:
        self._scheduler = scheduler
        self._irq = irq
        speed = engine.paper_speed_mm_s
        self.speed_mm_s = speed
        length = engine.sheet_length_mm
        self._length_ns = travel_ns(length, speed)
        places = {
            Landmark.FEED_LEAD: path.feed_sensor_mm,
            Landmark.DRUM_LEAD: path.drum_mm,
            Landmark.FUSER_LEAD: path.fuser_mm,
            Landmark.EXIT_LEAD: path.exit_sensor_mm,
            Landmark.FEED_TRAIL: path.feed_sensor_mm + length,
            Landmark.DRUM_TRAIL: path.drum_mm + length,
            Landmark.EXIT_TRAIL: path.exit_sensor_mm + length,
            Landmark.OUTPUT: path.output_mm + length,
        }
        self._marks: list[tuple[int, Landmark]] = sorted(
            (travel_ns(mm, speed), mark) for mark, mm in places.items()
        )
        self.mark_travel_ns: dict[Landmark, int] = {m: t for t, m in self._marks}
        """Travel at which each landmark is reached (for observers and tests)."""
        self._mark_index: dict[Landmark, int] = {m: i for i, (_, m) in enumerate(self._marks)}
        reach: dict[Landmark, SheetCallback] = {
            Landmark.FEED_LEAD: self._feed_lead,
            Landmark.DRUM_LEAD: self._drum_lead,
            Landmark.FUSER_LEAD: self._fuser_lead,
            Landmark.EXIT_LEAD: self._exit_lead,
            Landmark.FEED_TRAIL: self._feed_trail,
            Landmark.DRUM_TRAIL: self._drum_trail,
            Landmark.EXIT_TRAIL: self._exit_trail,
            Landmark.OUTPUT: self._output,
        }
        self._reach: list[SheetCallback] = [reach[m] for m in Landmark]
        """What reaching each landmark does, indexed by the landmark."""

        self.motor_on = False
        self._since_ns = 0
        """When the motor last started: moving sheets' travel is as of then."""
        self.sheets: list[Sheet] = []
        """Sheets in the path, the furthest along first."""
        self._pending_jams: list[Landmark] = []
        self.feed_covered = False
        self.exit_covered = False
        self._feed_count = 0
        self._exit_count = 0
        self.inserted = 0
        self.delivered = 0
        self.removed = 0

        self.on_inserted: SheetCallback = _ignore
        self.on_drum_lead: SheetCallback = _ignore
        self.on_drum_trail: SheetCallback = _ignore
        self.on_fuser_lead: SheetCallback = _ignore
        self.on_delivered: SheetCallback = _ignore
        self.on_pulled: Callable[[list[Sheet]], None] = lambda sheets: None
        self.observer: Callable[[str, object], None] | None = None
        """Told ``(signal, value)`` on every change: ``feed_sensor``, ``exit_sensor``
        (bool); ``picked``, ``delivered``, ``removed`` (counts); ``jammed`` (the
        sheet's number when one sticks)."""

    # -- observation ---------------------------------------------------------------

    def travel_of(self, sheet: Sheet) -> int:
        """``sheet``'s travel now (ns of motor time since it entered)."""
        if self.motor_on and not sheet.halted:
            return sheet.travel_ns + self._scheduler.now_ns - self._since_ns
        return sheet.travel_ns

    def lead_mm(self, sheet: Sheet) -> float:
        """Where ``sheet``'s leading edge is now."""
        return self.travel_of(sheet) * self.speed_mm_s / 1e9

    def throat_clear(self) -> bool:
        """Whether a sheet may enter: the last one's trailing edge has left the roller."""
        sheets = self.sheets
        return not sheets or self.travel_of(sheets[-1]) >= self._length_ns

    # -- motor ---------------------------------------------------------------------

    def set_motor(self, on: bool) -> None:
        if on == self.motor_on:
            return
        now = self._scheduler.now_ns
        if on:
            self.motor_on = True
            self._since_ns = now
            for sheet in list(self.sheets):
                if sheet.in_path and sheet.timer is None and not sheet.halted:
                    self._advance(sheet)
            return
        elapsed = now - self._since_ns
        self.motor_on = False
        for sheet in self.sheets:
            self._disarm(sheet)
            if not sheet.halted:
                sheet.travel_ns += elapsed

    # -- sheets in and out ---------------------------------------------------------

    def insert_sheet(self) -> Sheet | None:
        """A sheet enters at 0 mm; ``None`` (nothing enters) if the throat is blocked."""
        if not self.throat_clear():
            return None
        self.inserted += 1
        sheet = Sheet(self.inserted)
        if self._pending_jams:
            sheet.stick_at = self._pending_jams.pop(0)
        if self.motor_on:
            # Travel is kept as of the motor start; this sheet had none then.
            sheet.travel_ns = self._since_ns - self._scheduler.now_ns
        ahead = self.sheets[-1] if self.sheets else None
        self.sheets.append(sheet)
        if ahead is not None and ahead.halted:
            sheet.limit_ns = ahead.travel_ns - self._length_ns
        if self.observer is not None:
            self.observer("picked", self.inserted)
        self.on_inserted(sheet)
        if sheet.in_path and self.motor_on and sheet.timer is None:
            self._advance(sheet)
        return sheet

    def clear_faults(self) -> None:
        """Forget jams armed for sheets not yet picked (a power cycle)."""
        self._pending_jams.clear()

    def jam(self, point: JamPoint) -> None:
        """The sheet approaching ``point`` (or the next one inserted) sticks there."""
        mark = _STICK_AT[point]
        index = self._mark_index[mark]
        for sheet in self.sheets:
            if sheet.stick_at is None and not sheet.halted and sheet.next_mark <= index:
                sheet.stick_at = mark
                return
        self._pending_jams.append(mark)

    def pull_all(self) -> list[Sheet]:
        """The user takes every sheet out of the path; returns them."""
        sheets, self.sheets = self.sheets, []
        if not sheets:
            return sheets
        for sheet in sheets:
            sheet.in_path = False
            self._disarm(sheet)
        self.removed += len(sheets)
        if self.observer is not None:
            self.observer("removed", self.removed)
        self._feed_count = self._exit_count = 0
        if self.feed_covered:
            self._set_feed(False)
        if self.exit_covered:
            self._set_exit(False)
        self.on_pulled(sheets)
        return sheets

    # -- motion --------------------------------------------------------------------

    def _advance(self, sheet: Sheet) -> None:
        """Apply every landmark ``sheet`` has reached, then schedule its next one.

        Runs as the sheet's timer callback and whenever its motion changes. Owner
        callbacks may re-enter (stop or restart the motor, pull the sheets), so the
        state is read afresh after each landmark.
        """
        scheduler = self._scheduler
        self._disarm(sheet)
        marks = self._marks
        n_marks = len(marks)
        reach = self._reach
        while sheet.in_path:
            moving = self.motor_on and not sheet.halted
            travel = sheet.travel_ns
            if moving:
                travel += scheduler.now_ns - self._since_ns
            i = sheet.next_mark
            limit = sheet.limit_ns
            if i < n_marks:
                mark_ns, mark = marks[i]
                if mark_ns <= travel and (limit is None or mark_ns <= limit):
                    sheet.next_mark = i + 1
                    reach[mark](sheet)
                    if mark is sheet.stick_at and sheet.in_path and not sheet.halted:
                        if self.observer is not None:
                            self.observer("jammed", sheet.number)
                        self._halt(sheet)
                    if sheet.timer is not None:
                        return  # a motor restart inside the callback rescheduled it
                    continue
                target = mark_ns
            else:
                target = None
            if not moving:
                return
            if limit is not None:
                if travel >= limit:
                    self._halt(sheet)
                    return
                if target is None or limit < target:
                    target = limit
            if target is not None:
                # call_at(since + target - travel_ns), as a delay from now: target is
                # ahead of the travel now, so the delay is positive.
                sheet.timer = scheduler.call_later(target - travel, partial(self._advance, sheet))
            return

    # What each landmark does, in ``Landmark`` order (see ``_reach``). A jam is checked
    # after it, in ``_advance``.

    def _feed_lead(self, sheet: Sheet) -> None:
        self._feed_count += 1
        if not self.feed_covered:
            self._set_feed(True)

    def _feed_trail(self, sheet: Sheet) -> None:
        self._feed_count -= 1
        if self._feed_count == 0:
            self._set_feed(False)

    def _exit_lead(self, sheet: Sheet) -> None:
        self._exit_count += 1
        if not self.exit_covered:
            self._set_exit(True)

    def _exit_trail(self, sheet: Sheet) -> None:
        self._exit_count -= 1
        if self._exit_count == 0:
            self._set_exit(False)

    def _drum_lead(self, sheet: Sheet) -> None:
        sheet.drum_lead_passed = True
        self.on_drum_lead(sheet)

    def _drum_trail(self, sheet: Sheet) -> None:
        sheet.drum_trail_passed = True
        self.on_drum_trail(sheet)

    def _fuser_lead(self, sheet: Sheet) -> None:
        self.on_fuser_lead(sheet)

    def _output(self, sheet: Sheet) -> None:
        self.sheets.remove(sheet)
        sheet.in_path = False
        self.delivered += 1
        if self.observer is not None:
            self.observer("delivered", self.delivered)
        self.on_delivered(sheet)

    def _halt(self, sheet: Sheet) -> None:
        """``sheet`` stops for good; the sheet behind it stops where they touch."""
        sheet.travel_ns = self.travel_of(sheet)
        sheet.halted = True
        self._disarm(sheet)
        sheets = self.sheets
        i = sheets.index(sheet) + 1
        if i < len(sheets):
            follower = sheets[i]
            limit = sheet.travel_ns - self._length_ns
            if follower.limit_ns is None or limit < follower.limit_ns:
                follower.limit_ns = limit
                if self.motor_on and not follower.halted:
                    self._advance(follower)

    def _disarm(self, sheet: Sheet) -> None:
        """Cancel ``sheet``'s timer (its next landmark), if it has one."""
        if sheet.timer is not None:
            self._scheduler.cancel(sheet.timer)
            sheet.timer = None

    def _set_feed(self, covered: bool) -> None:
        self.feed_covered = covered
        if self.observer is not None:
            self.observer("feed_sensor", covered)
        self._irq.raise_line("feed_sensor", covered)

    def _set_exit(self, covered: bool) -> None:
        self.exit_covered = covered
        if self.observer is not None:
            self.observer("exit_sensor", covered)
        self._irq.raise_line("exit_sensor", covered)
