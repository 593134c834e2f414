"""The active-object kernel's contract (firmware/_kernel.py): priority order, run to
completion, bounded passes, dropped triggers, timers and their cancellation at shutdown,
a hung object, status publishing, and that transitions' callbacks run as the library
orders them (the kernel calls them bound, without the library's per-call lookup).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from firmware._kernel import _MAX_EVENTS_PER_PASS, ActiveObject, Kernel
from firmware._status import StatusEvent
from hal import Board, Scheduler, timer_cancelled

MS = 1_000_000


def _kernel() -> Kernel:
    return Kernel(cast(Board, SimpleNamespace(scheduler=Scheduler())))


class _Recorder(ActiveObject):
    """Two states; every callback appends to a log shared by the test."""

    NAME = "recorder"
    PRIORITY = 1
    STATES = ["idle", "busy"]
    INITIAL = "idle"
    TRANSITIONS = [
        {"trigger": "note", "source": ["idle", "busy"], "dest": None, "after": "_note"},
        {"trigger": "start", "source": "idle", "dest": "busy",
         "conditions": "_allowed", "before": "_before", "after": "_after"},
        {"trigger": "stop", "source": "busy", "dest": "idle"},
    ]

    def __init__(self, kernel: Kernel, log: list[Any], name: str = "recorder",
                 priority: int = 1) -> None:
        self.NAME = name
        self.PRIORITY = priority
        self.log = log
        self.allowed = True
        super().__init__(kernel)

    def _note(self, value: object = None, **_: Any) -> None:
        self.log.append((self.NAME, value))

    def _allowed(self, **_: Any) -> bool:
        self.log.append((self.NAME, "condition"))
        return self.allowed

    def _before(self, **kw: Any) -> None:
        self.log.append((self.NAME, "before", kw))

    def _after(self, **_: Any) -> None:
        self.log.append((self.NAME, "after"))

    def on_exit_idle(self, **_: Any) -> None:
        self.log.append((self.NAME, "exit idle"))

    def on_enter_busy(self, **_: Any) -> None:
        self.log.append((self.NAME, "enter busy"))


def test_higher_priority_runs_first_and_each_event_runs_to_completion() -> None:
    kernel = _kernel()
    log: list[Any] = []
    low = _Recorder(kernel, log, "low", priority=1)
    high = _Recorder(kernel, log, "high", priority=9)
    for ao in (low, high):
        kernel.add(ao)
    low.post("note", value=1)
    high.post("note", value=2)
    low.post("note", value=3)
    high.post("note", value=4)
    kernel.scheduler.run()
    assert log == [("high", 2), ("high", 4), ("low", 1), ("low", 3)]
    assert kernel.triggers == 4
    assert (low.processed, high.processed) == (2, 2)


def test_callbacks_run_in_the_order_transitions_defines_with_the_event_data() -> None:
    kernel = _kernel()
    log: list[Any] = []
    ao = _Recorder(kernel, log)
    kernel.add(ao)
    statuses: list[StatusEvent] = []
    kernel.subscribe(statuses.append)
    ao.post("start", reason="job")
    kernel.scheduler.run()
    assert log == [("recorder", "condition"), ("recorder", "before", {"reason": "job"}),
                   ("recorder", "exit idle"), ("recorder", "enter busy"),
                   ("recorder", "after")]
    assert ao.state == "busy"
    assert [(s.kind, s.source, s.detail) for s in statuses] == [
        ("state", "recorder", {"state": "busy"})]


def test_a_failed_condition_and_an_event_that_does_not_apply_change_nothing() -> None:
    kernel = _kernel()
    log: list[Any] = []
    ao = _Recorder(kernel, log)
    kernel.add(ao)
    ao.allowed = False
    ao.post("start")
    ao.post("stop")  # no transition from idle: dropped and counted
    kernel.scheduler.run()
    assert ao.state == "idle"
    assert log == [("recorder", "condition")]
    assert ao.ignored == 1


def test_an_unknown_event_is_a_bug() -> None:
    kernel = _kernel()
    ao = _Recorder(kernel, [])
    kernel.add(ao)
    ao.post("no_such_event")
    with pytest.raises(ValueError, match="no such event 'no_such_event'"):
        kernel.scheduler.run()


class _Relay(_Recorder):
    """A recorder whose ``relay`` event posts ``note`` to another object."""

    TRANSITIONS = [*_Recorder.TRANSITIONS,
                   {"trigger": "relay", "source": "idle", "dest": None, "after": "_relay"}]

    def __init__(self, kernel: Kernel, log: list[Any], to: ActiveObject) -> None:
        self.to = to
        super().__init__(kernel, log, "relay", priority=9)

    def _relay(self, value: object = None, **_: Any) -> None:
        self.log.append((self.NAME, "relay", value))
        self.to.post("note", value=value)


def test_an_event_posted_inside_a_pass_is_taken_by_the_same_pass() -> None:
    kernel = _kernel()
    log: list[Any] = []
    low = _Recorder(kernel, log, "low", priority=1)
    relay = _Relay(kernel, log, low)
    for ao in (low, relay):
        kernel.add(ao)
    relay.post("relay", value=7)
    kernel.scheduler.run()
    assert log == [("relay", "relay", 7), ("low", 7)]
    # One pass for both events: the post from inside it scheduled no pass of its own.
    assert kernel.scheduler.events_run == 1


def test_after_a_bug_in_a_trigger_later_events_are_still_dispatched() -> None:
    kernel = _kernel()
    log: list[Any] = []
    ao = _Recorder(kernel, log)
    kernel.add(ao)
    ao.post("no_such_event")
    with pytest.raises(ValueError):
        kernel.scheduler.run()
    ao.post("note", value=1)
    kernel.scheduler.run()
    assert log == [("recorder", 1)]


def test_a_pass_is_bounded_so_interrupts_of_the_same_instant_get_in() -> None:
    kernel = _kernel()
    log: list[Any] = []
    ao = _Recorder(kernel, log)
    kernel.add(ao)
    for i in range(_MAX_EVENTS_PER_PASS + 5):
        ao.post("note", value=i)
    sched = kernel.scheduler
    # Something else due now, scheduled after the pass: it runs once the pass yields.
    sched.call_soon(lambda: log.append(("other", len(log))))
    sched.run()
    assert log.index(("other", _MAX_EVENTS_PER_PASS)) == _MAX_EVENTS_PER_PASS
    assert [v for who, v in log if who == "recorder"] == list(range(_MAX_EVENTS_PER_PASS + 5))
    assert sched.now_ns == 0


def test_timers_post_at_their_instant_and_cancel() -> None:
    kernel = _kernel()
    log: list[Any] = []
    ao = _Recorder(kernel, log)
    kernel.add(ao)
    sched = kernel.scheduler
    ao.after(5 * MS, "note", value="five")
    cancelled = ao.after(3 * MS, "note", value="three")
    kernel.cancel(cancelled)
    kernel.cancel(None)  # harmless
    sched.run()
    assert log == [("recorder", "five")]
    assert sched.now_ns == 5 * MS


def test_shutdown_cancels_every_timer_of_the_kernel_and_drops_every_queue() -> None:
    kernel = _kernel()
    log: list[Any] = []
    ao = _Recorder(kernel, log)
    kernel.add(ao)
    sched = kernel.scheduler
    timers = [ao.after(n * MS, "note", value=n) for n in (1, 1, 2, 300_000)]
    ticks: list[int] = []
    kernel.every(10 * MS, lambda: ticks.append(sched.now_ns))
    foreign = sched.call_later(4 * MS, lambda: log.append(("board", "still runs")))
    ao.post("note", value="queued")
    kernel.shutdown()
    assert all(timer_cancelled(t) for t in timers)
    assert not timer_cancelled(foreign)
    ao.post("note", value="after")  # a dead kernel takes nothing
    sched.run()
    assert log == [("board", "still runs")]
    assert ticks == []
    assert sched.now_ns == 4 * MS  # no leftover timer of the kernel moved time on


def test_a_hung_object_keeps_its_events_while_the_others_run() -> None:
    kernel = _kernel()
    log: list[Any] = []
    stuck = _Recorder(kernel, log, "stuck", priority=9)
    fine = _Recorder(kernel, log, "fine", priority=1)
    for ao in (stuck, fine):
        kernel.add(ao)
    stuck.hung = True
    stuck.post("note", value=1)
    fine.post("note", value=2)
    kernel.scheduler.run()
    assert log == [("fine", 2)]
    assert len(stuck.queue) == 1 and stuck.processed == 0
