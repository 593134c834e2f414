"""The scheduler's contract (hal/_scheduler.py): ordering, cancellation, running to an
instant or a condition, stopping, thread-safe posting, and exceptions (the clocks:
test_clock.py).

Threaded tests never sleep to synchronise: they wait on ``threading.Event`` with a
timeout, so a broken scheduler fails the test in bounded time instead of hanging it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal import (
    PRIORITY_IRQ,
    PRIORITY_LATE,
    PRIORITY_NORMAL,
    Scheduler,
    Timer,
    VirtualClock,
    WallClock,
    timer_cancelled,
    timer_when_ns,
)

MS = 1_000_000
S = 1_000_000_000
WAIT_S = 5.0
"""Upper bound on any wait for another thread: generous, only reached when broken."""

Log = list[tuple[int, object]]


def _recorder(log: Log, sched: Scheduler, tag: object) -> Callable[[], None]:
    def record() -> None:
        log.append((sched.now_ns, tag))

    return record


# -- ordering ---------------------------------------------------------------------------


def test_events_run_in_time_order_whatever_the_scheduling_order() -> None:
    sched = Scheduler()
    log: Log = []
    for t in (30, 10, 20, 0, 50):
        sched.call_at(t, _recorder(log, sched, t))
    sched.run()
    assert log == [(0, 0), (10, 10), (20, 20), (30, 30), (50, 50)]


def test_equal_times_run_in_scheduling_order() -> None:
    sched = Scheduler()
    log: Log = []
    for tag in "abcdefgh":
        sched.call_at(7, _recorder(log, sched, tag))
    sched.run()
    assert log == [(7, tag) for tag in "abcdefgh"]


def test_priority_orders_events_of_the_same_instant_before_seq() -> None:
    sched = Scheduler()
    log: Log = []
    sched.call_at(5, _recorder(log, sched, "late"), PRIORITY_LATE)
    sched.call_at(5, _recorder(log, sched, "normal-1"))
    sched.call_at(5, _recorder(log, sched, "irq"), PRIORITY_IRQ)
    sched.call_at(5, _recorder(log, sched, "normal-2"), PRIORITY_NORMAL)
    sched.call_at(4, _recorder(log, sched, "earlier"), PRIORITY_LATE)
    sched.run()
    assert [tag for _, tag in log] == ["earlier", "irq", "normal-1", "normal-2", "late"]


def test_call_later_is_relative_to_now_and_call_soon_runs_after_what_is_due() -> None:
    sched = Scheduler()
    log: Log = []

    def at_ten() -> None:
        sched.call_later(5, _recorder(log, sched, "later"))
        sched.call_soon(_recorder(log, sched, "soon"))

    sched.call_at(10, at_ten)
    sched.call_at(10, _recorder(log, sched, "already-due"))
    sched.run()
    assert log == [(10, "already-due"), (10, "soon"), (15, "later")]


def test_call_at_in_the_past_runs_now_not_back_in_time() -> None:
    sched = Scheduler()
    log: Log = []
    sched.call_at(100, lambda: sched.call_at(3, _recorder(log, sched, "past")))
    sched.run()
    assert log == [(100, "past")]


def test_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="delay_ns"):
        Scheduler().call_later(-1, lambda: None)


def test_timer_accessors() -> None:
    sched = Scheduler()
    timer: Timer = sched.call_at(42, lambda: None)
    assert timer_when_ns(timer) == 42
    assert not timer_cancelled(timer)
    sched.cancel(timer)
    assert timer_cancelled(timer)


# -- cancellation -----------------------------------------------------------------------


def test_cancelled_timer_never_runs_and_is_not_counted() -> None:
    sched = Scheduler()
    log: Log = []
    keep = sched.call_at(1, _recorder(log, sched, "keep"))
    drop = sched.call_at(2, _recorder(log, sched, "drop"))
    sched.cancel(drop)
    sched.run()
    assert log == [(1, "keep")]
    assert sched.events_run == 1
    assert not timer_cancelled(keep)


def test_cancel_twice_is_harmless() -> None:
    sched = Scheduler()
    log: Log = []
    timer = sched.call_at(1, _recorder(log, sched, "x"))
    sched.cancel(timer)
    sched.cancel(timer)
    sched.run()
    assert log == []


def test_cancel_after_it_ran_is_harmless() -> None:
    sched = Scheduler()
    log: Log = []
    timer = sched.call_at(1, _recorder(log, sched, "x"))
    sched.call_at(2, _recorder(log, sched, "y"))
    sched.run_until(1)
    sched.cancel(timer)
    sched.cancel(timer)
    sched.run()
    assert log == [(1, "x"), (2, "y")]


def test_cancel_from_inside_a_callback_of_the_same_instant() -> None:
    sched = Scheduler()
    log: Log = []
    victim = sched.call_at(5, _recorder(log, sched, "victim"), PRIORITY_LATE)
    sched.call_at(5, lambda: sched.cancel(victim))
    sched.run()
    assert log == []


def test_next_event_and_pending_see_through_cancelled_entries() -> None:
    sched = Scheduler()
    assert sched.next_event_ns() is None
    first = sched.call_at(10, lambda: None)
    sched.call_at(20, lambda: None)
    assert sched.pending() == 2
    sched.cancel(first)
    assert sched.next_event_ns() == 20
    sched.run()
    assert sched.next_event_ns() is None
    assert sched.pending() == 0


# -- run_until(instant) -----------------------------------------------------------------


def test_run_until_instant_runs_what_is_due_and_leaves_the_clock_there() -> None:
    sched = Scheduler()
    log: Log = []
    for t in (10, 20, 30):
        sched.call_at(t, _recorder(log, sched, t))
    assert sched.run_until(20) is True
    assert log == [(10, 10), (20, 20)]  # an event exactly at the instant runs
    assert sched.now_ns == 20
    assert sched.run_until(25) is True
    assert sched.now_ns == 25  # no event at 25: the clock still gets there
    sched.run()
    assert log[-1] == (30, 30)


def test_run_until_instant_with_nothing_scheduled_moves_the_clock() -> None:
    sched = Scheduler()
    sched.run_until(5 * S)
    assert sched.now_ns == 5 * S


def test_run_until_an_instant_in_the_past_does_not_turn_time_back() -> None:
    sched = Scheduler()
    sched.run_until(100)
    sched.run_until(50)
    assert sched.now_ns == 100


# -- run_until(predicate) ---------------------------------------------------------------


def test_run_until_predicate_stops_right_after_the_event_that_satisfies_it() -> None:
    sched = Scheduler()
    log: Log = []
    state = {"ready": False}

    def become_ready() -> None:
        state["ready"] = True

    sched.call_at(10, become_ready)
    sched.call_at(10, _recorder(log, sched, "same-instant-after"))
    sched.call_at(20, _recorder(log, sched, "later"))
    assert sched.run_until(lambda: state["ready"]) is True
    assert sched.now_ns == 10
    assert log == []
    sched.run()
    assert log == [(10, "same-instant-after"), (20, "later")]


def test_run_until_predicate_already_true_runs_nothing() -> None:
    sched = Scheduler()
    log: Log = []
    sched.call_at(0, _recorder(log, sched, "x"))
    assert sched.run_until(lambda: True) is True
    assert log == []


def test_run_until_predicate_times_out_at_the_deadline() -> None:
    sched = Scheduler()
    log: Log = []
    sched.run_until(1_000)
    sched.call_at(1_000 + 40, _recorder(log, sched, "inside"))
    sched.call_at(1_000 + 60, _recorder(log, sched, "outside"))
    assert sched.run_until(lambda: False, timeout_ns=50) is False
    assert log == [(1_040, "inside")]
    assert sched.now_ns == 1_050
    sched.run()
    assert log[-1] == (1_060, "outside")


def test_run_until_predicate_returns_false_when_nothing_is_left() -> None:
    sched = Scheduler()
    sched.call_at(10, lambda: None)
    assert sched.run_until(lambda: False) is False
    assert sched.now_ns == 10


def test_run_until_predicate_on_the_wall_clock_times_out_in_wall_time() -> None:
    sched = Scheduler(WallClock())
    t0 = time.monotonic()
    assert sched.run_until(lambda: False, timeout_ns=50 * MS) is False
    elapsed = time.monotonic() - t0
    assert 0.045 <= elapsed < WAIT_S
    assert sched.now_ns >= 50 * MS


# -- run() and stop() -------------------------------------------------------------------


def test_run_drains_everything_on_the_virtual_clock() -> None:
    sched = Scheduler()
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if count < 1000:
            sched.call_later(MS, tick)

    sched.call_soon(tick)
    sched.run()
    assert count == 1000
    assert sched.now_ns == 999 * MS
    assert sched.events_run == 1000


def test_run_with_nothing_scheduled_returns_at_once() -> None:
    sched = Scheduler()
    sched.run()
    assert sched.now_ns == 0


def test_stop_from_a_callback_returns_after_it_and_run_resumes() -> None:
    sched = Scheduler()
    log: Log = []

    def stopper() -> None:
        log.append((sched.now_ns, "stopper"))
        sched.stop()

    sched.call_at(10, stopper)
    sched.call_at(10, _recorder(log, sched, "same-instant"))
    sched.call_at(20, _recorder(log, sched, "later"))
    sched.run()
    assert log == [(10, "stopper")]
    assert sched.now_ns == 10
    sched.run()
    assert log == [(10, "stopper"), (10, "same-instant"), (20, "later")]


def test_stop_during_run_until_leaves_the_clock_where_it_stopped() -> None:
    sched = Scheduler()
    sched.call_at(10, sched.stop)
    sched.run_until(1_000)
    assert sched.now_ns == 10


def test_stop_from_another_thread_ends_an_endless_virtual_run() -> None:
    sched = Scheduler()
    running = threading.Event()

    def spin() -> None:
        running.set()
        sched.call_later(1, spin)

    sched.call_soon(spin)

    def stopper() -> None:
        if running.wait(WAIT_S):
            sched.stop()

    thread = threading.Thread(target=stopper, daemon=True)
    thread.start()
    sched.run()  # returns only because of stop(): spin reschedules itself for ever
    thread.join(WAIT_S)
    assert running.is_set()


def test_stop_from_another_thread_wakes_an_idle_wall_clock() -> None:
    sched = Scheduler(WallClock())
    started = threading.Event()
    sched.call_soon(started.set)

    def stopper() -> None:
        if started.wait(WAIT_S):
            sched.stop()

    threading.Thread(target=stopper, daemon=True).start()
    t0 = time.monotonic()
    sched.run()
    assert time.monotonic() - t0 < WAIT_S


# -- post_threadsafe and the entry queue ------------------------------------------------


def test_post_threadsafe_wakes_a_sleeping_wall_clock_at_once() -> None:
    sched = Scheduler(WallClock())
    far = sched.call_later(60 * S, lambda: None)  # the scheduler sleeps toward this
    asleep = threading.Event()
    posted_at: list[float] = []
    ran_at: list[float] = []
    sched.call_soon(asleep.set)

    def poster() -> None:
        if not asleep.wait(WAIT_S):
            return
        # A tiny bounded pause so the scheduler is inside its wait, not before it.
        time.sleep(0.01)
        posted_at.append(time.monotonic())
        sched.post_threadsafe(lambda: ran_at.append(time.monotonic()))

    thread = threading.Thread(target=poster, daemon=True)
    thread.start()
    assert sched.run_until(lambda: bool(ran_at), timeout_ns=int(WAIT_S * S)) is True
    thread.join(WAIT_S)
    assert ran_at[0] - posted_at[0] < 0.5  # at once, not when the 60 s timer is due
    sched.cancel(far)


def test_posted_callbacks_run_in_posting_order_on_the_scheduler_thread() -> None:
    sched = Scheduler(WallClock())
    seen: list[tuple[int, int]] = []
    done = threading.Event()
    scheduler_thread = threading.get_ident()

    def recorder(i: int) -> Callable[[], None]:
        return lambda: seen.append((i, threading.get_ident()))

    def poster() -> None:
        for i in range(100):
            sched.post_threadsafe(recorder(i))
        sched.post_threadsafe(done.set)

    thread = threading.Thread(target=poster, daemon=True)
    thread.start()
    assert sched.run_until(done.is_set, timeout_ns=int(WAIT_S * S)) is True
    thread.join(WAIT_S)
    assert [i for i, _ in seen] == list(range(100))
    assert {ident for _, ident in seen} == {scheduler_thread}


def test_post_threadsafe_on_the_virtual_clock_runs_on_the_next_run() -> None:
    sched = Scheduler()
    log: list[str] = []
    sched.post_threadsafe(lambda: log.append("posted"))
    sched.run()
    assert log == ["posted"]


@pytest.mark.parametrize("clock", ["virtual", "wall"])
def test_entry_queue_drained_in_bounded_passes_does_not_starve_a_due_timer(
    clock: str,
) -> None:
    sched = Scheduler(WallClock() if clock == "wall" else VirtualClock())
    order: list[str] = []
    reposts = 0

    def chatty() -> None:
        nonlocal reposts
        order.append("posted")
        reposts += 1
        if reposts < 50:  # bounded so a broken scheduler still finishes the test
            sched.post_threadsafe(chatty)

    sched.call_soon(lambda: order.append("timer"))
    sched.post_threadsafe(chatty)
    sched.run_until(lambda: reposts >= 50 and "timer" in order, timeout_ns=int(WAIT_S * S))
    # One pass runs what was posted when it began; the due timer comes before the next.
    assert order.index("timer") <= 2


# -- exceptions -------------------------------------------------------------------------


def test_an_exception_in_a_callback_propagates_and_the_scheduler_runs_again() -> None:
    sched = Scheduler()
    log: Log = []

    def boom() -> None:
        raise RuntimeError("bug in a callback")

    sched.call_at(10, boom)
    sched.call_at(20, _recorder(log, sched, "after"))
    with pytest.raises(RuntimeError, match="bug in a callback"):
        sched.run()
    assert sched.now_ns == 10
    sched.run()
    assert log == [(20, "after")]


def test_an_exception_in_a_posted_callback_keeps_the_rest_of_the_queue() -> None:
    sched = Scheduler()
    log: list[str] = []

    def boom() -> None:
        raise RuntimeError("posted bug")

    sched.post_threadsafe(boom)
    sched.post_threadsafe(lambda: log.append("next"))
    with pytest.raises(RuntimeError):
        sched.run()
    sched.run()
    assert log == ["next"]


def test_an_exception_during_run_until_does_not_move_the_clock_past_unrun_events() -> None:
    sched = Scheduler()
    seen_ns: list[int] = []

    def boom() -> None:
        raise RuntimeError("bug in a callback")

    sched.call_at(10, boom)
    sched.call_at(20, lambda: seen_ns.append(sched.now_ns))
    with pytest.raises(RuntimeError):
        sched.run_until(100)
    assert sched.now_ns == 10
    sched.run_until(100)
    assert seen_ns == [20]
    assert sched.now_ns == 100


# -- determinism: a random mix of scheduling, from outside and inside callbacks ---------
#
# A program is a list of scripts; script 0 runs before the scheduler starts, and every
# scheduled callback runs the script it names when it fires. Ops schedule (call_at with
# an absolute time, call_later with a delay, at some priority) or cancel any timer made
# so far (before or after it ran, or twice). A budget on the number of scheduled
# callbacks keeps self-scheduling scripts finite. The same program runs on the real
# scheduler (twice) and on a naive reference model: pick the live entry with the least
# (t, priority, seq).

_PRIORITIES = (PRIORITY_IRQ, PRIORITY_NORMAL, PRIORITY_LATE)
_BUDGET = 60

_schedule_op = st.tuples(
    st.sampled_from(["at", "later"]),
    st.integers(0, 40),  # absolute time for "at", delay for "later"
    st.sampled_from(_PRIORITIES),
    st.integers(0, 7),  # the script the callback runs (taken modulo the script count)
)
_cancel_op = st.tuples(st.just("cancel"), st.integers(0, 200))
_op = st.one_of(_schedule_op, _cancel_op)
_program = st.lists(st.lists(_op, max_size=6), min_size=1, max_size=8)

Op = tuple[str, int] | tuple[str, int, int, int]
Program = list[list[Op]]


def _run_on_scheduler(program: Program) -> list[tuple[int, int, int]]:
    sched = Scheduler()
    timers: list[Timer] = []
    log: list[tuple[int, int, int]] = []
    budget = _BUDGET

    def run_script(index: int) -> None:
        nonlocal budget
        for op in program[index % len(program)]:
            if op[0] == "cancel":
                if timers:
                    sched.cancel(timers[op[1] % len(timers)])
                continue
            _, when, priority, script = op  # type: ignore[misc]
            if budget == 0:
                continue
            budget -= 1
            ident = len(timers)

            def fire(ident: int = ident, priority: int = priority, script: int = script) -> None:
                log.append((sched.now_ns, priority, ident))
                run_script(script)

            if op[0] == "at":
                timers.append(sched.call_at(when, fire, priority))
            else:
                timers.append(sched.call_later(when, fire, priority))

    run_script(0)
    sched.run()
    return log


@dataclass
class _ModelEntry:
    t: int
    priority: int
    seq: int
    script: int
    cancelled: bool = False


@dataclass
class _Model:
    """The reference: a list scanned for the least (t, priority, seq); no heap."""

    program: Program
    now: int = 0
    budget: int = _BUDGET
    entries: list[_ModelEntry] = field(default_factory=list)
    log: list[tuple[int, int, int]] = field(default_factory=list)

    def run_script(self, index: int) -> None:
        for op in self.program[index % len(self.program)]:
            if op[0] == "cancel":
                if self.entries:
                    self.entries[op[1] % len(self.entries)].cancelled = True
                continue
            _, when, priority, script = op  # type: ignore[misc]
            if self.budget == 0:
                continue
            self.budget -= 1
            t = max(when, self.now) if op[0] == "at" else self.now + when
            self.entries.append(_ModelEntry(t, priority, len(self.entries), script))

    def run(self) -> list[tuple[int, int, int]]:
        self.run_script(0)
        ran: set[int] = set()
        while True:
            live = [e for e in self.entries if not e.cancelled and e.seq not in ran]
            if not live:
                return self.log
            entry = min(live, key=lambda e: (e.t, e.priority, e.seq))
            ran.add(entry.seq)
            self.now = entry.t
            self.log.append((entry.t, entry.priority, entry.seq))
            self.run_script(entry.script)


@settings(max_examples=300, deadline=None)
@given(_program)
def test_any_mix_runs_in_t_priority_seq_order_and_is_deterministic(program: Program) -> None:
    first = _run_on_scheduler(program)
    second = _run_on_scheduler(program)
    assert first == second
    assert first == _Model(program).run()
    times = [t for t, _, _ in first]
    assert times == sorted(times)


def test_cancel_where_cancels_the_matching_timers() -> None:
    sched = Scheduler()
    log: Log = []
    keep = [sched.call_later(5 * MS, _recorder(log, sched, f"keep{i}")) for i in range(2)]
    doomed = [sched.call_later(5 * MS, _recorder(log, sched, f"drop{i}")) for i in range(3)]
    doomed.append(sched.call_later(9 * MS, _recorder(log, sched, "drop3")))
    ids = {id(t[2]) for t in doomed}

    cancelled = sched.cancel_where(lambda cb: id(cb) in ids)

    assert cancelled == 4
    assert all(timer_cancelled(t) for t in doomed)
    assert not any(timer_cancelled(t) for t in keep)
    sched.run()
    assert log == [(5 * MS, "keep0"), (5 * MS, "keep1")]
    assert sched.cancel_where(lambda cb: True) == 0  # nothing left to cancel


@pytest.mark.parametrize("same_instant", [1, 3])
def test_a_cancelled_timer_does_not_move_virtual_time(same_instant: int) -> None:
    sched = Scheduler()
    log: Log = []
    sched.call_later(2 * MS, _recorder(log, sched, "live"))
    dead = [sched.call_later(7 * MS, _recorder(log, sched, "dead"))
            for _ in range(same_instant)]
    for timer in dead:
        sched.cancel(timer)
    sched.run()
    assert log == [(2 * MS, "live")]
    assert sched.now_ns == 2 * MS
    assert not sched.run_until(lambda: False)  # nothing left; time stays
    assert sched.now_ns == 2 * MS


def test_keep_instants_a_late_process_keeps_its_timers_instants() -> None:
    """A device's scheduler (``keep_instants``) that the host's CPU runs late: a callback
    reads the instant it was due, what it schedules is exact from there, and posted work
    never reads past a timer still due (an event it stamps cannot overtake one owed)."""
    ms = 1_000_000
    sched = Scheduler(WallClock(), keep_instants=True)
    seen: list[tuple[str, int]] = []

    def edge(name: str) -> Callable[[], None]:
        return lambda: seen.append((name, sched.now_ns))

    def starved() -> None:
        seen.append(("starved", sched.now_ns))
        time.sleep(0.05)  # the process is descheduled: later timers are all overdue
        sched.post_threadsafe(edge("posted"))
        sched.call_later(5 * ms, edge("exact"))

    first = sched.call_later(1 * ms, starved)
    due = timer_when_ns(first)
    overdue = timer_when_ns(sched.call_later(2 * ms, edge("overdue")))
    sched.run_until(lambda: len(seen) == 4, timeout_ns=2_000 * ms)
    # The posted work ran at the first timer owed: the wall was later, but "overdue" was
    # not done yet.
    assert due < overdue < due + 50 * ms
    assert seen == [("starved", due), ("posted", overdue), ("overdue", overdue),
                    ("exact", due + 5 * ms)]
    assert sched.now_ns >= due + 50 * ms  # outside run*: the wall's time


def test_without_keep_instants_a_late_callback_reads_the_wall() -> None:
    ms = 1_000_000
    sched = Scheduler(WallClock())
    seen: list[int] = []
    first = sched.call_later(1 * ms, lambda: time.sleep(0.02))
    sched.call_at(timer_when_ns(first) + 2 * ms, lambda: seen.append(sched.now_ns))
    sched.run_until(lambda: bool(seen), timeout_ns=2_000 * ms)
    assert seen[0] >= timer_when_ns(first) + 20 * ms
