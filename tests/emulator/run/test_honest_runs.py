"""Issue 16, the run's side: moments that can never come and trays filled past their
capacity are refused before the run, the HIL harness refuses an event kind or detail key
the firmware never reports, a run tied to the wall tells its display at least every
``progress_every_s``, and a long job is not cut off by a fixed two-day cap."""

from __future__ import annotations

import pytest

from boards import load_board
from emulator.board import EmulatedBoard
from emulator.run import (
    Action,
    JobSpec,
    Moment,
    PrinterHarness,
    PrintRun,
    ScenarioError,
    TimedAction,
)
from hal import Scheduler, VirtualClock

S = 1_000_000_000


def make_run(board_name: str = "lp-2000", clock: VirtualClock | None = None,
             pages: int = 3) -> PrintRun:
    board = EmulatedBoard(load_board(board_name), Scheduler(clock or VirtualClock()), seed=1)
    run = PrintRun(board, seed=1)
    run.add_job(JobSpec(pages=pages, coverage_pct=5.0))
    return run


def test_a_tray_past_the_boards_capacity_is_refused_naming_it() -> None:
    run = make_run()
    with pytest.raises(ScenarioError, match=r"s\.toml: \[\[at\]\] #1 tray: 500 sheets is over "
                                            r"the tray's capacity on lp-2000 \(250 sheets\)"):
        run.add_actions([TimedAction(Moment(t_ns=S), Action("tray", 500))], "s.toml")


@pytest.mark.parametrize(("moment", "fragment"), [
    (Moment(page=50), "page: 50 never comes: the run has 3 pages"),
    (Moment(page=1, job=5), "job: job 5 never comes (jobs: 1)"),
    (Moment(page=4, job=1), "page: 4 never comes: job 1 has 3 pages"),
])
def test_a_moment_that_never_comes_is_refused(moment: Moment, fragment: str) -> None:
    run = make_run()
    with pytest.raises(ScenarioError) as info:
        run.add_actions([TimedAction(moment, Action("toner_pct", 5.0))])
    assert fragment in str(info.value)


def test_a_submitted_job_counts_for_the_moments() -> None:
    run = make_run()
    run.add_actions([
        TimedAction(Moment(t_ns=S), Action("submit", JobSpec(pages=10, coverage_pct=5.0))),
        TimedAction(Moment(page=12), Action("toner_pct", 5.0)),
        TimedAction(Moment(page=9, job=2), Action("toner_pct", 4.0)),
    ])


def test_wait_for_refuses_an_unknown_kind_or_detail_key_at_once() -> None:
    printer = PrinterHarness(EmulatedBoard(load_board("devkit"), Scheduler(), seed=0), seed=0)
    with pytest.raises(ValueError, match=r"unknown event kind 'toner_lwo' \(kinds: .*toner_low"):
        printer.wait_for("toner_lwo")
    with pytest.raises(ValueError, match=r"unknown detail key 'pgae' \(keys of page_delivered: "
                                         r"job, page, recovered, sheet\)"):
        printer.wait_for("page_delivered", pgae=2)
    assert printer.run.scheduler.now_ns == 0  # refused before running the board


def test_a_run_tied_to_the_wall_tells_its_display_every_progress_interval() -> None:
    # lp-2000's slice is five page pitches (~10 s); at 100x real time and a display
    # every 20 ms of wall, the display is told about every 2 s of simulated time.
    run = make_run(clock=VirtualClock(100.0), pages=2)
    told: list[int] = []
    run.run(on_progress=lambda r: told.append(r.scheduler.now_ns), progress_every_s=0.02)
    gaps = [b - a for a, b in zip([0, *told], told, strict=False)]
    assert told and max(gaps) <= 2 * S + 1


def test_the_time_cap_grows_with_the_job() -> None:
    run = make_run(pages=100_000)
    assert run.default_max_run_ns() == 100_000 * 10 * S  # more than two days
    assert make_run().default_max_run_ns() == 48 * 3600 * S
