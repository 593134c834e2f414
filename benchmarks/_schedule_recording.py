"""The firmware's own schedule, recorded: every timer a print job sets, and who sets it.

:func:`record_print_job` runs the firmware benchmark's job (lp-2000, 5% coverage, from
power-on to the ``job_done`` of the last page) on a :class:`RecordingScheduler` and
returns a :class:`ScheduleRecording`: for every timer, how it was scheduled (``call_at``,
``call_later`` or ``call_soon``), for when and at which priority; and for every callback
that ran, in order, what it scheduled and cancelled, in the order it did. Replaying that
(:mod:`benchmarks._schedule_replay`) puts the printer's real mix of instants,
priorities, same-instant batches and cancellations through a scheduler with none of
the printer's own work.

The recording is held in memory only, and made once per process and page count.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Final

from benchmarks._firmware import board_file, start_job
from firmware import StatusEvent
from hal import PRIORITY_NORMAL, Scheduler, Timer, VirtualClock, timer_cancelled

ROOT: Final = -1
"""The "timer" id of what was done outside any callback (building and booting)."""


class How(IntEnum):
    """Which of the scheduler's calls set a timer."""

    AT = 0
    LATER = 1
    SOON = 2


@dataclass(frozen=True, slots=True)
class ScheduleRecording:
    """A print job's scheduler calls; timers are numbered ``0..timers-1`` in the order
    they were scheduled.

    * ``how[j]``, ``t_ns[j]``, ``delay_ns[j]``, ``priority[j]``: how timer ``j`` was
      scheduled; ``t_ns`` is the instant asked for (``call_at``'s argument, which may be
      in the past) or computed, ``delay_ns`` the time from then to when it is due (>= 0).
    * ``root_ops`` and ``ops[j]``: what was done outside any callback, and by timer
      ``j``'s callback when it ran (empty if it never ran). Each op is a timer id:
      ``k >= 0`` scheduled timer ``k``, ``~k`` (negative) cancelled timer ``k``, which
      was still waiting. Cancelling a timer that had already run is a no-op and is
      left out.
    * ``fired``: the ids of the callbacks that ran, in order.
    * ``end_ns``: the instant the recording stopped (the ``job_done`` event). Timers
      still waiting then run in a replay after ``fired``, doing nothing.
    """

    pages: int
    how: tuple[How, ...]
    t_ns: tuple[int, ...]
    delay_ns: tuple[int, ...]
    priority: tuple[int, ...]
    root_ops: tuple[int, ...]
    ops: tuple[tuple[int, ...], ...]
    fired: tuple[int, ...]
    end_ns: int

    @property
    def timers(self) -> int:
        return len(self.how)

    @property
    def cancels(self) -> int:
        return sum(op < 0 for ops in (self.root_ops, *self.ops) for op in ops)


class _Traced:
    """A recorded timer's callback: tells the recorder which timer is running."""

    __slots__ = ("callback", "recorder", "timer_id")

    def __init__(self, recorder: RecordingScheduler, timer_id: int,
                 callback: Callable[[], object]) -> None:
        self.recorder = recorder
        self.timer_id = timer_id
        self.callback = callback

    def __call__(self) -> None:
        self.recorder._run_traced(self)


def _untraced(callback: Callable[[], object]) -> Callable[[], object]:
    return callback.callback if isinstance(callback, _Traced) else callback


class RecordingScheduler(Scheduler):
    """A :class:`hal.Scheduler` that records its timers; see :class:`ScheduleRecording`.

    Behaves as the scheduler it extends: each callback is handed over inside a
    :class:`_Traced` that notes which timer runs, and ``cancel_where`` predicates see
    the callbacks as given. Cancellations are found, not intercepted (``Scheduler.cancel``
    is also called on the class), by checking the waiting timers before each new timer,
    after each callback and when a run starts: that places every cancel between the same
    two schedules as it happened. Posted callbacks (``post_threadsafe``) are not
    recorded: a run that posts any is refused by :func:`record_print_job`.
    """

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.how: list[How] = []
        self.t_ns: list[int] = []
        self.delay_ns: list[int] = []
        self.priority: list[int] = []
        self.ops: list[list[int]] = []
        self.root_ops: list[int] = []
        self.fired: list[int] = []
        self.posts = 0
        self._running = ROOT
        self._waiting: dict[int, Timer] = {}
        self._inside = False
        """In a base method that may call another scheduling method (``call_at`` may
        go through ``call_later``): that inner call is the same timer."""

    # -- what is recorded ---------------------------------------------------------------

    def _ops_now(self) -> list[int]:
        return self.root_ops if self._running == ROOT else self.ops[self._running]

    def _note_cancels(self) -> None:
        gone = [j for j, timer in self._waiting.items() if timer_cancelled(timer)]
        if gone:
            ops = self._ops_now()
            for j in gone:
                del self._waiting[j]
                ops.append(~j)

    def _schedule(self, how: How, t_ns: int, priority: int,
                  schedule: Callable[[Callable[[], object]], Timer],
                  callback: Callable[[], object]) -> Timer:
        if self._inside:
            return schedule(callback)
        self._note_cancels()
        timer_id = len(self.how)
        now = self.now_ns
        self._inside = True
        try:
            timer = schedule(_Traced(self, timer_id, callback))
        finally:
            self._inside = False
        self.how.append(how)
        self.t_ns.append(t_ns)
        self.delay_ns.append(max(0, t_ns - now))
        self.priority.append(priority)
        self.ops.append([])
        self._ops_now().append(timer_id)
        self._waiting[timer_id] = timer
        return timer

    def _run_traced(self, traced: _Traced) -> None:
        timer_id = traced.timer_id
        self._waiting.pop(timer_id, None)
        self.fired.append(timer_id)
        self._running = timer_id
        try:
            traced.callback()
            self._note_cancels()
        finally:
            self._running = ROOT

    # -- the scheduler's calls ------------------------------------------------------------

    def call_at(self, t_ns: int, callback: Callable[[], object],
                priority: int = PRIORITY_NORMAL) -> Timer:
        return self._schedule(How.AT, t_ns, priority,
                              lambda cb: super(RecordingScheduler, self).call_at(
                                  t_ns, cb, priority), callback)

    def call_later(self, delay_ns: int, callback: Callable[[], object],
                   priority: int = PRIORITY_NORMAL) -> Timer:
        return self._schedule(How.LATER, self.now_ns + delay_ns, priority,
                              lambda cb: super(RecordingScheduler, self).call_later(
                                  delay_ns, cb, priority), callback)

    def call_soon(self, callback: Callable[[], object],
                  priority: int = PRIORITY_NORMAL) -> Timer:
        return self._schedule(How.SOON, self.now_ns, priority,
                              lambda cb: super(RecordingScheduler, self).call_soon(
                                  cb, priority), callback)

    def cancel_where(self, predicate: Callable[[Callable[[], object]], bool]) -> int:
        return super().cancel_where(lambda callback: predicate(_untraced(callback)))

    def run(self) -> None:
        self._note_cancels()  # done before running: the first callback did not do them
        super().run()

    def run_until(self, until: int | Callable[[], bool], timeout_ns: int | None = None) -> bool:
        self._note_cancels()
        return super().run_until(until, timeout_ns)

    def post_threadsafe(self, callback: Callable[[], object]) -> None:
        self.posts += 1
        super().post_threadsafe(callback)

    def recording(self, pages: int) -> ScheduleRecording:
        """What was recorded so far."""
        self._note_cancels()
        return ScheduleRecording(
            pages=pages, how=tuple(self.how), t_ns=tuple(self.t_ns),
            delay_ns=tuple(self.delay_ns), priority=tuple(self.priority),
            root_ops=tuple(self.root_ops), ops=tuple(tuple(ops) for ops in self.ops),
            fired=tuple(self.fired), end_ns=self.now_ns)


@functools.cache
def record_print_job(pages: int) -> ScheduleRecording:
    """The schedule of the firmware benchmark's job of ``pages`` pages (recorded once a
    process for each ``pages``). Raises :class:`RuntimeError` if the job did not
    complete, or if anything posted a callback (the replay would miss it)."""
    scheduler = RecordingScheduler(VirtualClock())
    with tempfile.TemporaryDirectory(prefix="printer-emu-bench-") as tmp:
        board, printer, job = start_job(board_file(Path(tmp), pages + 10), pages, scheduler)
    done: list[StatusEvent] = []

    def on_status(event: StatusEvent) -> None:
        if event.kind == "job_done":
            done.append(event)

    printer.subscribe(on_status)
    # A predicate, not stop(): stop posts a callback, which the recording refuses.
    scheduler.run_until(lambda: bool(done), timeout_ns=pages * 10 * 10**9)
    if job.delivered != pages or board.sheets_picked != pages or board.resets:
        raise RuntimeError(f"recording: {job.delivered}/{pages} pages delivered, "
                           f"{board.resets} resets")
    if scheduler.posts:
        raise RuntimeError(f"recording: {scheduler.posts} callbacks were posted, which "
                           "the replay does not model")
    return scheduler.recording(pages)
