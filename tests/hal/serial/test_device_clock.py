"""DeviceClock (hal/serial/_device_clock.py): the device's clock as the host hears it, and
timers that run only once the device's clock is known to have passed their instant.

A virtual scheduler and a fake ``send`` that records the ``board.clock`` requests and
answers them when the test says: nothing here touches a line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hal import PRIORITY_IRQ, Scheduler, timer_cancelled, timer_when_ns
from hal.serial import LinkDown, LinkDownReason, PrinterLinkError, UnknownCommand
from hal.serial._device_clock import DeviceClock

MS = 1_000_000


class Device:
    """The far end as the clock sees it: ``board.clock`` requests, answered on demand."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.synced = True
        self.asked: list[tuple[Callable[[Any], None], Callable[[PrinterLinkError], None]]] = []
        self.sent: list[str] = []
        self.clock = DeviceClock(scheduler, self.send, lambda: self.synced)

    def send(self, cmd: str, args: dict[str, Any] | None,
             on_result: Callable[[Any], None] | None,
             on_error: Callable[[PrinterLinkError], None] | None) -> None:
        assert cmd == "board.clock" and args is None
        assert on_result is not None and on_error is not None
        self.sent.append(cmd)
        self.asked.append((on_result, on_error))

    def answer(self, t_ns: int) -> None:
        on_result, _ = self.asked.pop(0)
        on_result({"t_ns": t_ns})

    def refuse(self, error: PrinterLinkError) -> None:
        _, on_error = self.asked.pop(0)
        on_error(error)


@pytest.fixture
def sched() -> Scheduler:
    return Scheduler()


@pytest.fixture
def dev(sched: Scheduler) -> Device:
    return Device(sched)


def test_a_timer_runs_once_an_instant_after_it_is_heard_and_not_before(
        sched: Scheduler, dev: Device) -> None:
    ran: list[int] = []
    dev.clock.heard(1_000)
    timer = dev.clock.call_at(5_000, lambda: ran.append(sched.now_ns))
    assert timer_when_ns(timer) == 5_000
    dev.clock.heard(5_000)  # the instant itself: not passed
    sched.run_until(sched.now_ns)
    assert ran == []
    dev.clock.heard(5_001)
    assert ran == []  # on the scheduler, never inside the frame's handling
    sched.run_until(sched.now_ns)
    assert ran == [sched.now_ns] and dev.clock.now_ns == 5_001


def test_the_clock_never_goes_back_but_a_reboot_restarts_it(dev: Device) -> None:
    dev.clock.heard(9_000)
    dev.clock.heard(3_000)
    assert dev.clock.now_ns == 9_000
    timer = dev.clock.call_at(20_000, lambda: None)
    dev.clock.restart(100)
    assert dev.clock.now_ns == 100 and timer_cancelled(timer)


def test_with_nothing_heard_the_device_is_asked_when_it_should_have_passed(
        sched: Scheduler, dev: Device) -> None:
    ran: list[int] = []
    dev.clock.heard(1 * MS)
    dev.clock.call_at(11 * MS, lambda: ran.append(sched.now_ns))
    sched.run_until(10 * MS)
    assert dev.sent == []  # the host's estimate has not passed it yet
    sched.run_until(11 * MS)
    assert dev.sent == ["board.clock"]
    dev.answer(10 * MS)  # the device runs behind the estimate: not yet
    sched.run_until(sched.now_ns)
    assert ran == []
    sched.run_until(20 * MS)
    assert dev.sent == ["board.clock"] * 2  # asked again, no sooner than a floor
    dev.answer(11 * MS + 1)
    sched.run_until(sched.now_ns)
    assert ran == [20 * MS]


def test_a_quiet_link_never_fires_a_timer_and_asks_one_question_at_a_time(
        sched: Scheduler, dev: Device) -> None:
    ran: list[int] = []
    dev.clock.call_at(1 * MS, lambda: ran.append(sched.now_ns))
    dev.clock.call_at(2 * MS, lambda: ran.append(sched.now_ns))
    sched.run_until(5_000 * MS)
    assert ran == [] and len(dev.sent) == 1  # the answer never came: nothing else either
    dev.answer(3 * MS)
    sched.run_until(sched.now_ns)
    assert ran == [5_000 * MS, 5_000 * MS]
    assert sched.next_event_ns() is None  # nothing left to look out for


def test_a_cancelled_timer_never_runs_and_is_not_asked_about(
        sched: Scheduler, dev: Device) -> None:
    ran: list[str] = []
    timer = dev.clock.call_at(1 * MS, lambda: ran.append("late"))
    Scheduler.cancel(timer)
    sched.run_until(100 * MS)
    assert dev.sent == [] and ran == []
    dev.clock.heard(2 * MS)
    sched.run_until(sched.now_ns)
    assert ran == []


def test_timers_due_together_run_in_the_order_they_were_made(
        sched: Scheduler, dev: Device) -> None:
    ran: list[str] = []
    for name, t in (("b", 20), ("a", 10), ("c", 20)):
        dev.clock.call_at(t, lambda n=name: ran.append(n))  # type: ignore[misc]
    dev.clock.heard(100)
    sched.run_until(sched.now_ns)
    assert ran == ["a", "b", "c"]


def test_a_timer_made_due_by_an_event_runs_after_that_events_interrupt(
        sched: Scheduler, dev: Device) -> None:
    """What the serial board does with an event: raise its line, then hear its stamp. The
    interrupt's dispatch was scheduled first, at a more urgent priority."""
    ran: list[str] = []
    dev.clock.call_at(10, lambda: ran.append("deadline"))
    sched.call_soon(lambda: ran.append("isr"), PRIORITY_IRQ)  # raise_line's dispatch
    dev.clock.heard(50)
    sched.run_until(sched.now_ns)
    assert ran == ["isr", "deadline"]


def test_an_anchored_timer_counts_from_the_devices_answer_after_the_commands(
        sched: Scheduler, dev: Device) -> None:
    ran: list[str] = []
    commands: list[str] = []

    def pick() -> None:  # one scheduler callback: a pulse, two timers anchored on it
        commands.append("pickup.pulse")
        dev.clock.call_after_commands(10 * MS, lambda: ran.append("feed"))
        commands.append("output.set")
        dev.clock.call_after_commands(30 * MS, lambda: ran.append("exit"))

    sched.call_soon(pick)
    sched.run_until(sched.now_ns)
    assert dev.sent == ["board.clock"]  # one question for both, after every command
    dev.answer(500 * MS)  # the device had carried them out by then
    dev.clock.heard(510 * MS)
    sched.run_until(sched.now_ns)
    assert ran == []  # 510 ms is the feed deadline itself: not passed
    dev.clock.heard(510 * MS + 1)
    sched.run_until(sched.now_ns)
    assert ran == ["feed"]
    dev.clock.heard(531 * MS)
    sched.run_until(sched.now_ns)
    assert ran == ["feed", "exit"]


def test_an_anchor_is_unknown_until_answered(sched: Scheduler, dev: Device) -> None:
    timer = dev.clock.call_after_commands(10, lambda: None)
    assert timer_when_ns(timer) > 1 << 61  # later than any instant
    sched.run_until(sched.now_ns)
    dev.answer(1_000)
    assert timer_when_ns(timer) == 1_010


def test_an_anchor_lost_with_the_link_is_asked_again_when_the_board_is_synced(
        sched: Scheduler, dev: Device) -> None:
    ran: list[str] = []
    dev.clock.call_after_commands(10, lambda: ran.append("due"))
    sched.run_until(sched.now_ns)
    dev.refuse(LinkDown(LinkDownReason.SILENCE, "gone"))
    dev.synced = False
    sched.run_until(1_000 * MS)
    assert ran == [] and dev.asked == []
    dev.synced = True
    dev.clock.synced(2_000)
    sched.run_until(sched.now_ns)
    assert len(dev.asked) == 2  # the first seed of the command lead, then the anchor
    dev.answer(2_500)
    dev.answer(3_000)
    dev.clock.heard(3_011)
    sched.run_until(sched.now_ns)
    assert ran == ["due"]


def test_a_synced_board_is_asked_its_clock_a_few_times_to_seed_the_command_lead(
        sched: Scheduler, dev: Device) -> None:
    dev.clock.synced(0)
    answers = 0
    while dev.asked:  # one exchange at a time, a millisecond apart
        assert len(dev.asked) == 1
        dev.answer(sched.now_ns + 1_005 * MS)  # clocks 1 s apart, a line of 5 ms
        answers += 1
        sched.run_until(sched.now_ns + 2 * MS)
    assert answers == 4
    # A command given 1,005 ms before the device instant wanted is carried out then.
    assert dev.clock.host_ns_for_command_at(2_000 * MS) == 995 * MS
    dev.clock.synced(sched.now_ns)  # measures known: no more seeds
    assert dev.asked == []


def test_not_synced_nothing_is_asked(sched: Scheduler, dev: Device) -> None:
    dev.synced = False
    dev.clock.call_at(1 * MS, lambda: None)
    dev.clock.call_after_commands(1 * MS, lambda: None)
    sched.run_until(100 * MS)
    assert dev.sent == []


def test_a_device_without_board_clock_is_estimated_from_its_events(
        sched: Scheduler, dev: Device, caplog: pytest.LogCaptureFixture) -> None:
    ran: list[int] = []
    dev.clock.heard(1 * MS)
    dev.clock.call_after_commands(10 * MS, lambda: ran.append(sched.now_ns))
    sched.run_until(sched.now_ns)
    dev.refuse(UnknownCommand("no command 'board.clock'"))
    assert "does not answer board.clock" in caplog.text
    sched.run_until(100 * MS)
    assert ran == [10 * MS + 1]  # its clock read 1 ms at host 0: 11 ms is passed at 10 ms + 1
    assert dev.sent == ["board.clock"]
