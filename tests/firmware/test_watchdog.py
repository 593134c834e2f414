"""The watchdog: a hung active object stops the kicks, the board resets, the firmware
boots again and reports ``watchdog_reset``, and the job still completes with every page
delivered exactly once (a sheet left in the path at the reset is run out at boot and its
page printed again unless the board imaged it; a sheet that came out while the firmware
was hung is not printed again)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from boards import BoardConfig
from emulator.board import EmulatedBoard
from tests.conftest import Rig, S, to_output_ns, warmup_ns


class KickLog(EmulatedBoard):
    """The emulated board, noting when the firmware kicks its watchdog."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.kicks: list[int] = []

    def kick_watchdog(self) -> None:
        self.kicks.append(self.scheduler.now_ns)
        super().kick_watchdog()


def _ms_ns(ms: float) -> int:
    return round(ms * 1e6)


def test_a_healthy_printer_kicks_on_time_and_never_resets(lp2000: BoardConfig) -> None:
    rig = Rig(lp2000, board_type=KickLog)
    rig.printer.submit(40, 5.0)
    rig.finish()
    rig.run_for(400 * S)  # and through power save
    board = rig.board
    assert isinstance(board, KickLog)
    period = _ms_ns(lp2000.engine.watchdog_kick_ms)
    assert board.kicks[:3] == [0, period, 2 * period]
    assert {b - a for a, b in pairwise(board.kicks)} == {period}
    assert board.resets == 0 and rig.of("boot")[0].detail == {"reset_cause": "power_on"}
    assert rig.of("watchdog_reset") == []


@pytest.mark.parametrize("hung", ["engine", "spooler"])
def test_a_hang_mid_job_resets_the_board_and_the_job_completes_exactly_once(
    lp2000: BoardConfig, hung: str
) -> None:
    rig = Rig(lp2000, board_type=KickLog)
    board = rig.board
    assert isinstance(board, KickLog)
    job = rig.printer.submit(6, 5.0)
    hung_at = rig.run_until(lambda: board.sheets_picked == 2)
    rig.printer.hang(hung)
    rig.run_until(lambda: rig.printer.boots == 2)
    reset_at = rig.now

    timeout = _ms_ns(lp2000.engine.watchdog_timeout_ms)
    period = _ms_ns(lp2000.engine.watchdog_kick_ms)
    kicks_before = [t for t in board.kicks if t < reset_at]
    assert reset_at == kicks_before[-1] + timeout
    # Kicks stop at the first check after the hang that finds the object's events
    # waiting (a sheet's next edge is never far off while printing).
    assert kicks_before[-1] + period > hung_at
    assert reset_at - hung_at <= timeout + 2 * period
    assert [t for t in board.kicks if kicks_before[-1] < t < reset_at] == []
    assert board.resets == 1 and board.watchdog.expired == 1
    assert rig.of("hang")[0].detail == {"object": hung}
    assert [(e.t_ns, e.detail) for e in rig.of("boot")] == [
        (0, {"reset_cause": "power_on"}), (reset_at, {"reset_cause": "watchdog"})]
    assert rig.times("watchdog_reset") == [reset_at]

    # Page 1 dropped into the output tray while the firmware was hung: it counts.
    pick1 = warmup_ns(lp2000)
    assert hung_at < pick1 + to_output_ns(lp2000) < reset_at
    assert rig.output_tray() == [(job.id, 1)]
    # Page 2's sheet stopped in the path at the reset, its imaging cut short: the new
    # firmware runs it out (blank) before anything else, and prints page 2 again.
    assert board.sheets_in_path == 1
    assert [e.detail["reason"] for e in rig.of("self_test_failed")] == [
        "a sheet is in the paper path"]
    assert rig.state("engine") == "purging"
    rig.run_for(10 * S)
    assert board.kicks[-1] > reset_at + 9 * S  # the new firmware kicks again
    rig.finish()
    assert rig.of("jam") == []
    assert rig.output_tray() == [(job.id, 1), None] + [(job.id, p) for p in range(2, 7)]
    assert sorted(rig.pages()) == [(job.id, p) for p in range(1, 7)]
    assert job.state == "completed" and job.delivered == 6
    assert job.delivered_pages == list(range(1, 7))
    assert board.resets == 1


def test_a_hung_panel_is_noticed_when_it_next_has_work_and_no_page_is_lost(
    lp2000: BoardConfig,
) -> None:
    # The panel hears only of the engine's state changes and warnings: hung mid-job it
    # has nothing waiting until the job ends, so the reset comes after the last page.
    rig = Rig(lp2000, board_type=KickLog)
    job = rig.printer.submit(4, 5.0)
    rig.run_until(lambda: rig.board.sheets_picked == 2)
    rig.printer.hang("panel")
    rig.run_until(lambda: rig.printer.boots == 2)
    reset_at = rig.now
    done_at = rig.of("job_done")[0].t_ns
    assert job.state == "completed" and done_at < reset_at
    assert rig.times("watchdog_reset") == [reset_at]
    assert rig.of("self_test_failed") == [] and rig.of("jam") == []
    rig.finish()
    assert rig.state("engine") == "standby" and rig.board.display[0] == "Ready"
    second = rig.printer.submit(2, 5.0)
    rig.finish()
    assert rig.output_tray() == [(job.id, p) for p in range(1, 5)] + [(second.id, 1),
                                                                     (second.id, 2)]
    assert rig.board.resets == 1
