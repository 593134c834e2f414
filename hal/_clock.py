"""Clocks: how a :class:`~hal._scheduler.Scheduler`'s time relates to the wall, and how
it waits for its next event.

Contract
--------
A clock maps time and waits; it never sees the scheduler, its heap or its queue. It
works on plain integers (nanoseconds) and seconds:

* :meth:`Clock.wait_s` ``(now_ns, until_ns)``: the wall seconds to wait, the time being
  ``now_ns``, before ``until_ns`` is due; ``None`` when it is due already, or when the
  clock does not wait for it (virtual time as fast as the CPU allows).
* :meth:`Clock.wait` ``(timeout_s)``: block for up to ``timeout_s`` seconds (``None``:
  until woken), or until :meth:`Clock.wake` is called, and return what arrived meanwhile
  for the scheduler to run, in order (a :class:`~hal._selector_clock.SelectorClock`'s
  readable descriptors; nothing for the others). A wake-up ends one wait: the wait in
  progress, or the next one if none is.
* :meth:`Clock.wake`: from any thread. :meth:`Scheduler.post_threadsafe
  <hal._scheduler.Scheduler.post_threadsafe>` calls it after queueing its callback.

Two kinds of time:

* **Virtual** (:class:`VirtualClock`, and any clock that is not a :class:`WallClock`):
  the instant is the scheduler's own count, moved only by jumping to its next event, and
  a run with nothing scheduled ends (nothing can ever happen). ``realtime_ratio`` ties
  the jumps to wall time.
* **Wall** (:class:`WallClock` and its subclasses): :meth:`WallClock.now_ns` is the time
  and moves by itself; a run with nothing scheduled waits for another thread's post.

A run waits only in :meth:`Clock.wait`, so a clock that waits on something else too
(file descriptors: :class:`~hal._selector_clock.SelectorClock`) overrides ``wait`` and
``wake`` and nothing else.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
from _thread import allocate_lock
from collections.abc import Callable, Sequence
from typing import Final

Callback = Callable[[], object]

_MAX_WAIT_S: Final = min(threading.TIMEOUT_MAX, 86_400.0)
_NOTHING: Final[Sequence[Callback]] = ()


class Clock(abc.ABC):
    """The contract every clock fulfils (see the module docstring). The wait and the
    wake-up here are a bare lock's; a clock that waits on more overrides both."""

    def __init__(self) -> None:
        # The wake-up: a bare lock held while not woken, not a threading.Event (whose
        # Condition takes three locks a wait): saves microseconds a pty round trip.
        self._woken = allocate_lock()
        self._woken.acquire()

    @abc.abstractmethod
    def wait_s(self, now_ns: int, until_ns: int) -> float | None:
        """Wall seconds to wait at ``now_ns`` before ``until_ns`` is due, or ``None``."""

    def wait(self, timeout_s: float | None) -> Sequence[Callback]:
        """Block until ``timeout_s`` has passed (``None``: for ever) or :meth:`wake`;
        return the callbacks that arrived meanwhile (none here)."""
        if timeout_s is None:
            self._woken.acquire()
        elif timeout_s > 0:
            self._woken.acquire(True, min(timeout_s, _MAX_WAIT_S))
        else:
            self._woken.acquire(False)
        return _NOTHING

    def wake(self) -> None:
        """End the wait in progress, or the next one, at once. Any thread."""
        woken = self._woken
        if woken.locked():  # else woken already, and not waited on since
            with contextlib.suppress(RuntimeError):  # another thread woke it in between
                woken.release()


class VirtualClock(Clock):
    """Jump straight to the next event.

    ``realtime_ratio`` ties virtual time to wall time: 1.0 runs in real time, 10.0 ten
    times faster, ``None`` (the default) as fast as the CPU allows. Tied, virtual time is
    mapped to wall time from the first wait on: an event at ``t_ns`` is due when
    ``(t_ns - t0_ns) / realtime_ratio`` of wall time has passed since then.
    """

    def __init__(self, realtime_ratio: float | None = None) -> None:
        if realtime_ratio is not None and realtime_ratio <= 0:
            raise ValueError(f"realtime_ratio must be > 0, got {realtime_ratio}")
        super().__init__()
        self.realtime_ratio = realtime_ratio
        self._wall_origin_ns: int | None = None
        self._virtual_origin_ns = 0

    def wait_s(self, now_ns: int, until_ns: int) -> float | None:
        ratio = self.realtime_ratio
        if ratio is None:
            return None
        if self._wall_origin_ns is None:
            self._wall_origin_ns = time.monotonic_ns()
            self._virtual_origin_ns = now_ns
        due_wall_ns = self._wall_origin_ns + int((until_ns - self._virtual_origin_ns) / ratio)
        delay_s = (due_wall_ns - time.monotonic_ns()) / 1e9
        return delay_s if delay_s > 0 else None


class WallClock(Clock):
    """Real time: sleep until the next event; :meth:`~Clock.wake` ends the sleep at once.

    :meth:`now_ns` follows ``time.monotonic_ns()`` from the moment the clock was made.
    """

    def __init__(self) -> None:
        super().__init__()
        self._origin_ns = time.monotonic_ns()

    def now_ns(self) -> int:
        """Nanoseconds since the clock was made."""
        return time.monotonic_ns() - self._origin_ns

    def wait_s(self, now_ns: int, until_ns: int) -> float | None:
        return (until_ns - now_ns) / 1e9 if until_ns > now_ns else None
