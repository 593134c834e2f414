"""The one scheduler that drives a process: integer nanoseconds, a heap, two clocks.

Contract
--------
* Time is an ``int`` count of nanoseconds since the scheduler was made. No floats.
* Callbacks run in ``(t_ns, priority, seq)`` order: lower ``priority`` first at the
  same instant (interrupt dispatch uses :data:`PRIORITY_IRQ`, ordinary events
  :data:`PRIORITY_NORMAL`; priorities are 0..63), and entries of the same time and
  priority in the order they were scheduled (``seq``). That order is the whole of the
  determinism guarantee. Something scheduled for the current instant at a *lower*
  priority value than the one running preempts the rest of the running batch.
* :meth:`Scheduler.call_at` and :meth:`Scheduler.call_later` return a :class:`Timer`;
  :meth:`Scheduler.cancel` is O(1) (lazy deletion: the entry stays queued with its
  callback cleared and is skipped when it comes up). A cancelled timer neither runs nor
  moves the clock: time goes only to instants where something runs.

How: each entry is ``[key, seq, callback]`` with ``key = t_ns << 6 | priority`` (one
integer compare orders time and priority). An entry scheduled with the same key as the
last one pushed, while that one still waits, rides along on it as a follower instead of
taking a heap operation of its own: many events at one instant — a thousand processes
ticking together, a burst of interrupts — cost one push and one pop for the lot.
* Another thread enters only through :meth:`Scheduler.post_threadsafe`. Posted
  callbacks are drained in bounded passes (the callbacks present when a pass starts;
  anything they post waits for the next pass) so a chatty thread cannot starve timers.
* Two clocks (:mod:`hal._clock`): :class:`VirtualClock` (jump to the next event,
  optionally tied to wall time by a ratio) and :class:`WallClock` (sleep until the next
  event or until another thread posts one).

Callbacks run on the thread that called ``run*``; they must not block. An exception in
a callback propagates out of ``run*`` (it is a bug, not a printer fault); the scheduler
stays consistent and can be run again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, Final, TypeAlias

from hal._clock import Clock, VirtualClock, WallClock

PRIORITY_IRQ: Final = 0
"""Interrupt dispatch: runs before ordinary events of the same instant."""
PRIORITY_NORMAL: Final = 10
"""Firmware and physics events."""
PRIORITY_LATE: Final = 20
"""Observers that must see an instant after everything else has run in it."""

_KEY, _SEQ, _CALLBACK = range(3)
_PRIORITY_BITS = 6
_PRIORITY_LIMIT = 1 << _PRIORITY_BITS

Callback = Callable[[], object]


Timer: TypeAlias = "list[Any]"
"""A scheduled callback: the queued entry itself, ``[key, seq, callback, *followers]``.

Handing out the entry (not a wrapper object) keeps scheduling at the cost of one list;
cancel it with :meth:`Scheduler.cancel`, read it with :func:`timer_when_ns` and
:func:`timer_cancelled`.
"""


def timer_when_ns(timer: Timer) -> int:
    """The instant ``timer`` runs (or ran) at."""
    return int(timer[_KEY]) >> _PRIORITY_BITS


def timer_cancelled(timer: Timer) -> bool:
    return timer[_CALLBACK] is None


def _bad_schedule(delay_ns: int, priority: int) -> str:
    if delay_ns < 0:
        return f"delay_ns must be >= 0, got {delay_ns}"
    return f"priority must be within [0, {_PRIORITY_LIMIT}), got {priority}"


def _nothing() -> None:
    return None


_FOREVER_NS: Final = 1 << 62


class Scheduler:
    """Runs callbacks at integer-nanosecond instants; see the module docstring."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self._heap: list[Timer] = []
        self._seq = 0
        self._tail: Timer = [-1, 0, None]
        """The entry pushed last: a new entry with its key joins it as a follower."""
        self._now_ns = 0
        self._entry_queue: deque[Callback] = deque()
        self._wakeup = self.clock.new_wakeup()
        self._stopping = False
        self._wall = isinstance(self.clock, WallClock)
        self.events_run = 0
        """Callbacks run so far (cancelled timers excluded): the benchmarks' unit."""

    # -- time ------------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        return self.clock.now_ns(self) if self._wall else self._now_ns

    @property
    def is_virtual(self) -> bool:
        return isinstance(self.clock, VirtualClock)

    # -- scheduling ----------------------------------------------------------------

    def call_at(
        self, t_ns: int, callback: Callback, priority: int = PRIORITY_NORMAL
    ) -> Timer:
        """Run ``callback()`` at ``t_ns`` (clamped to now: the past cannot be scheduled)."""
        now = self.clock.now_ns(self) if self._wall else self._now_ns
        return self.call_later(t_ns - now if t_ns > now else 0, callback, priority)

    def call_later(
        self, delay_ns: int, callback: Callback, priority: int = PRIORITY_NORMAL
    ) -> Timer:
        """Run ``callback()`` ``delay_ns`` from now. ``delay_ns`` must be >= 0."""
        # The hottest function of the project: kept flat on purpose, and with literals,
        # not the module's names (a global lookup costs as much as the shift).
        if delay_ns < 0 or priority & -64:  # -_PRIORITY_LIMIT: priority outside [0, 64)
            raise ValueError(_bad_schedule(delay_ns, priority))
        t_ns = (self.clock.now_ns(self) if self._wall else self._now_ns) + delay_ns
        key = t_ns << 6 | priority  # _PRIORITY_BITS
        seq = self._seq = self._seq + 1
        timer: Timer = [key, seq, callback]
        # Ride on the last entry pushed if it has this key. Only for a future instant:
        # every entry already taken off the heap is at or before now.
        tail = self._tail
        if delay_ns and key == tail[0]:
            tail.append(timer)
        else:
            heappush(self._heap, timer)
            self._tail = timer
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
        owner need not track each of its timers. Entries of the batch running at this
        instant have already left the queue and are not seen."""
        cancelled = 0
        for entry in self._heap:
            for timer in (entry, *entry[_CALLBACK + 1:]):
                callback = timer[_CALLBACK]
                if callback is not None and predicate(callback):
                    timer[_CALLBACK] = None
                    cancelled += 1
        return cancelled

    def post_threadsafe(self, callback: Callback) -> None:
        """Hand ``callback`` to the scheduler's thread from any thread; wakes a sleeping
        wall clock at once. Posted callbacks run in the order they were posted."""
        self._entry_queue.append(callback)
        self._wakeup.set()

    def pending(self) -> int:
        """Scheduled entries not yet run, cancelled ones included (lazy deletion)."""
        return sum(len(entry) - _CALLBACK for entry in self._heap)

    def next_event_ns(self) -> int | None:
        """The instant of the next live timer, or ``None`` when nothing is scheduled."""
        heap = self._heap
        while heap:
            head = heap[0]
            if head[_CALLBACK] is not None or any(
                    f[_CALLBACK] is not None for f in head[_CALLBACK + 1:]):
                return int(head[_KEY]) >> _PRIORITY_BITS
            heappop(heap)
        return None

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
            # there; a stopped run stays where it stopped.
            if self._wall:
                self._now_ns = clock.now_ns(self)
            elif returned and deadline_ns is not None and not reached and not self._stopping:
                self._now_ns = max(self._now_ns, deadline_ns)

    def _run_group(self, head: Timer, now_ns: int,
                   predicate: Callable[[], bool] | None) -> tuple[int, bool]:
        """Run an entry and its followers in order, the clock at ``now_ns`` from the
        first one that is not cancelled on. Yields back to the loop — the rest pushed
        back ahead of anything scheduled since — when posted work or a more urgent entry
        for this instant appears, or the predicate holds. Returns (callbacks run,
        predicate held)."""
        heap = self._heap
        entry_queue = self._entry_queue
        key = head[_KEY]
        group = [head, *head[_CALLBACK + 1:]]
        del head[_CALLBACK + 1:]
        count = 0
        size = len(group)
        i = 0
        while i < size:
            callback = group[i][_CALLBACK]
            i += 1
            if callback is None:
                continue
            if not count:
                self._now_ns = now_ns
            count += 1
            callback()
            reached = predicate is not None and predicate()
            if reached or entry_queue or (heap and heap[0][_KEY] < key):
                if i < size:
                    rest = group[i]
                    rest.extend(group[i + 1:])
                    heappush(heap, rest)  # its seq is older than anything pushed since
                return count, reached
        return count, False

    def _run_virtual(
        self, predicate: Callable[[], bool] | None, deadline_ns: int | None
    ) -> bool:
        """The hot loop: jump from entry to entry, no call into the clock at all."""
        heap = self._heap
        entry_queue = self._entry_queue
        deadline_key = (_FOREVER_NS if deadline_ns is None else deadline_ns) << _PRIORITY_BITS
        deadline_key |= _PRIORITY_LIMIT - 1
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
                entry = heappop(heap)
                key = entry[0]
                if key > deadline_key:
                    heappush(heap, entry)
                    return False
                if len(entry) > 3:
                    ran, reached = self._run_group(entry, key >> 6, predicate)
                    count += ran
                    if reached:
                        return True
                    continue
                callback = entry[2]
                if callback is None:
                    continue  # cancelled: it does not move time either
                self._now_ns = key >> 6  # _PRIORITY_BITS
                count += 1
                callback()
                if predicate is not None and predicate():
                    return True
        finally:
            self.events_run += count

    def _run_clocked(
        self, predicate: Callable[[], bool] | None, deadline_ns: int | None
    ) -> bool:
        """The loop for clocks that wait: wall time, or virtual time tied to it."""
        heap = self._heap
        clock = self.clock
        wall = self._wall
        while not self._stopping:
            if self._entry_queue:
                if wall:
                    self._now_ns = clock.now_ns(self)
                self._drain_entry_queue()
                if predicate is not None and predicate():
                    return True
                if self._stopping:
                    return False
            if not heap:
                if self._entry_queue:
                    continue
                if deadline_ns is not None and wall and clock.now_ns(self) >= deadline_ns:
                    return False
                if not clock.idle(self, deadline_ns):
                    return False
                continue
            entry = heap[0]
            if entry[_CALLBACK] is None and len(entry) == _CALLBACK + 1:
                heappop(heap)  # cancelled: nothing to wait for
                continue
            t_ns = entry[_KEY] >> _PRIORITY_BITS
            if deadline_ns is not None and t_ns > deadline_ns:
                if not wall:
                    return False
                # Wall time: sleep until the deadline (posted work may still arrive).
                if clock.advance(self, deadline_ns) and not self._entry_queue:
                    return False
                continue
            if not clock.advance(self, t_ns):
                continue  # woken early by another thread: drain its work first
            if not heap or heap[0] is not entry:
                continue
            heappop(heap)
            ran, reached = self._run_group(entry, clock.now_ns(self) if wall else t_ns,
                                           predicate)
            self.events_run += ran
            if reached:
                return True
        return False
