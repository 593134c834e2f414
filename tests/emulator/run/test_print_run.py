"""The print run's hooks (emulator/run/_print_run.py): ``on_action`` tells its listeners
of every scenario action just before the action is carried out."""

from __future__ import annotations

import pytest

from boards import load_board
from emulator.board import EmulatedBoard
from emulator.run import Action, JobSpec, Moment, PrintRun, TimedAction
from hal import Scheduler

S = 1_000_000_000


def make_run() -> tuple[PrintRun, EmulatedBoard]:
    board = EmulatedBoard(load_board("devkit"), Scheduler(), seed=1)
    run = PrintRun(board, seed=1)
    run.add_job(JobSpec(pages=3, coverage_pct=5.0))
    return run, board


def test_on_action_tells_of_timed_page_bound_and_direct_actions_before_each_is_done(
) -> None:
    run, board = make_run()
    told: list[tuple[Action, int, int]] = []
    # What the listener sees of the board: the tray before the action changes it.
    run.on_action(lambda action: told.append((action, run.scheduler.now_ns,
                                              board.tray_sheets)))
    at_1s = Action("tray", 40)
    at_page_2 = Action("tray", 30)
    run.add_actions([TimedAction(Moment(t_ns=S), at_1s),
                     TimedAction(Moment(page=2), at_page_2)])
    run.run()
    direct = Action("tray", 20)
    run.apply(direct)
    actions = [action for action, _, _ in told]
    assert sorted(actions[:2], key=str) == sorted([at_1s, at_page_2], key=str)
    assert actions[2] == direct
    assert [t_ns for action, t_ns, _ in told if action == at_1s] == [run.start_ns + S]
    assert all(tray != action.value for action, _, tray in told)
    assert board.tray_sheets == 20


def test_a_removed_action_listener_is_told_no_more() -> None:
    run, _ = make_run()
    told: list[Action] = []
    run.on_action(told.append)
    run.apply(Action("tray", 10))
    run.remove_action_listener(told.append)
    run.apply(Action("tray", 12))
    assert told == [Action("tray", 10)]
    with pytest.raises(ValueError):
        run.remove_action_listener(told.append)
