"""Clocks: how a :class:`~hal._scheduler.Scheduler` gets from one instant to the next.

:class:`VirtualClock` jumps straight to the next event (optionally tied to wall time by
a ratio); :class:`WallClock` sleeps until it, and :meth:`Scheduler.post_threadsafe
<hal._scheduler.Scheduler.post_threadsafe>` wakes it early through the clock's
:class:`_Wakeup`. A clock reads the scheduler's instant and its entry queue, nothing
else. Kept apart from the scheduler so that boards can define clocks of their own
(:class:`hal._selector_clock.SelectorClock`) whether or not the scheduler is compiled.
"""

from __future__ import annotations

import threading
import time
from _thread import allocate_lock as _allocate_lock
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from hal._scheduler import Scheduler


class Clock:
    """How the scheduler gets from one instant to the next.

    ``advance(scheduler, t_ns)`` is called with the time of the next event; it returns
    ``True`` once time has reached ``t_ns`` and ``False`` if it was woken early by
    another thread (the scheduler then drains posted work and asks again).
    ``idle(scheduler)`` is called when nothing is scheduled; it returns ``False`` when
    the run should end because nothing can ever happen (the virtual clock), ``True``
    once another thread has posted work.
    """

    def now_ns(self, scheduler: Scheduler) -> int:
        return scheduler._now_ns

    def new_wakeup(self) -> _Wakeup:
        """What :meth:`Scheduler.post_threadsafe` sets to wake this clock's waits; the
        scheduler asks once, when it is made. A clock that waits on something else (file
        descriptors: :class:`hal._selector_clock.SelectorClock`) returns its own."""
        return _Wakeup()

    def advance(self, scheduler: Scheduler, t_ns: int) -> bool:
        raise NotImplementedError

    def idle(self, scheduler: Scheduler, deadline_ns: int | None) -> bool:
        raise NotImplementedError


class VirtualClock(Clock):
    """Jump straight to the next event.

    ``realtime_ratio`` ties virtual time to wall time: 1.0 runs in real time, 10.0 ten
    times faster, ``None`` (the default) as fast as the CPU allows.
    """

    def __init__(self, realtime_ratio: float | None = None) -> None:
        if realtime_ratio is not None and realtime_ratio <= 0:
            raise ValueError(f"realtime_ratio must be > 0, got {realtime_ratio}")
        self.realtime_ratio = realtime_ratio
        self._wall_origin_ns: int | None = None
        self._virtual_origin_ns = 0

    def advance(self, scheduler: Scheduler, t_ns: int) -> bool:
        ratio = self.realtime_ratio
        if ratio is not None:
            if self._wall_origin_ns is None:
                self._wall_origin_ns = time.monotonic_ns()
                self._virtual_origin_ns = scheduler._now_ns
            due_wall_ns = self._wall_origin_ns + int((t_ns - self._virtual_origin_ns) / ratio)
            delay_s = (due_wall_ns - time.monotonic_ns()) / 1e9
            if delay_s > 0 and scheduler._wakeup.wait(delay_s):
                scheduler._wakeup.clear()
                return False
        return True

    def idle(self, scheduler: Scheduler, deadline_ns: int | None) -> bool:
        # Nothing scheduled in virtual time: only posted work can change that, and a
        # virtual run does not wait for other threads.
        return bool(scheduler._entry_queue)


class WallClock(Clock):
    """Sleep until the next event; :meth:`Scheduler.post_threadsafe` wakes it at once.

    ``now_ns`` follows ``time.monotonic_ns()`` from the moment the clock was made.
    """

    def __init__(self) -> None:
        self._origin_ns = time.monotonic_ns()

    def now_ns(self, scheduler: Scheduler) -> int:
        return time.monotonic_ns() - self._origin_ns

    def advance(self, scheduler: Scheduler, t_ns: int) -> bool:
        delay_s = (t_ns - self.now_ns(scheduler)) / 1e9
        # A wait that returns True was woken by post_threadsafe (and consumed it).
        return not (delay_s > 0 and scheduler._wakeup.wait(delay_s))

    def idle(self, scheduler: Scheduler, deadline_ns: int | None) -> bool:
        timeout_s = None
        if deadline_ns is not None:
            timeout_s = max(0.0, (deadline_ns - self.now_ns(scheduler)) / 1e9)
        scheduler._wakeup.wait(timeout_s)
        return True


class _Wakeup:
    """How another thread wakes a sleeping clock: :class:`threading.Event`'s interface
    (``set``, ``wait``, ``clear``) on one bare lock used as a binary semaphore (held
    means "not set"). ``wait`` consumes the wake-up it returns ``True`` for.

    :class:`threading.Event` goes through a :class:`threading.Condition`: a fresh lock,
    a waiter list and a second lock round each wait, all in Python, and ``set`` holds
    the GIL through all of it while the woken thread wants it. Here ``set`` is one
    ``release`` (a ``sem_post``) and ``wait`` one ``acquire``: measured over a pty round
    trip it saves several microseconds on each side of the line.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = _allocate_lock()
        self._lock.acquire()

    def set(self) -> None:
        lock = self._lock
        if lock.locked():
            try:
                lock.release()
            except RuntimeError:  # another thread set it in between
                return

    def is_set(self) -> bool:
        return not self._lock.locked()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or ``timeout`` seconds (``None``: for ever); ``True`` if set
        (and then no longer set)."""
        if timeout is None:
            return self._lock.acquire()
        return self._lock.acquire(True, min(timeout, _MAX_WAIT_S) if timeout > 0 else 0)

    def clear(self) -> None:
        self._lock.acquire(False)


_MAX_WAIT_S: Final = min(threading.TIMEOUT_MAX, 86_400.0)
