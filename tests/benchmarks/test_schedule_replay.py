"""The scheduler benchmark's recording of the firmware's schedule, and its replays.

Plumbing and faithfulness only: no timing is asserted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks._firmware import board_file, start_job
from benchmarks._schedule_recording import How, RecordingScheduler, record_print_job
from benchmarks._schedule_replay import events, replay_bare, replay_ours, replay_simpy
from firmware import StatusEvent
from hal import PRIORITY_IRQ, PRIORITY_NORMAL, Scheduler, Timer, VirtualClock

PAGES = 5


def test_a_recording_holds_each_call_who_made_it_and_each_cancel() -> None:
    sched = RecordingScheduler(VirtualClock())
    ran: list[str] = []
    timers: dict[str, Timer] = {}

    def first() -> None:
        ran.append("first")
        Scheduler.cancel(timers["second"])  # on the class, as the kernel cancels
        timers["irq"] = sched.call_soon(lambda: ran.append("irq"), PRIORITY_IRQ)

    def second() -> None:
        ran.append("second")

    timers["first"] = sched.call_at(100, first)
    timers["second"] = sched.call_later(200, second)
    sched.run()
    recording = sched.recording(pages=0)

    assert ran == ["first", "irq"]
    assert recording.how == (How.AT, How.LATER, How.SOON)
    assert recording.t_ns == (100, 200, 100)
    assert recording.delay_ns == (100, 200, 0)
    assert recording.priority == (PRIORITY_NORMAL, PRIORITY_NORMAL, PRIORITY_IRQ)
    assert recording.root_ops == (0, 1)
    assert recording.ops == ((~1, 2), (), ())  # first cancelled 1, then scheduled 2
    assert recording.fired == (0, 2)
    assert recording.cancels == 1
    assert events(recording) == 2


def test_a_cancel_before_the_run_is_the_roots() -> None:
    sched = RecordingScheduler(VirtualClock())
    sched.call_later(10, lambda: None)
    doomed = sched.call_later(20, lambda: None)
    sched.cancel(doomed)
    sched.run()
    recording = sched.recording(pages=0)
    assert recording.root_ops == (0, 1, ~1)
    assert recording.ops == ((), ())


def test_cancel_where_sees_the_callbacks_as_given() -> None:
    sched = RecordingScheduler(VirtualClock())

    def mine() -> None:
        raise AssertionError("cancelled: must not run")

    def other() -> None:
        pass

    sched.call_later(10, mine)
    sched.call_later(10, other)
    assert sched.cancel_where(lambda callback: callback is mine) == 1
    sched.run()
    assert sched.recording(pages=0).fired == (1,)


def test_recording_does_not_change_the_run(tmp_path: Path) -> None:
    recording = record_print_job(PAGES)
    plain = Scheduler(VirtualClock())
    _, printer, job = start_job(board_file(tmp_path, PAGES + 10), PAGES, plain)
    done: list[StatusEvent] = []
    printer.subscribe(lambda event: done.append(event) if event.kind == "job_done" else None)
    plain.run_until(lambda: bool(done), timeout_ns=PAGES * 10 * 10**9)

    assert job.delivered == PAGES
    assert len(recording.fired) == plain.events_run
    assert recording.end_ns == plain.now_ns == done[0].t_ns
    assert recording.cancels > 0
    assert any(p == PRIORITY_IRQ for p in recording.priority)
    assert {How.AT, How.LATER} <= set(recording.how)


@pytest.mark.parametrize("replay", [replay_ours, replay_simpy, replay_bare])
def test_each_replay_fires_the_recorded_callbacks_in_order(
        replay: Callable[..., int]) -> None:
    # Each replay checks its order against the recording and raises if it drifted.
    assert replay(record_print_job(PAGES)) > 0


@pytest.mark.parametrize("replay", [replay_ours, replay_simpy, replay_bare])
def test_a_replay_that_drifts_from_the_recording_fails(replay: Callable[..., int]) -> None:
    recording = record_print_job(PAGES)
    fired = list(recording.fired)
    fired[10], fired[11] = fired[11], fired[10]
    with pytest.raises(RuntimeError, match="recorded order at callback 10"):
        replay(dataclasses.replace(recording, fired=tuple(fired)))
