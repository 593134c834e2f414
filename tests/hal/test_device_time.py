"""The board's clock on the emulated board (hal/_board.py's contract, emulator/board.py):
it is the scheduler's, and its timers are the scheduler's own timers, so a firmware
judging the paper path in the board's time runs exactly as it did in the scheduler's."""

from __future__ import annotations

from boards import load_board
from emulator.board import EmulatedBoard
from hal import Board, Scheduler, timer_cancelled, timer_when_ns


def _board() -> EmulatedBoard:
    return EmulatedBoard(load_board("devkit"), Scheduler())


def test_the_emulated_boards_clock_is_the_schedulers() -> None:
    board = _board()
    assert isinstance(board, Board)
    board.scheduler.run_until(1234)
    assert board.device_now_ns == board.scheduler.now_ns == 1234


def test_a_device_timer_is_a_scheduler_timer_at_that_instant() -> None:
    board = _board()
    sched = board.scheduler
    ran: list[int] = []
    timer = board.call_at_device(500, lambda: ran.append(sched.now_ns))
    assert timer_when_ns(timer) == 500 and sched.next_event_ns() == 500
    sched.run()
    assert ran == [500]


def test_a_timer_after_the_commands_counts_from_now_and_cancels() -> None:
    board = _board()
    sched = board.scheduler
    sched.run_until(100)
    ran: list[str] = []
    board.pulse_pickup()  # carried out at once: the board's clock is the scheduler's
    kept = board.call_after_commands(50, lambda: ran.append("kept"))
    dropped = board.call_after_commands(50, lambda: ran.append("dropped"))
    sched.cancel(dropped)
    assert timer_when_ns(kept) == 150 and timer_cancelled(dropped)
    sched.run_until(1_000)
    assert ran == ["kept"]


def test_a_past_instant_runs_at_once() -> None:
    board = _board()
    board.scheduler.run_until(1_000)
    ran: list[int] = []
    board.call_at_device(10, lambda: ran.append(board.scheduler.now_ns))
    board.scheduler.run_until(1_000)
    assert ran == [1_000]
