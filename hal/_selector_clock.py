"""A wall clock that is also an event loop: timers, posted work and readable file
descriptors, all on the scheduler's one thread.

:class:`SelectorClock` is a :class:`~hal._clock.WallClock` whose wait is one
``select(2)`` on the file descriptors it watches plus a wake-up descriptor. A descriptor
that becomes readable has its handler returned by the wait, and the scheduler runs it on
its thread in its own pass of posted work (the same bounded passes as
:meth:`Scheduler.post_threadsafe <hal._scheduler.Scheduler.post_threadsafe>`), so the
code that reads a port and the code that answers what it read run on one thread with no
hand-off between them: the shape of a microcontroller's superloop, or of asyncio. The
virtual serial device (``printer-emu serve``) runs on it; a host's serial board keeps
its reader thread and a plain wall clock.

Contract
--------
* :meth:`SelectorClock.watch` ``(fd, on_readable)``: from then on, whenever ``fd`` is
  readable the scheduler runs ``on_readable()`` on its thread — at once if it sleeps,
  and at least every :data:`BUSY_POLL_NS` of wall time while due timers keep it busy
  (:meth:`~SelectorClock.wait_s` asks for a zero-second wait that often).
  The handler must consume what made the descriptor readable (read it, accept it, or
  :meth:`~SelectorClock.unwatch` it), or it is run again straight away.
  :meth:`~SelectorClock.unwatch` stops that; a descriptor must be unwatched before it is
  closed. Both are for the scheduler's thread (or before its run starts): the selector
  is not shared between threads.
* :meth:`~SelectorClock.wake` (what :meth:`Scheduler.post_threadsafe` calls) from any
  other thread still ends the wait at once (a write to an ``eventfd``, or a pipe where
  there is none); posted work and readable descriptors run in the order the wait saw
  them, both before due timers, in bounded passes.
* Time is :class:`~hal._clock.WallClock`'s: ``time.monotonic_ns()`` from the moment
  the clock was made; waits use ``select(2)``, whose timeout has microsecond resolution
  (``epoll_wait`` rounds to milliseconds, too coarse for the device's timers).
  Descriptors must be below ``FD_SETSIZE`` (1024), as ``select(2)`` requires.
* :meth:`SelectorClock.close` releases the wake-up descriptor once the scheduler no
  longer runs; a closed clock cannot be waited on.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final

from hal._clock import Callback, WallClock

BUSY_POLL_NS: Final = 200_000
"""While due timers keep the scheduler from waiting, the descriptors are still looked at
(a zero-timeout ``select``) at least this often."""

_EVENTFD_ONE: Final = (1).to_bytes(8, sys.byteorder)
"""An ``eventfd`` write adds an unsigned 64-bit count, in native byte order."""
_DRAIN_BYTES: Final = 4096


class _FdWakeup:
    """A wake-up on a file descriptor that ``select(2)`` can wait on beside others:
    ``set`` makes :attr:`fd` readable, the wait sees it, ``clear`` drains it.

    ``set`` writes only when not set already (one syscall per wake, however many posts).
    ``clear`` drains before it clears the flag: a ``set`` racing it either lands before
    the drain (its work was queued before, and the scheduler looks at the queue after
    the wait) or after the flag is cleared (and writes again), so a wake is never lost.
    """

    __slots__ = ("_flag", "_write_fd", "fd")

    def __init__(self) -> None:
        eventfd = getattr(os, "eventfd", None)
        if eventfd is not None:
            self.fd: int = eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._write_fd: int = self.fd
        else:  # not Linux: a self-pipe
            self.fd, self._write_fd = os.pipe()
            os.set_blocking(self.fd, False)
            os.set_blocking(self._write_fd, False)
        self._flag = False

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            # BlockingIOError: the pipe is full, so readable already; OSError: closed.
            with contextlib.suppress(OSError):
                os.write(self._write_fd, _EVENTFD_ONE)

    def clear(self) -> None:
        with contextlib.suppress(OSError):  # BlockingIOError: nothing was written
            while len(os.read(self.fd, _DRAIN_BYTES)) == _DRAIN_BYTES:
                pass
        self._flag = False

    def close(self) -> None:
        """Release the descriptors. A ``set`` after this (a late post from another
        thread) is a no-op, never a write to a descriptor number reused since."""
        self._flag = True
        fds = {self.fd, self._write_fd}
        self.fd = self._write_fd = -1
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


class SelectorClock(WallClock):
    """Wall time whose waits also watch file descriptors; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._wakeup = _FdWakeup()
        self._handlers: dict[int, Callable[[], object]] = {}
        self._fds: list[int] = [self._wakeup.fd]
        """What ``select`` waits on: the wake-up descriptor first, then the watched."""
        self._last_poll_ns = 0

    # -- descriptors (the scheduler's thread) ----------------------------------------

    def watch(self, fd: int, on_readable: Callable[[], object]) -> None:
        """Run ``on_readable()`` on the scheduler's thread whenever ``fd`` is readable
        (replacing the handler if ``fd`` was watched already)."""
        if fd < 0:
            raise ValueError(f"not a file descriptor: {fd}")
        if fd not in self._handlers:
            self._fds.append(fd)
        self._handlers[fd] = on_readable

    def unwatch(self, fd: int) -> None:
        """Stop watching ``fd``; harmless if it was not watched."""
        if self._handlers.pop(fd, None) is not None:
            self._fds.remove(fd)

    def watching(self, fd: int) -> bool:
        return fd in self._handlers

    def close(self) -> None:
        """Release the wake-up descriptor (the scheduler must have stopped running)."""
        self._handlers.clear()
        del self._fds[1:]
        self._wakeup.close()

    # -- the Clock contract ------------------------------------------------------------

    def wait_s(self, now_ns: int, until_ns: int) -> float | None:
        if until_ns > now_ns:
            return (until_ns - now_ns) / 1e9
        # Due: run it, unless the descriptors have waited a whole busy-poll period.
        return 0.0 if now_ns - self._last_poll_ns >= BUSY_POLL_NS else None

    def wait(self, timeout_s: float | None) -> Sequence[Callback]:
        """Wait up to ``timeout_s`` (``None``: for ever) for a watched descriptor or a
        wake-up; return a call of the handler of each readable descriptor."""
        try:
            ready, _, _ = select.select(self._fds, (), (), timeout_s)
        except InterruptedError:  # pragma: no cover - Python retries EINTR itself
            ready = []
        self._last_poll_ns = self.now_ns()
        wakeup_fd = self._wakeup.fd
        handlers: list[Callback] = []
        for fd in ready:
            if fd == wakeup_fd:
                self._wakeup.clear()  # what was posted is in the scheduler's queue
            else:
                handlers.append(partial(self._dispatch, fd))
        return handlers

    def wake(self) -> None:
        self._wakeup.set()

    def _dispatch(self, fd: int) -> None:
        # Looked up when it runs: a handler before it in the same pass may have
        # unwatched (and closed) this descriptor.
        handler = self._handlers.get(fd)
        if handler is not None:
            handler()


__all__ = ["BUSY_POLL_NS", "SelectorClock"]
