"""Yield the CPU after writing to a Linux pty, while that is cheap.

Linux moves a pty's bytes to the reader from a kernel worker (the tty flip-buffer
work), and EEVDF lets the writing thread finish its slice before that worker runs. So
whatever a thread does after ``write(2)`` — link timers, its loop's way back to its
wait — delays the bytes by as much: spinning 20 us after each host write was measured
to add ~30 us to a request's round trip. One ``sched_yield`` right after the write lets
the worker run at once (about 10-15 us less per round trip at each end, idle machine).

On a contended CPU the same yield hands the CPU to another task for the rest of that
task's slice (a millisecond or more): with a busy loop on every CPU, yielding at both
ends made the round trip's median 2-3 ms instead of ~0.1 ms. So :class:`PtyYield`
yields only while yields come back quickly: one that took longer than
:data:`SLOW_YIELD_NS` lost the CPU to another task, and then it does not yield for a
while: :data:`MIN_BACKOFF_NS` after a lone slow yield (an idle machine has one now and
then, and should not lose the gain for long), doubling with each slow yield in a row up
to :data:`MAX_BACKOFF_NS` (a contended machine pays one slow write a second).

Not a busy wait: one syscall per write at most, and none while backing off.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Final

SLOW_YIELD_NS: Final = 200_000
"""A yield that takes longer than this gave the CPU to another task, not just to the
kernel's tty worker (which takes tens of microseconds at most)."""
MIN_BACKOFF_NS: Final = 10_000_000
"""How long not to yield after a slow yield that follows a fast one."""
MAX_BACKOFF_NS: Final = 1_000_000_000
"""The longest pause in yielding, reached after slow yields in a row."""


class PtyYield:
    """Call after each write to a pty; see the module docstring. ``enabled=False`` (or
    not Linux) makes every call a no-op. Safe to call from several threads (a race
    costs at most one extra yield)."""

    __slots__ = ("_backoff_ns", "_enabled", "_resume_ns", "slow_yields", "yields")

    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled and sys.platform.startswith("linux")
        self._resume_ns = 0
        self._backoff_ns = MIN_BACKOFF_NS
        self.yields = 0
        """Yields made (for tests and benchmarks)."""
        self.slow_yields = 0
        """Yields that lost the CPU to another task (each starts a backoff)."""

    @property
    def enabled(self) -> bool:
        return self._enabled

    def __call__(self) -> None:
        if not self._enabled:
            return
        start = time.monotonic_ns()
        if start < self._resume_ns:
            return
        try:
            os.sched_yield()
        except OSError:
            return
        self.yields += 1
        took = time.monotonic_ns() - start
        if took > SLOW_YIELD_NS:
            self.slow_yields += 1
            backoff = self._backoff_ns
            self._resume_ns = start + took + backoff
            self._backoff_ns = min(2 * backoff, MAX_BACKOFF_NS)
        elif self._backoff_ns != MIN_BACKOFF_NS:
            self._backoff_ns = MIN_BACKOFF_NS


__all__ = ["MAX_BACKOFF_NS", "MIN_BACKOFF_NS", "SLOW_YIELD_NS", "PtyYield"]
