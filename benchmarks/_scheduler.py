"""Scheduler throughput: ``hal.Scheduler`` against SimPy 4 and a bare ``heapq`` loop, on
the firmware's own schedule and on two synthetic chains.

Workloads
---------
* ``firmware``: the schedule of a 1,000-page job on the emulated lp-2000 (the firmware
  benchmark's job: power-on to the last page out), recorded once per run
  (:mod:`benchmarks._schedule_recording`) and replayed through each contender
  (:mod:`benchmarks._schedule_replay`): ~42,000 timers, ~37,000 callbacks run, ~5,000
  cancellations, a third of the timers due at the instant they were set, interrupt
  dispatch (priority 0) among ordinary events (priority 10), ``call_at`` for one timer
  in seven. Each replayed callback schedules and cancels what the recorded one did, and
  nothing else, so the figure is the cost of the scheduler under the printer's own mix.
* ``1x1000000``: one chain of 1,000,000 timeouts, each set by the one before, 1 ns later
  (the heap holds one entry);
* ``1000x1000``: 1,000 such chains in step (the heap holds 1,000 entries, all due at the
  same instants). See :mod:`benchmarks._schedule_chains`.

What it rewards
---------------
Events per second of the scheduler itself, with the callbacks' own work the same for all
contenders and kept small. The replay rewards what makes a printer's run cheaper:
pushes and pops on a heap of 7-10 live timers (and the cancelled ones until they come
up), cancelled entries skipped, same-instant batches, ``call_at`` and ``call_later`` as
the firmware calls them. The chains reward the per-event floor (one push, one pop, one
call) and, ``1000x1000``, a heap of 1,000 ties, which the firmware never has: a trick
that pays only there (the "followers", an entry riding on another of the same instant:
0 in the firmware's runs) shows on the chains and not on the replay.

Contenders: ``ours`` (:class:`hal.Scheduler`, virtual clock); ``simpy`` (SimPy 4: a
process per chain on the chains, SimPy's ``Environment.schedule`` of one event per timer
on the replay: the cheapest way through its queue); ``bare`` (``heappush``/``heappop``
of entries whose callback is cleared to cancel: the least any scheduler with ordered,
cancellable timers can do in Python, so ours' cost over it is the price of everything
else: priorities, deadlines, the entry queue, the event count, cancellable ``Timer``
entries, the clock).

Each contender runs in this one process, one after another, repeats interleaved, best of
:data:`REPEATS` (:data:`REPLAY_REPEATS` for the replay; noise only ever slows a run
down). Only the run itself is timed, not building the first events; the garbage
collector is collected before each run and left on, as it is in the emulator. Every run
is checked to have done all its events (the replay: in the recorded order).

Targets
-------
* Replay: ours >= SimPy's events/s (:data:`REPLAY_SIMPY_TARGET`) and ours' cost per event
  <= 1.5x the bare loop's (:data:`REPLAY_BARE_TARGET`): not slower than SimPy's own
  queue on the printer's schedule, and at most half as much again as the least a
  cancellable heap costs. Measured (2-vCPU VM, interpreted, best of 7): ours/SimPy
  1.00-1.03, ours/bare 1.42-1.48 (before the followers went: 1.00-1.08, 1.37-1.51).
  Met with little to spare: a run the machine disturbed can miss them; run it again.
* Chains (from the issue): ours >= 2x SimPy's events/s; ours' cost per event <= 1.7x the
  bare loop's. Measured: ``1x1000000`` 1.8-1.9x SimPy (1.7-1.8 before), 1.6x bare;
  ``1000x1000`` 1.3-1.5x SimPy and 1.6x bare, where the followers made it 2.5-2.8x and
  0.8-0.9x (cheaper than the bare loop: one push for a batch).

How the two compare: on the replay ours is level with SimPy, not 2x ahead, because
SimPy's cost on the chains is its processes (a generator resumed per event), which the
replay does not use: SimPy's heap of ``(time, priority, id, event)`` tuples does what
ours does. Ours' cost over the bare loop is lower on the replay than on the chains
because the callbacks' own work (the replay's) weighs on both; what is left is ours'
own, ~0.35 µs an event: at 37 events a page, ~13 µs of the ~260 µs an interpreted page
costs (5%).
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from benchmarks import _schedule_chains as chains
from benchmarks import _schedule_replay as replay
from benchmarks import scale
from benchmarks._schedule_recording import record_print_job

REPEATS: Final = 3
REPLAY_REPEATS: Final = 7
"""The replay is short (~40 ms a run against ~0.5 s for a chain): more repeats of it
give its best the same chance to miss the machine's noise."""
PAGES: Final = 1_000
"""Pages of the recorded job at scale 1."""
CHAINS: Final[tuple[tuple[int, int], ...]] = ((1, 1_000_000), (1_000, 1_000))
"""``(chains, timeouts per chain)`` at scale 1."""
SIMPY_TARGET: Final = 2.0
"""Chains: ours' events/s must be at least this many times SimPy's."""
BARE_TARGET: Final = 1.7
"""Chains: ours' cost per event must be at most this many times the bare loop's."""
REPLAY_SIMPY_TARGET: Final = 1.0
"""Replay: ours' events/s must be at least this many times SimPy's."""
REPLAY_BARE_TARGET: Final = 1.5
"""Replay: ours' cost per event must be at most this many times the bare loop's."""

Contender = Callable[[], int]
"""One timed run: returns its elapsed ns (raises if the work was not done)."""


def _simpy_available() -> bool:
    try:
        import simpy  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def _events_per_s(events: int, elapsed_ns: int) -> float:
    # max(1, ...): a tiny-scale run on a coarse clock must not divide by zero.
    return events * 1e9 / max(1, elapsed_ns)


def measure(contenders: dict[str, Contender], events: int, repeats: int, simpy_target: float,
            bare_target: float) -> dict[str, Any]:
    """Best-of-``repeats`` events/s of each contender (``ours`` and ``bare`` required,
    ``simpy`` optional) on one workload of ``events`` events, with the ratios."""
    best: dict[str, int] = {}
    # Repeats interleaved so a slow spell of the machine hits every contender alike.
    for _ in range(repeats):
        for name, contender in contenders.items():
            elapsed = contender()
            best[name] = min(best.get(name, elapsed), elapsed)
    eps = {name: _events_per_s(events, ns) for name, ns in best.items()}
    ours_vs_simpy = eps["ours"] / eps["simpy"] if "simpy" in eps else None
    # How far the bare loop itself is ahead of SimPy: the ceiling for ours/SimPy.
    bare_vs_simpy = eps["bare"] / eps["simpy"] if "simpy" in eps else None
    # cost per event = 1 / events_per_s, so ours' cost / bare's cost = bare / ours.
    ours_cost_vs_bare = eps["bare"] / eps["ours"]
    return {
        "events": events,
        "ours_events_per_s": eps["ours"],
        "simpy_events_per_s": eps.get("simpy"),
        "bare_events_per_s": eps["bare"],
        "ours_ns_per_event": best["ours"] / events,
        "simpy_ns_per_event": best["simpy"] / events if "simpy" in best else None,
        "bare_ns_per_event": best["bare"] / events,
        "ours_vs_simpy": ours_vs_simpy,
        "ours_cost_vs_bare": ours_cost_vs_bare,
        "bare_vs_simpy": bare_vs_simpy,
        "targets": {"ours_vs_simpy_min": simpy_target, "ours_cost_vs_bare_max": bare_target},
        "meets_simpy_target": None if ours_vs_simpy is None else ours_vs_simpy >= simpy_target,
        "meets_bare_target": ours_cost_vs_bare <= bare_target,
    }


def _measure_replay(pages: int) -> dict[str, Any]:
    recording = record_print_job(pages)
    contenders: dict[str, Contender] = {"ours": partial(replay.replay_ours, recording)}
    if _simpy_available():
        contenders["simpy"] = partial(replay.replay_simpy, recording)
    contenders["bare"] = partial(replay.replay_bare, recording)
    figures = measure(contenders, replay.events(recording), REPLAY_REPEATS,
                      REPLAY_SIMPY_TARGET, REPLAY_BARE_TARGET)
    same_instant = sum(delay == 0 for delay in recording.delay_ns)
    return {
        "pages": pages,
        "timers": recording.timers,
        "cancels": recording.cancels,
        "same_instant_timers": same_instant,
        "events_per_page": len(recording.fired) / pages,
        "ours_scheduler_us_per_page": (figures["ours_ns_per_event"]
                                       - figures["bare_ns_per_event"])
        * len(recording.fired) / pages / 1e3,
        **figures,
    }


def _measure_chains(n_chains: int, each: int) -> dict[str, Any]:
    contenders: dict[str, Contender] = {"ours": partial(chains.run_ours, n_chains, each)}
    if _simpy_available():
        contenders["simpy"] = partial(chains.run_simpy, n_chains, each)
    contenders["bare"] = partial(chains.run_bare, n_chains, each)
    figures = measure(contenders, n_chains * each, REPEATS, SIMPY_TARGET, BARE_TARGET)
    return {"chains": n_chains, "timeouts_per_chain": each, **figures}


def run() -> dict[str, Any]:
    """The benchmark (see :mod:`benchmarks` for the result's shape)."""
    s = scale()
    pages = max(5, round(PAGES * s))
    workloads: dict[str, dict[str, Any]] = {"firmware": _measure_replay(pages)}
    for n_chains, each in CHAINS:
        # Keep the number of chains (the heap's shape) and shorten the chains.
        each = max(1, round(each * s))
        workloads[f"{n_chains}x{each}"] = _measure_chains(n_chains, each)
    rows: list[list[Any]] = [
        [
            f"firmware ({f['pages']:,}-page replay)" if key == "firmware" else key,
            f["ours_events_per_s"],
            f["simpy_events_per_s"],
            f["bare_events_per_s"],
            f["ours_vs_simpy"],
            f["ours_cost_vs_bare"],
            f["bare_vs_simpy"],
        ]
        for key, f in workloads.items()
    ]
    replayed = workloads["firmware"]
    notes = [
        f"best of {REPLAY_REPEATS} (replay), {REPEATS} (chains), Python "
        f"{platform.python_version()}, scale {s:g}",
        f"firmware: the schedule of a {pages:,}-page lp-2000 job replayed: "
        f"{replayed['timers']:,} timers ({replayed['same_instant_timers']:,} due at once), "
        f"{replayed['cancels']:,} cancelled, {replayed['events_per_page']:.1f} events a page; "
        f"ours over bare: {replayed['ours_scheduler_us_per_page']:.1f} µs a page",
        "ours/SimPy and bare/SimPy: events/s over SimPy's; ours/bare: ours' cost per event "
        "over the bare heapq loop's",
        f"targets: firmware ours/SimPy >= {REPLAY_SIMPY_TARGET:g}, ours/bare <= "
        f"{REPLAY_BARE_TARGET:g}; chains ours/SimPy >= {SIMPY_TARGET:g}, ours/bare <= "
        f"{BARE_TARGET:g}",
    ]
    if not _simpy_available():
        notes.append("SimPy is not installed (pip install 'printer-emu[bench]'): not compared")
    missed = [
        f"{key}: {what}"
        for key, f in workloads.items()
        for what, ok in (
            ("SimPy target", f["meets_simpy_target"]),
            ("bare-loop target", f["meets_bare_target"]),
        )
        if ok is False
    ]
    notes.append("missed: " + "; ".join(missed) if missed else "all targets met")
    return {
        "name": "scheduler",
        "python": platform.python_version(),
        "scale": s,
        "repeats": REPEATS,
        "replay_repeats": REPLAY_REPEATS,
        "workloads": workloads,
        "table": {
            "title": "Scheduler throughput: events/s and ratios",
            "columns": [
                "workload",
                "ours",
                "SimPy",
                "bare",
                "ours/SimPy",
                "ours/bare",
                "bare/SimPy",
            ],
            "rows": rows,
        },
        "notes": notes,
    }
