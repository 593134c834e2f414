"""The one scheduler that drives a process: integer nanoseconds, a heap, and a clock.

Contract
--------
* Time is an ``int`` count of nanoseconds since the scheduler was made. No floats.
* Callbacks run in ``(t_ns, priority, seq)`` order: lower ``priority`` first at the
  same instant (interrupt dispatch uses :data:`PRIORITY_IRQ`, ordinary events
  :data:`PRIORITY_NORMAL`; priorities are 0..63), and entries of the same time and
  priority in the order they were scheduled (``seq``). That order is the whole of the
  determinism guarantee: something scheduled for the current instant at a *lower*
  priority value than the one running runs next, before the rest of the instant.
* :meth:`Scheduler.call_at` and :meth:`Scheduler.call_later` return a :class:`Timer`;
  :meth:`Scheduler.cancel` is O(1) (lazy deletion: the entry stays queued with its
  callback cleared and is skipped when it comes up). A cancelled timer neither runs nor
  moves the clock: time goes only to instants where something runs.
* Another thread enters only through :meth:`Scheduler.post_threadsafe`. Posted
  callbacks are drained in bounded passes (the callbacks present when a pass starts;
  anything they post waits for the next pass) so a chatty thread cannot starve timers.
* On a wall clock a callback that runs late normally reads the wall's time. A scheduler
  made with ``keep_instants=True`` (a device's: ``printer-emu serve``) keeps the
  instants instead: a timer's callback reads the instant it was due (or the last
  instant, if later), so what it schedules is exact however late the process ran it,
  and posted work reads the earlier of the wall's time and the first timer still due,
  so time never reads past work not yet done. Outside ``run*`` it reads the wall.
* The clock (:mod:`hal._clock`) says how time relates to the wall and does the waiting:
  :class:`VirtualClock` (jump to the next event, optionally tied to wall time by a
  ratio) or :class:`WallClock` (sleep until the next event or until another thread
  posts one). The scheduler owns everything else: the heap, the entry queue, and the
  instant of virtual time.

How: each entry is a list ``[key, seq, callback]`` with ``key = t_ns << 6 | priority``,
so that one integer compare orders time and priority.

Callbacks run on the thread that called ``run*``; they must not block. An exception in
a callback propagates out of ``run*`` (it is a bug, not a printer fault); the scheduler
stays consistent and can be run again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, Final, TypeAlias

from hal._clock import Callback, Clock, VirtualClock, WallClock

PRIORITY_IRQ: Final = 0
"""Interrupt dispatch: runs before ordinary events of the same instant."""
PRIORITY_NORMAL: Final = 10
"""Firmware and physics events."""
PRIORITY_LATE: Final = 20
"""Observers that must see an instant after everything else has run in it."""

_KEY, _SEQ, _CALLBACK = range(3)
_PRIORITY_BITS: Final = 6
_PRIORITY_LIMIT: Final = 1 << _PRIORITY_BITS
_FOREVER_NS: Final = 1 << 62


Timer: TypeAlias = "list[Any]"
"""A scheduled callback: the queued entry itself, ``[key, seq, callback]``.

Handing out the entry (not a wrapper object) keeps scheduling at the cost of one list;
cancel it with :meth:`Scheduler.cancel`, read it with :func:`timer_when_ns` and
:func:`timer_cancelled`.
"""


def timer_when_ns(timer: Timer) -> int:
    """The instant ``timer`` runs (or ran) at."""
    return int(timer[_KEY]) >> _PRIORITY_BITS


def timer_cancelled(timer: Timer) -> bool:
    return timer[_CALLBACK] is None


def _nothing() -> None:
    return None


class Scheduler:
    """Runs callbacks at integer-nanosecond instants; see the module docstring."""

    def __init__(self, clock: Clock | None = None, *, keep_instants: bool = False) -> None:
        """``keep_instants``: on a wall clock, time inside ``run*`` keeps the instants of
        the timers (see the module docstring); without effect on a virtual clock."""
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self._wall_clock = self.clock if isinstance(self.clock, WallClock) else None
        """The clock, when it tells the time; ``None`` when time is virtual (ours)."""
        self._keep_instants = keep_instants and self._wall_clock is not None
        self._keeping = False
        """Whether time reads :attr:`_now_ns` on a wall clock: inside ``run*`` with
        ``keep_instants``."""
        self._heap: list[Timer] = []
        self._seq = 0
        self._now_ns = 0
        """Virtual time; on a wall clock, the clock's time when it was last read."""
        self._entry_queue: deque[Callback] = deque()
        self._stopping = False
        self.events_run = 0
        """Callbacks run so far (cancelled timers excluded): the benchmarks' unit."""

    # -- time ------------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        wall = self._wall_clock
        return self._now_ns if wall is None or self._keeping else wall.now_ns()

    @property
    def is_virtual(self) -> bool:
        """Whether time is the scheduler's own, moved only by jumping to events."""
        return self._wall_clock is None

    # -- scheduling ----------------------------------------------------------------

    def call_at(
        self, t_ns: int, callback: Callback, priority: int = PRIORITY_NORMAL
    ) -> Timer:
        """Run ``callback()`` at ``t_ns`` (clamped to now: the past cannot be scheduled)."""
        return self.call_later(max(t_ns - self.now_ns, 0), callback, priority)

    def call_later(
        self, delay_ns: int, callback: Callback, priority: int = PRIORITY_NORMAL
    ) -> Timer:
        """Run ``callback()`` ``delay_ns`` from now. ``delay_ns`` must be >= 0."""
        if delay_ns < 0:
            raise ValueError(f"delay_ns must be >= 0, got {delay_ns}")
        if not 0 <= priority < _PRIORITY_LIMIT:
            raise ValueError(f"priority must be within [0, {_PRIORITY_LIMIT}), got {priority}")
        # The firmware's every timer passes here: a virtual clock's instant is read
        # directly, not through the now_ns property (2.4% fewer instructions a page of
        # lp-2000, valgrind's cachegrind over 1,000 pages).
        t_ns = (self._now_ns if self._wall_clock is None else self.now_ns) + delay_ns
        self._seq += 1
        timer: Timer = [t_ns << _PRIORITY_BITS | priority, self._seq, callback]
        heappush(self._heap, timer)
        return timer

    def call_soon(self, callback: Callback, priority: int = PRIORITY_NORMAL) -> Timer:
        """Run ``callback()`` at the current instant, after what is already due now."""
        return self.call_later(0, callback, priority)

    @staticmethod
    def cancel(timer: Timer) -> None:
        """Cancel ``timer``; O(1), idempotent, harmless after it ran."""
        timer[_CALLBACK] = None

    def cancel_where(self, predicate: Callable[[Callback], bool]) -> int:
        """Cancel every queued timer whose callback ``predicate`` accepts; returns how
        many. O(n) in the queued entries: for rare sweeps (an owner going away), so the
        owner need not track each of its timers."""
        cancelled = 0
        for timer in self._heap:
            callback = timer[_CALLBACK]
            if callback is not None and predicate(callback):
                timer[_CALLBACK] = None
                cancelled += 1
        return cancelled

    def post_threadsafe(self, callback: Callback) -> None:
        """Hand ``callback`` to the scheduler's thread from any thread; wakes a sleeping
        clock at once. Posted callbacks run in the order they were posted."""
        self._entry_queue.append(callback)
        self.clock.wake()

    def pending(self) -> int:
        """Scheduled entries not yet run, cancelled ones included (lazy deletion)."""
        return len(self._heap)

    def next_event_ns(self) -> int | None:
        """The instant of the next live timer, or ``None`` when nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][_CALLBACK] is None:
            heappop(heap)
        return timer_when_ns(heap[0]) if heap else None

    # -- running -------------------------------------------------------------------

    def stop(self) -> None:
        """Make the current ``run*`` return after the callback that is running now.
        Safe to call from any thread."""
        self._stopping = True
        # The hot loop looks only at the entry queue; a no-op entry makes it look up.
        self.post_threadsafe(_nothing)

    def run(self) -> None:
        """Run until nothing is scheduled (virtual clock) or :meth:`stop` is called."""
        self._run(None, None)

    def run_until(self, until: int | Callable[[], bool], timeout_ns: int | None = None) -> bool:
        """Run until an instant or a condition.

        * ``until`` an ``int``: run every event due at or before ``until`` and leave the
          clock at ``until``. Returns ``True``.
        * ``until`` a predicate: run until it returns ``True`` (checked before the first
          event and after each one). Returns ``True`` if it did, ``False`` if time ran out
          (``timeout_ns`` from now, in this scheduler's time), nothing was left to run,
          or :meth:`stop` was called.
        """
        if isinstance(until, int):
            self._run(None, until)
            return True
        deadline = None if timeout_ns is None else self.now_ns + timeout_ns
        return self._run(until, deadline)

    def _drain_entry_queue(self) -> None:
        queue = self._entry_queue
        for _ in range(len(queue)):
            queue.popleft()()
            self.events_run += 1

    def _run(self, predicate: Callable[[], bool] | None, deadline_ns: int | None) -> bool:
        self._stopping = False
        if predicate is not None and predicate():
            return True
        clock = self.clock
        reached = False
        returned = False
        try:
            if isinstance(clock, VirtualClock) and clock.realtime_ratio is None:
                reached = self._run_virtual(predicate, deadline_ns)
            else:
                reached = self._run_clocked(predicate, deadline_ns)
            returned = True
            return reached
        finally:
            # Virtual time that ran out at a deadline has reached it, even with no event
            # there; a stopped run stays where it stopped. Kept instants stay where the
            # work got to.
            if self._wall_clock is not None:
                if not self._keep_instants:
                    self._now_ns = self._wall_clock.now_ns()
            elif returned and deadline_ns is not None and not reached and not self._stopping:
                self._now_ns = max(self._now_ns, deadline_ns)

    def _run_virtual(
        self, predicate: Callable[[], bool] | None, deadline_ns: int | None
    ) -> bool:
        """The hot loop: jump from entry to entry, no call into the clock at all (a loop
        of its own, not :meth:`_run_clocked`'s: 5% of a page's cost in the firmware
        benchmark)."""
        heap = self._heap
        entry_queue = self._entry_queue
        # The last key of the deadline's instant: one compare per entry.
        last_key = (_FOREVER_NS if deadline_ns is None else deadline_ns) << _PRIORITY_BITS
        last_key |= _PRIORITY_LIMIT - 1
        count = 0
        try:
            while True:
                if entry_queue:
                    if self._stopping:
                        return False
                    # One bounded pass, then (below) due timers: work posted by the pass
                    # waits for the next pass, so a chatty poster cannot starve timers.
                    self._drain_entry_queue()
                    if predicate is not None and predicate():
                        return True
                    if self._stopping:
                        return False
                if not heap:
                    if entry_queue:
                        continue
                    return False
                if heap[0][_KEY] > last_key:
                    return False
                key, _, callback = heappop(heap)
                if callback is None:
                    continue  # cancelled: it does not move time either
                self._now_ns = key >> _PRIORITY_BITS
                count += 1
                callback()
                if predicate is not None and predicate():
                    return True
        finally:
            self.events_run += count

    def _run_clocked(
        self, predicate: Callable[[], bool] | None, deadline_ns: int | None
    ) -> bool:
        """The loop for clocks that wait: wall time, or virtual time tied to it. Every
        wait is the clock's; whatever ends it (time, a post, a readable descriptor), the
        loop looks again at the queue and the heap."""
        keeping = self._keeping
        self._keeping = self._keep_instants
        try:
            return self._run_clocked_loop(predicate, deadline_ns)
        finally:
            self._keeping = keeping

    def _posted_instant_ns(self, wall_ns: int) -> int:
        """The instant posted work runs at: the wall's, or with ``keep_instants`` the
        earlier of it and the first timer still due (never before the last instant)."""
        if not self._keep_instants:
            return wall_ns
        heap = self._heap
        while heap and heap[0][_CALLBACK] is None:
            heappop(heap)
        if heap:
            wall_ns = min(wall_ns, timer_when_ns(heap[0]))
        return max(self._now_ns, wall_ns)

    def _run_clocked_loop(
        self, predicate: Callable[[], bool] | None, deadline_ns: int | None
    ) -> bool:
        heap = self._heap
        entry_queue = self._entry_queue
        clock = self.clock
        wall = self._wall_clock
        keep = self._keep_instants
        while not self._stopping:
            if entry_queue:
                if wall is not None:
                    self._now_ns = self._posted_instant_ns(wall.now_ns())
                self._drain_entry_queue()
                if predicate is not None and predicate():
                    return True
                if self._stopping:
                    return False
            while heap and heap[0][_CALLBACK] is None:
                heappop(heap)  # cancelled: nothing to wait for
            now_ns = self._now_ns if wall is None else wall.now_ns()
            t_ns = timer_when_ns(heap[0]) if heap else None
            if t_ns is not None and (deadline_ns is None or t_ns <= deadline_ns):
                wait_s = clock.wait_s(now_ns, t_ns)
                if wait_s is None:  # due
                    callback = heappop(heap)[_CALLBACK]
                    if wall is None:
                        self._now_ns = t_ns
                    else:
                        self._now_ns = max(self._now_ns, t_ns) if keep else now_ns
                    self.events_run += 1
                    callback()
                    if predicate is not None and predicate():
                        return True
                    continue
            elif entry_queue:
                continue
            elif wall is None:
                return False  # virtual time: nothing left to run, nothing can come
            elif deadline_ns is None:
                wait_s = None  # until another thread posts
            else:
                wait_s = clock.wait_s(now_ns, deadline_ns)
                if wait_s is None:
                    return False  # the deadline has passed
            entry_queue.extend(clock.wait(wait_s))
        return False
