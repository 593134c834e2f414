"""SerialBoard's clock is the device's (issue 15, item 1): edges carry the device's stamps,
device timers run only once the device's clock is known to have passed them, and the
firmware, judging the paper path by it, declares no fault from a slow or silent line.

The virtual device and the SerialBoard share one virtual scheduler (see
test_serial_board.py's ``Rig``): the device's clock runs at the host's rate, so what a
line's latency does to the host's view is exact.
"""

from __future__ import annotations

import pytest

from boards import load_board
from emulator.run import JobSpec, Outcome, PrintRun
from hal import Button, IrqEvent, timer_when_ns
from tests.hal.serial.test_serial_board import MS, Rig, S

_LATENCY_NS = 20 * MS


def _rig(latency_ns: int = _LATENCY_NS, board: str = "devkit") -> Rig:
    rig = Rig(load_board(board))
    rig.line.latency_ns = latency_ns
    # Past the board's first board.clock exchanges (the seeds of its command lead: a few
    # round trips), so what a test hears next is what it did.
    rig.run_for(8 * (2 * latency_ns + 2 * MS))
    return rig


def test_an_edge_is_raised_with_the_devices_stamp() -> None:
    rig = _rig()
    seen: list[IrqEvent] = []
    rig.board.irq.attach("button_cancel", seen.append)
    faults = rig.board.faults
    assert faults is not None
    faults.press(Button.CANCEL)
    rig.run_until(lambda: len(seen) == 2)
    for event in seen:
        # The device pressed it as the command arrived; the news took the line's latency.
        assert event.board_t_ns == event.t_ns - _LATENCY_NS
    assert rig.board.device_now_ns == seen[-1].board_t_ns


def test_the_devices_clock_is_what_it_last_said() -> None:
    rig = _rig()
    rig.board.query("analog.read", {"channel": "fuser_c"})  # no stamp in that answer
    known = rig.board.device_now_ns
    assert known <= rig.now - _LATENCY_NS
    faults = rig.board.faults
    assert faults is not None
    pressed_at = rig.now
    faults.press(Button.CONTINUE)  # an event: stamped with the device's clock
    rig.run_until(lambda: rig.board.device_now_ns > known)
    assert rig.board.device_now_ns == pressed_at + _LATENCY_NS  # when the device pressed


def test_a_device_timer_runs_once_the_devices_clock_has_passed_it() -> None:
    rig = _rig()
    ran: list[int] = []
    due = rig.now + 100 * MS  # the device's clock is the shared scheduler's
    timer = rig.board.call_at_device(due, lambda: ran.append(rig.now))
    assert timer_when_ns(timer) == due
    rig.run_until(lambda: bool(ran))
    # The device's clock read past it, and the news of that took the line's latency.
    assert ran[0] >= due + _LATENCY_NS
    assert ran[0] <= due + 3 * _LATENCY_NS + 2 * MS


def test_a_timer_after_the_pickup_pulse_counts_from_when_the_device_pulsed() -> None:
    rig = _rig()
    ran: list[int] = []
    sent_at = rig.now
    rig.board.pulse_pickup()
    timer = rig.board.call_after_commands(50 * MS, lambda: ran.append(rig.now))
    rig.run_until(lambda: bool(ran))
    pulsed_at = sent_at + _LATENCY_NS  # the device's (and the scheduler's) clock
    assert timer_when_ns(timer) >= pulsed_at + 50 * MS
    assert ran[0] >= pulsed_at + 50 * MS + _LATENCY_NS


def test_a_command_given_when_commands_reach_an_instant_is_carried_out_then() -> None:
    rig = _rig()
    rig.board.call_after_commands(0, lambda: None)  # a board.clock exchange: a measure
    rig.run_for(100 * MS)
    seen: list[IrqEvent] = []
    rig.board.irq.attach("button_cancel", seen.append)
    faults = rig.board.faults
    assert faults is not None
    due = rig.board.device_now_ns + 200 * MS
    rig.board.call_when_commands_reach(due, lambda: faults.press(Button.CANCEL))
    rig.run_until(lambda: bool(seen))
    # Carried out at the instant, not a round trip after it (the line's delay is constant).
    assert due <= seen[0].board_t_ns <= due + 1 * MS


def test_without_a_measure_a_command_is_given_as_if_the_line_took_no_time() -> None:
    rig = _rig()
    seen: list[IrqEvent] = []
    rig.board.irq.attach("button_cancel", seen.append)
    faults = rig.board.faults
    assert faults is not None
    heard_at, due = rig.now, rig.board.device_now_ns + 200 * MS
    rig.board.call_when_commands_reach(due, lambda: faults.press(Button.CANCEL))
    rig.run_until(lambda: bool(seen))
    assert seen[0].board_t_ns >= due
    assert seen[0].t_ns - heard_at <= 200 * MS + 3 * _LATENCY_NS + 2 * MS


def test_a_silent_line_fires_nothing_and_a_cancelled_timer_never_runs() -> None:
    rig = _rig()
    ran: list[str] = []
    now = rig.board.device_now_ns
    rig.board.call_at_device(now + 10 * MS, lambda: ran.append("due"))
    cancelled = rig.board.call_at_device(now + 10 * MS, lambda: ran.append("cancelled"))
    rig.scheduler.cancel(cancelled)
    rig.line.cut = True  # every byte lost, both ways: nothing is heard
    rig.run_for(400 * MS)
    assert ran == []
    rig.line.cut = False
    rig.run_until(lambda: bool(ran))
    assert ran == ["due"]


def _job(rig: Rig, pages: int) -> PrintRun:
    run = PrintRun(rig.board, seed=0)
    run.add_job(JobSpec(pages=pages, coverage_pct=5.0))
    return run


def _assert_clean(run: PrintRun, pages: int) -> None:
    kinds = [e["kind"] for e in run.events]
    assert "misfeed" not in kinds and "jam" not in kinds and "fuser_error" not in kinds, kinds
    assert [p["page"] for p in run.page_log] == list(range(1, pages + 1))


@pytest.mark.parametrize(("board", "latency_ms"), [
    ("devkit", 3), ("devkit", 20), ("devkit", 50), ("lp-2000", 50), ("lp-2000", 100)])
def test_a_job_over_a_slow_line_has_no_fault(board: str, latency_ms: int) -> None:
    """Through 50 ms each way the old, host-timed firmware misfed lp-2000's sheets: a feed
    deadline (300 ms of travel and a 60 ms margin) is shorter than travel and a round
    trip. devkit's sheet reaches the drum 8 ms after the feed sensor: an imaging request
    asked for at the feed edge would reach the device after the sheet passed the drum,
    so on a serial board it is asked for at the pickup. Every sheet carries its page."""
    rig = _rig(latency_ms * MS, board)
    run = _job(rig, 20)
    assert run.run(max_run_ns=120 * S) is Outcome.COMPLETED
    _assert_clean(run, 20)
    kinds = [e["kind"] for e in run.events]
    assert "page_spoiled" not in kinds, kinds


def test_a_silence_shorter_than_the_dead_time_is_no_jam() -> None:
    rig = _rig(1 * MS)
    run = _job(rig, 20)

    def silence() -> None:
        rig.line.cut = True
        rig.scheduler.call_later(300 * MS, lambda: setattr(rig.line, "cut", False))

    rig.scheduler.call_at(rig.now + 600 * MS, silence)
    assert run.run(max_run_ns=60 * S) is Outcome.COMPLETED
    kinds = [e["kind"] for e in run.events]
    assert "jam" not in kinds and "link_down" not in kinds, kinds
    assert [p["page"] for p in run.page_log] == list(range(1, 21))
    # The pulse held up by the silence and the next one reach the device a pitch apart
    # (the next is paced from when the device picked, by its clock): nothing slips.
    assert "misfeed" not in kinds and "page_spoiled" not in kinds, kinds


@pytest.mark.parametrize("cut_after_ms", [600, 628, 670])
def test_a_silence_past_the_dead_time_resumes_the_job_without_a_fault(cut_after_ms: int) -> None:
    """Silent for 1.5 s, longer than the dead time, at instants across a pitch: the
    news of the sheets the device moved meanwhile, or the pickup pulse itself, is lost
    with the link. The path runs out when the link is back; a sheet that never shows at
    a sensor is out of the path (it left unseen, or was never picked): its page is
    printed again, never a misfeed or a jam."""
    rig = _rig(1 * MS)
    run = _job(rig, 20)

    def silence() -> None:
        rig.line.cut = True
        rig.scheduler.call_later(1500 * MS, lambda: setattr(rig.line, "cut", False))

    rig.scheduler.call_at(rig.now + cut_after_ms * MS, silence)
    assert run.run(max_run_ns=60 * S) is Outcome.COMPLETED
    kinds = [e["kind"] for e in run.events]
    assert kinds.count("link_down") == 1 and kinds.count("link_up") == 1, kinds
    _assert_clean(run, 20)
    assert "page_spoiled" in kinds, kinds  # the sheets whose news was lost


def test_the_page_asked_for_at_pickup_waits_for_the_retried_pickup() -> None:
    """On a serial board the page is asked for right after the pickup pulse; when the
    pickup slips (a real misfeed, armed on the device) the request stays queued there
    and binds to the sheet the retried pulse picks: the page is printed on it."""
    rig = _rig(20 * MS)
    faults = rig.board.faults
    assert faults is not None
    faults.misfeed()
    run = _job(rig, 5)
    assert run.run(max_run_ns=60 * S) is Outcome.COMPLETED
    kinds = [e["kind"] for e in run.events]
    assert kinds.count("misfeed") == 1 and "page_spoiled" not in kinds, kinds
    assert [p["page"] for p in run.page_log] == [1, 2, 3, 4, 5]
    observed = rig.board.observe()
    assert observed is not None and observed["sheets_picked"] == 5
