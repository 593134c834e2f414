"""The print engine on the emulated lp-2000: one page per rated pitch once running, every
instant from the board file; misfeeds retried up to the board's limit, then a jam."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from boards import BoardConfig
from hal import Output
from tests.conftest import (
    Rig,
    S,
    margin_ns,
    run_out_ns,
    to_exit_trail_ns,
    to_feed_ns,
    to_output_ns,
    warmup_ns,
)


def test_a_cold_job_prints_one_page_per_pitch_from_the_moment_the_fuser_is_ready(
    rig: Rig, lp2000: BoardConfig
) -> None:
    pitch = lp2000.page_pitch_ns
    assert pitch == 2 * S  # lp-2000: 30 ppm
    job = rig.printer.submit(12, 5.0)
    rig.finish()

    ready = warmup_ns(lp2000)
    assert rig.times("fuser_ready") == [ready]
    picks = [ready + k * pitch for k in range(12)]
    assert rig.times("page_feeding") == picks
    assert rig.pages("page_feeding") == [(job.id, p) for p in range(1, 13)]
    assert rig.times("page_delivered") == [t + to_exit_trail_ns(lp2000) for t in picks]
    assert rig.pages() == [(job.id, p) for p in range(1, 13)]
    # The physical output: each sheet drops into the tray at its pick + the whole path.
    assert [d[0] for d in rig.board.delivered if d] == [t + to_output_ns(lp2000) for t in picks]
    assert rig.output_tray() == [(job.id, p) for p in range(1, 13)]
    assert job.state == "completed" and job.delivered == 12
    assert rig.board.sheets_picked == 12 and rig.board.tray_sheets == 250 - 12


def test_exactly_one_page_per_two_seconds_once_running(rig: Rig) -> None:
    rig.printer.submit(30, 5.0)
    rig.finish()
    delivered = rig.times("page_delivered")
    assert len(delivered) == 30
    assert {b - a for a, b in pairwise(delivered)} == {2 * S}


def test_the_motor_runs_only_while_sheets_move(rig: Rig, lp2000: BoardConfig) -> None:
    rig.printer.submit(2, 5.0)
    ready = warmup_ns(lp2000)
    rig.run_to(ready - 1)
    assert not rig.board.output(Output.MOTOR) and rig.state("engine") == "warming"
    rig.run_to(ready)
    assert rig.board.output(Output.MOTOR) and rig.board.output(Output.LASER)
    last = ready + lp2000.page_pitch_ns + to_exit_trail_ns(lp2000)
    rig.finish()
    assert rig.times("page_delivered")[-1] == last
    # The engine lets the last sheet drop out, then stops the motor and the laser.
    standby = [e.t_ns for e in rig.events
               if e.kind == "state" and e.source == "engine" and e.detail["state"] == "standby"]
    assert standby[-1] == last + run_out_ns(lp2000)
    # ... which is after the sheet has dropped into the output tray.
    assert rig.board.delivered[-1] is not None
    assert rig.board.delivered[-1][0] == last - to_exit_trail_ns(lp2000) + to_output_ns(lp2000)
    assert rig.board.delivered[-1][0] <= standby[-1]
    assert not rig.board.output(Output.MOTOR) and not rig.board.output(Output.LASER)


def test_a_job_sent_to_a_hot_idle_printer_starts_at_once(rig: Rig, lp2000: BoardConfig) -> None:
    rig.printer.submit(1, 5.0)
    rig.finish()
    submit_at = rig.now + 30 * S
    rig.run_to(submit_at)
    assert rig.state("fuser") == "ready"
    job = rig.printer.submit(3, 5.0)
    rig.finish()
    picks = [e.t_ns for e in rig.of("page_feeding") if e.detail["job"] == job.id]
    assert picks == [submit_at + k * lp2000.page_pitch_ns for k in range(3)]


def _misfeeds_at_page(rig: Rig, page: int, count: int) -> int:
    """Arm ``count`` misfeeds just after page ``page - 1`` is picked; returns the instant
    page ``page`` is first tried."""
    rig.run_until(lambda: rig.board.sheets_picked == page - 1)
    for _ in range(count):
        rig.board.misfeed()
    return rig.run_until(lambda: len(rig.of("page_feeding")) == page)


def test_a_misfeed_is_retried_and_the_page_prints_late_by_the_feed_deadline(
    rig: Rig, lp2000: BoardConfig
) -> None:
    job = rig.printer.submit(5, 5.0)
    first_try = _misfeeds_at_page(rig, 3, 1)
    rig.finish()

    deadline = to_feed_ns(lp2000) + margin_ns(lp2000, to_feed_ns(lp2000))
    retry = first_try + deadline
    misfeeds = rig.of("misfeed")
    assert [(e.t_ns, e.detail) for e in misfeeds] == [
        (retry, {"job": job.id, "page": 3, "attempt": 1})]
    assert rig.of("jam") == []
    # The retry is the pickup; the pages after it keep the pitch from there.
    pitch = lp2000.page_pitch_ns
    delivered = {e.detail["page"]: e.t_ns for e in rig.of("page_delivered")}
    assert delivered[3] == retry + to_exit_trail_ns(lp2000)
    assert delivered[4] == retry + pitch + to_exit_trail_ns(lp2000)
    assert delivered[5] == retry + 2 * pitch + to_exit_trail_ns(lp2000)
    assert rig.output_tray() == [(job.id, p) for p in range(1, 6)]
    assert rig.board.sheets_picked == 5


def test_misfeeds_up_to_the_retry_limit_are_not_a_jam(rig: Rig, lp2000: BoardConfig) -> None:
    retries = lp2000.engine.pickup_retries
    assert retries == 2
    job = rig.printer.submit(3, 5.0)
    _misfeeds_at_page(rig, 2, retries)
    rig.finish()
    assert [e.detail["attempt"] for e in rig.of("misfeed")] == list(range(1, retries + 1))
    assert rig.of("jam") == []
    assert job.state == "completed" and rig.output_tray() == [(1, 1), (1, 2), (1, 3)]


def test_one_misfeed_past_the_limit_is_a_jam_that_a_cover_cycle_clears(
    rig: Rig, lp2000: BoardConfig
) -> None:
    retries = lp2000.engine.pickup_retries
    job = rig.printer.submit(4, 5.0)
    first_try = _misfeeds_at_page(rig, 2, retries + 1)
    deadline = to_feed_ns(lp2000) + margin_ns(lp2000, to_feed_ns(lp2000))
    jammed_at = first_try + (retries + 1) * deadline
    rig.run_until(lambda: rig.state("engine") == "jammed")
    assert rig.now == jammed_at
    assert [(e.t_ns, e.detail["attempt"]) for e in rig.of("misfeed")] == [
        (first_try + k * deadline, k) for k in range(1, retries + 2)]
    assert [(e.t_ns, e.detail) for e in rig.of("jam")] == [
        (jammed_at, {"at": "feed", "job": job.id, "page": 2, "sheet": 2})]
    assert not rig.board.output(Output.MOTOR)

    rig.run_for(60 * S)  # a jam waits for the operator: nothing moves
    assert rig.board.sheets_picked == 1 and rig.state("engine") == "jammed"
    rig.board.set_cover(True)
    rig.run_for(S)
    rig.board.set_cover(False)
    rig.finish()
    assert rig.of("jam_cleared")[0].detail == {"pages_requeued": 1}
    assert rig.pages() == [(job.id, p) for p in range(1, 5)]
    assert rig.output_tray() == [(job.id, p) for p in range(1, 5)]
    assert job.state == "completed"


def test_a_board_with_no_retries_jams_on_the_first_misfeed(
    board_file: Callable[[str], BoardConfig],
) -> None:
    config = board_file("[engine]\npickup_retries = 0\n")
    rig = Rig(config)
    rig.printer.submit(2, 5.0)
    first_try = _misfeeds_at_page(rig, 1, 1)
    rig.run_until(lambda: rig.state("engine") == "jammed")
    deadline = to_feed_ns(config) + margin_ns(config, to_feed_ns(config))
    assert rig.now == first_try + deadline
    assert [e.detail["attempt"] for e in rig.of("misfeed")] == [1]
    assert rig.of("jam")[0].detail["page"] == 1
