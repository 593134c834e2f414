"""A recorded schedule (:mod:`benchmarks._schedule_recording`) replayed through three
schedulers: ``hal.Scheduler``, SimPy 4 and a bare ``heapq`` loop.

Each contender gets, untimed, one callback per recorded timer and the timers scheduled
outside any callback; then, timed, it runs until its queue is empty. Every callback does
what the recorded one did, in the same order: it schedules the timers the recorded one
scheduled (same instant, same priority) and cancels the ones it cancelled, and notes its
id. A run is checked to have fired the recorded callbacks in the recorded order (then the
few timers still waiting when the recording stopped, which do nothing); a replay that
drifted from the recording fails instead of reporting a figure. The callbacks' own work
(a loop over a tuple of ids, a few list reads) is the same for all three, and small: what
differs is the scheduler.

* ``ours``: :class:`hal.Scheduler`, each timer set with the call the firmware used
  (``call_at``, ``call_later`` or ``call_soon``), cancelled with ``cancel``.
* ``simpy``: an event per timer, with SimPy's own ``Environment.schedule(event,
  priority, delay)`` (SimPy orders its queue by ``(time, priority, id)``, as ours does)
  and one callback on it; cancelled by clearing its callbacks (the event is still
  popped, and runs nothing).
* ``bare``: ``heappop``/``heappush`` of ``[t_ns << 6 | priority, seq, callback]`` lists;
  cancelling clears the callback, the loop skips such entries.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from functools import partial
from heapq import heappop, heappush
from typing import Any

from benchmarks._schedule_recording import How, ScheduleRecording
from hal import Scheduler, Timer, VirtualClock


def _check(name: str, fired: list[int], recording: ScheduleRecording) -> None:
    recorded = len(recording.fired)
    waiting = recording.timers - recorded - recording.cancels
    if fired[:recorded] != list(recording.fired) or len(fired) != recorded + waiting:
        diverged = next((i for i, (a, b) in enumerate(zip(fired, recording.fired, strict=False))
                         if a != b), min(len(fired), recorded))
        raise RuntimeError(f"{name}: the replay ran {len(fired)} callbacks and left the "
                           f"recorded order at callback {diverged} of {recorded}")


def _with_root(recording: ScheduleRecording) -> tuple[tuple[int, ...], ...]:
    # The ops done outside any callback become those of one more callback, run untimed.
    return (*recording.ops, recording.root_ops)


def replay_ours(recording: ScheduleRecording) -> int:
    """``hal.Scheduler`` on a virtual clock; returns the elapsed ns of the run."""
    sched = Scheduler(VirtualClock())
    how, t_ns, delay_ns, priority = (recording.how, recording.t_ns, recording.delay_ns,
                                     recording.priority)
    ops = _with_root(recording)
    timers: list[Timer] = [[] for _ in ops]
    fired: list[int] = []

    def fire(i: int) -> None:
        fired.append(i)
        for op in ops[i]:
            if op < 0:
                sched.cancel(timers[~op])
            elif how[op] is How.LATER:
                timers[op] = sched.call_later(delay_ns[op], callbacks[op], priority[op])
            elif how[op] is How.AT:
                timers[op] = sched.call_at(t_ns[op], callbacks[op], priority[op])
            else:
                timers[op] = sched.call_soon(callbacks[op], priority[op])

    callbacks = [partial(fire, i) for i in range(len(ops))]
    callbacks[-1]()
    fired.clear()
    gc.collect()
    t0 = time.perf_counter_ns()
    sched.run()
    elapsed = time.perf_counter_ns() - t0
    _check("ours", fired, recording)
    return elapsed


def replay_simpy(recording: ScheduleRecording) -> int:
    """SimPy 4: one event per timer on ``Environment.schedule``; elapsed ns of the run."""
    import simpy  # here, not at the top: the module must import without the bench extra

    class Timeout(simpy.Event):
        """``simpy.Timeout`` with a priority: built as SimPy builds its own timeouts."""

        def __init__(self, env: Any, delay: int, priority: int,
                     callback: Callable[[Any], None]) -> None:
            self.env = env
            self.callbacks = [callback]
            self._value = None
            self._ok = True
            env.schedule(self, priority, delay)

    env = simpy.Environment()
    delay_ns, priority = recording.delay_ns, recording.priority
    ops = _with_root(recording)
    timers: list[Any] = [None for _ in ops]
    fired: list[int] = []

    def fire(i: int, _event: Any) -> None:
        fired.append(i)
        for op in ops[i]:
            if op < 0:
                timers[~op].callbacks.clear()
            else:
                timers[op] = Timeout(env, delay_ns[op], priority[op], callbacks[op])

    callbacks = [partial(fire, i) for i in range(len(ops))]
    callbacks[-1](None)
    fired.clear()
    gc.collect()
    t0 = time.perf_counter_ns()
    env.run()
    elapsed = time.perf_counter_ns() - t0
    _check("simpy", fired, recording)
    return elapsed


def replay_bare(recording: ScheduleRecording) -> int:
    """The bare ``heapq`` loop (module docstring); elapsed ns of the run."""
    heap: list[list[Any]] = []
    delay_ns, priority = recording.delay_ns, recording.priority
    ops = _with_root(recording)
    timers: list[list[Any]] = [[] for _ in ops]
    fired: list[int] = []
    now = 0
    seq = 0

    def fire(i: int) -> None:
        nonlocal seq
        fired.append(i)
        for op in ops[i]:
            if op < 0:
                timers[~op][2] = None
            else:
                seq += 1
                entry = [(now + delay_ns[op]) << 6 | priority[op], seq, callbacks[op]]
                heappush(heap, entry)
                timers[op] = entry

    callbacks = [partial(fire, i) for i in range(len(ops))]
    callbacks[-1]()
    fired.clear()
    gc.collect()
    t0 = time.perf_counter_ns()
    while heap:
        key, _, callback = heappop(heap)
        if callback is not None:
            now = key >> 6
            callback()
    elapsed = time.perf_counter_ns() - t0
    _check("bare", fired, recording)
    return elapsed


def events(recording: ScheduleRecording) -> int:
    """Callbacks a replay runs: the recorded ones, then those still waiting at its end."""
    return recording.timers - recording.cancels
