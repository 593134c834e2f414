"""Synthetic chains of timeouts, for the scheduler benchmark (:mod:`benchmarks._scheduler`).

Every contender does the same work per event: take the next timeout off its queue, run
the code waiting on it, which counts down and schedules the next timeout one
nanosecond (one SimPy time unit) later. ``chains`` chains of ``each`` timeouts, all in
step: with one chain the heap holds one entry; with 1,000, it holds 1,000, all due at
the same instants (the seq tie-break does the ordering).

* ``ours``: :class:`hal.Scheduler` on a virtual clock, callback style: a callback that
  reschedules itself with ``sched.call_later(1, tick)``;
* ``simpy``: one SimPy process per chain doing ``yield env.timeout(1)``;
* ``bare``: ``heappop``/``heappush`` of ``(t, seq, callback)`` tuples; the loop pops,
  checks the entry is live (``callback is not None``, what any cancellable timer needs),
  and calls it; the callback pushes the next tuple itself.

Each returns the elapsed ns of the run (not of building the first events), and raises
if the work was not all done.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

from hal import Scheduler, VirtualClock


def _check(name: str, finished: int, chains: int, now: float, each: int) -> None:
    if finished != chains or now != each:
        raise RuntimeError(
            f"{name}: {finished}/{chains} chains finished at t={now}, expected t={each}"
        )


def run_ours(chains: int, each: int) -> int:
    """``hal.Scheduler``: each chain a callback rescheduling itself with call_later(1)."""
    sched = Scheduler(VirtualClock())
    finished = 0

    def chain(count: int) -> Callable[[], None]:
        remaining = count

        def tick() -> None:
            nonlocal remaining, finished
            remaining -= 1
            if remaining:
                sched.call_later(1, tick)
            else:
                finished += 1

        return tick

    for _ in range(chains):
        sched.call_later(1, chain(each))
    gc.collect()
    t0 = time.perf_counter_ns()
    sched.run()
    elapsed = time.perf_counter_ns() - t0
    _check("ours", finished, chains, sched.now_ns, each)
    if sched.events_run != chains * each:
        raise RuntimeError(f"ours: ran {sched.events_run} events, expected {chains * each}")
    return elapsed


def run_simpy(chains: int, each: int) -> int:
    """SimPy 4: one process per chain, ``yield env.timeout(1)`` ``each`` times."""
    import simpy  # here, not at the top: the module must import without the bench extra

    env = simpy.Environment()
    finished = 0

    def chain(count: int) -> Any:
        nonlocal finished
        for _ in range(count):
            yield env.timeout(1)
        finished += 1

    for _ in range(chains):
        env.process(chain(each))
    gc.collect()
    t0 = time.perf_counter_ns()
    env.run()
    elapsed = time.perf_counter_ns() - t0
    _check("simpy", finished, chains, env.now, each)
    return elapsed


def run_bare(chains: int, each: int) -> int:
    """The baseline: a bare heapq loop of ``(t, seq, callback)`` tuples (see above)."""
    heap: list[tuple[int, int, Callable[[], None] | None]] = []
    now = 0
    seq = 0
    finished = 0

    def chain(count: int) -> Callable[[], None]:
        remaining = count

        def tick() -> None:
            nonlocal remaining, seq, finished
            remaining -= 1
            if remaining:
                seq += 1
                heappush(heap, (now + 1, seq, tick))
            else:
                finished += 1

        return tick

    for _ in range(chains):
        seq += 1
        heappush(heap, (1, seq, chain(each)))
    gc.collect()
    t0 = time.perf_counter_ns()
    while heap:
        now, _, callback = heappop(heap)
        if callback is not None:
            callback()
    elapsed = time.perf_counter_ns() - t0
    _check("bare", finished, chains, now, each)
    return elapsed
