"""The interrupt controller's contract (hal/_irq.py): priority order, ISRs before
ordinary events of the same instant, the per-line pending FIFO, masking, enable/disable,
spurious raises, listeners and reset."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from boards import load_board
from hal import (
    PRIORITY_LATE,
    InterruptController,
    IrqEvent,
    IrqLineSpec,
    Isr,
    Scheduler,
    UnknownIrqLine,
    irq_lines_of,
)

# Two lines share priority 5 so the tie-break (lower line number first) shows.
LINES = (
    IrqLineSpec(0, "low", 1),
    IrqLineSpec(1, "high_b", 5),
    IrqLineSpec(2, "high_a", 5),
    IrqLineSpec(3, "top", 9),
)


@pytest.fixture
def sched() -> Scheduler:
    return Scheduler()


@pytest.fixture
def irq(sched: Scheduler) -> InterruptController:
    return InterruptController(sched, LINES)


Log = list[tuple[str, object]]


def _isr(log: Log) -> Isr:
    def isr(event: IrqEvent) -> None:
        log.append((event.name, event.value))

    return isr


def _attach_all(irq: InterruptController, log: Log) -> None:
    for spec in LINES:
        irq.attach(spec.number, _isr(log))


# -- configuration ----------------------------------------------------------------------


def test_lines_are_found_by_number_and_by_name(irq: InterruptController) -> None:
    assert irq.line("top") == IrqLineSpec(3, "top", 9)
    assert irq.line(0).name == "low"
    assert [spec.number for spec in irq.lines] == [0, 1, 2, 3]


def test_unknown_lines_are_refused(irq: InterruptController) -> None:
    with pytest.raises(UnknownIrqLine):
        irq.raise_line(42)
    with pytest.raises(UnknownIrqLine):
        irq.attach("nope", lambda e: None)


def test_duplicate_line_numbers_or_names_are_refused(sched: Scheduler) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        InterruptController(sched, [IrqLineSpec(0, "a", 1), IrqLineSpec(0, "b", 1)])
    with pytest.raises(ValueError, match="duplicate"):
        InterruptController(sched, [IrqLineSpec(0, "a", 1), IrqLineSpec(1, "a", 1)])


def test_a_shipped_board_file_makes_a_controller(sched: Scheduler) -> None:
    config = load_board("lp-2000")
    irq = InterruptController(sched, irq_lines_of(config))
    assert irq.line("cover_open").number == config.irq["cover_open"].line
    assert irq.line("cover_open").priority == config.irq["cover_open"].priority


# -- delivery order ---------------------------------------------------------------------


def test_same_instant_raises_are_delivered_highest_priority_first(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    _attach_all(irq, log)
    for name in ("low", "high_a", "top", "high_b"):
        irq.raise_line(name)
    sched.run()
    # Priority high first; equal priority: lower line number first.
    assert [name for name, _ in log] == ["top", "high_b", "high_a", "low"]


def test_isrs_run_before_ordinary_events_of_the_same_instant(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    irq.attach("low", _isr(log))

    def board_edge() -> None:
        log.append(("event", "raises"))
        irq.raise_line("low", "edge")

    sched.call_at(10, board_edge)
    sched.call_at(10, lambda: log.append(("event", "scheduled-earlier-same-instant")))
    sched.call_at(10, lambda: log.append(("event", "late")), PRIORITY_LATE)
    sched.run()
    assert log == [
        ("event", "raises"),
        ("low", "edge"),
        ("event", "scheduled-earlier-same-instant"),
        ("event", "late"),
    ]


def test_an_isr_raising_a_higher_line_sees_it_delivered_next(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    irq.attach("top", _isr(log))
    irq.attach("high_a", _isr(log))

    def low_isr(event: IrqEvent) -> None:
        log.append(("low", event.value))
        irq.raise_line("top", "from-low")

    irq.attach("low", low_isr)
    irq.raise_line("low", 1)
    irq.raise_line("low", 2)
    sched.run()
    # A low line cannot hold off a higher one raised meanwhile.
    assert log == [("low", 1), ("top", "from-low"), ("low", 2), ("top", "from-low")]


def test_the_event_carries_line_name_instant_and_value(
    sched: Scheduler, irq: InterruptController
) -> None:
    seen: list[IrqEvent] = []
    irq.attach("high_a", seen.append)
    sched.call_at(1234, lambda: irq.raise_line(2, {"level": 1}))
    sched.run()
    assert seen == [
        IrqEvent(line=2, name="high_a", t_ns=1234, board_t_ns=1234, value={"level": 1})
    ]
    assert irq.delivered("high_a") == 1


def test_a_board_with_its_own_clock_stamps_the_raise_with_it(
    sched: Scheduler, irq: InterruptController
) -> None:
    seen: list[IrqEvent] = []
    irq.attach("high_a", seen.append)
    sched.call_at(1234, lambda: irq.raise_line("high_a", True, board_t_ns=77))
    sched.run()
    assert [(e.t_ns, e.board_t_ns, e.value) for e in seen] == [(1234, 77, True)]


# -- the pending FIFO -------------------------------------------------------------------


def test_raises_are_never_merged(sched: Scheduler, irq: InterruptController) -> None:
    log: Log = []
    irq.attach("low", _isr(log))
    for value in range(5):
        irq.raise_line("low", value)
    assert irq.pending("low") == 5
    sched.run()
    assert log == [("low", v) for v in range(5)]
    assert irq.pending("low") == 0
    assert irq.delivered("low") == 5


def test_a_line_raised_while_its_own_isr_runs_is_delivered_again_in_order(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []

    def isr(event: IrqEvent) -> None:
        log.append(("low", event.value))
        if event.value == "first":
            irq.raise_line("low", "raised-inside")
            assert irq.pending("low") == 2  # latched behind the one already queued

    irq.attach("low", isr)
    irq.raise_line("low", "first")
    irq.raise_line("low", "second")
    sched.run()
    assert log == [("low", "first"), ("low", "second"), ("low", "raised-inside")]


# -- masking ----------------------------------------------------------------------------


def test_masked_defers_across_scheduler_steps_and_never_drops(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    _attach_all(irq, log)
    with ExitStack() as stack:
        stack.enter_context(irq.masked())
        irq.raise_line("low", 1)
        irq.raise_line("top", 2)
        irq.raise_line("low", 3)
        sched.run()
        assert log == []
        assert irq.pending("low") == 2
    sched.run()
    assert log == [("top", 2), ("low", 1), ("low", 3)]


def test_masked_defers_a_dispatch_that_was_already_scheduled(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    _attach_all(irq, log)
    irq.raise_line("low", "before-mask")  # its dispatch is on the scheduler now
    with ExitStack() as stack:
        stack.enter_context(irq.masked())
        sched.run()
        assert log == []
    sched.run()
    assert log == [("low", "before-mask")]


def test_masked_nests_and_delivers_when_the_outermost_block_exits(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    _attach_all(irq, log)
    with ExitStack() as outer:
        outer.enter_context(irq.masked())
        with irq.masked():
            irq.raise_line("high_a", "x")
        sched.run()
        assert log == []  # the inner block exiting does not unmask
    sched.run()
    assert log == [("high_a", "x")]


def test_masked_inside_an_isr_run_defers_what_it_raises(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    irq.attach("top", _isr(log))

    def low_isr(event: IrqEvent) -> None:
        with irq.masked():
            irq.raise_line("top", "masked")
            log.append(("low", "still-in-critical-section"))
        log.append(("low", "after-critical-section"))

    irq.attach("low", low_isr)
    irq.raise_line("low")
    sched.run()
    assert log == [
        ("low", "still-in-critical-section"),
        ("low", "after-critical-section"),
        ("top", "masked"),
    ]


# -- enable / disable -------------------------------------------------------------------


def test_a_disabled_line_keeps_latching_and_delivers_when_enabled(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    _attach_all(irq, log)
    irq.disable("top")
    assert not irq.is_enabled("top")
    irq.raise_line("top", 1)
    irq.raise_line("low", "other-lines-go-on")
    irq.raise_line("top", 2)
    sched.run()
    assert log == [("low", "other-lines-go-on")]
    assert irq.pending("top") == 2
    irq.enable("top")
    sched.run()
    assert log[1:] == [("top", 1), ("top", 2)]


def test_enabling_inside_a_masked_block_waits_for_the_block(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    _attach_all(irq, log)
    irq.disable("low")
    irq.raise_line("low", "latched")
    sched.run()
    with ExitStack() as stack:
        stack.enter_context(irq.masked())
        irq.enable("low")
        sched.run()
        assert log == []
    sched.run()
    assert log == [("low", "latched")]


# -- spurious raises, listeners, reset --------------------------------------------------


def test_a_line_with_no_isr_counts_as_spurious_and_does_not_crash(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    irq.attach("low", _isr(log))
    irq.raise_line("top")
    irq.raise_line("low", "fine")
    sched.run()
    assert irq.spurious == 1
    assert irq.pending("top") == 0
    assert irq.delivered("top") == 0
    assert log == [("low", "fine")]


def test_detach_makes_later_raises_spurious(sched: Scheduler, irq: InterruptController) -> None:
    log: Log = []
    irq.attach("low", _isr(log))
    irq.detach("low")
    irq.raise_line("low")
    sched.run()
    assert log == []
    assert irq.spurious == 1


def test_attach_replaces_the_isr(sched: Scheduler, irq: InterruptController) -> None:
    first: Log = []
    second: Log = []
    irq.attach("low", _isr(first))
    irq.attach("low", _isr(second))
    irq.raise_line("low", 1)
    sched.run()
    assert (first, second) == ([], [("low", 1)])


def test_listeners_see_raise_isr_and_spurious_with_the_instant(
    sched: Scheduler, irq: InterruptController
) -> None:
    trace: list[tuple[str, str, int]] = []
    order: list[str] = []

    def listener(kind: str, event: IrqEvent) -> None:
        trace.append((kind, event.name, event.t_ns))
        order.append(f"listener:{kind}")

    irq.add_listener(listener)
    irq.attach("low", lambda e: order.append("isr-body"))
    sched.call_at(50, lambda: irq.raise_line("low"))
    sched.call_at(60, lambda: irq.raise_line("top"))
    sched.run()
    assert trace == [
        ("raise", "low", 50),
        ("isr", "low", 50),
        ("raise", "top", 60),
        ("spurious", "top", 60),
    ]
    # The listener sees an ISR run just before the ISR itself.
    assert order[:3] == ["listener:raise", "listener:isr", "isr-body"]
    irq.remove_listener(listener)
    irq.raise_line("low")
    sched.run()
    assert len(trace) == 4


def test_reset_detaches_enables_and_clears_but_keeps_listeners(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    kinds: list[str] = []
    irq.add_listener(lambda kind, event: kinds.append(kind))
    _attach_all(irq, log)
    irq.disable("top")
    irq.raise_line("top")
    irq.raise_line("low")
    irq.reset()
    assert irq.pending("top") == irq.pending("low") == 0
    assert irq.is_enabled("top")
    sched.run()
    assert log == []  # what was pending at the reset is gone
    irq.raise_line("low")
    sched.run()
    assert log == []  # no ISR after reset: the firmware must attach again
    assert irq.spurious == 1
    assert kinds == ["raise", "raise", "raise", "spurious"]


def test_reset_inside_a_masked_block_leaves_interrupts_working(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []
    with irq.masked():
        irq.reset()  # e.g. the watchdog resets the board inside a critical section
    irq.attach("low", _isr(log))
    irq.raise_line("low", "after-reset")
    sched.run()
    assert log == [("low", "after-reset")]


def test_an_exception_in_an_isr_propagates_and_the_rest_are_still_delivered(
    sched: Scheduler, irq: InterruptController
) -> None:
    log: Log = []

    def broken(event: IrqEvent) -> None:
        raise RuntimeError("bug in an ISR")

    irq.attach("top", broken)
    irq.attach("low", _isr(log))
    irq.raise_line("top")
    irq.raise_line("low", "waiting")
    with pytest.raises(RuntimeError, match="bug in an ISR"):
        sched.run()
    sched.run()
    assert log == [("low", "waiting")]
