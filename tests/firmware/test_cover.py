"""The cover interlock: heater, laser and motor are cut in the ISR itself; the sheets the
user pulls out are printed again once the cover is shut."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from boards import BoardConfig
from firmware._cover import CoverInterlock
from hal import IrqEvent, Output
from tests.conftest import Rig, S, to_exit_trail_ns, warmup_ns

_POWER = (Output.HEATER, Output.LASER, Output.MOTOR)


@pytest.fixture
def isr_watch(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Wrap the cover ISR: record the board's power outputs and the kernel's trigger
    count just before it runs and as it returns, before any active object has run."""
    calls: list[dict[str, Any]] = []
    original = CoverInterlock.isr

    def isr(self: CoverInterlock, event: IrqEvent) -> None:
        board = self.board
        before = {o: board.output(o) for o in _POWER}
        triggers = self.kernel.triggers
        original(self, event)
        calls.append({"t_ns": event.t_ns, "open": event.value, "before": before,
                      "after": {o: board.output(o) for o in _POWER},
                      "triggers_during": self.kernel.triggers - triggers})

    monkeypatch.setattr(CoverInterlock, "isr", isr)
    return calls


def test_opening_the_cover_cuts_heater_laser_and_motor_in_the_isr(
    isr_watch: list[dict[str, Any]], rig: Rig
) -> None:
    rig.printer.submit(10, 5.0)
    # An instant mid-print with all three on (the heater cycles in its band).
    rig.run_until(lambda: all(rig.board.output(o) for o in _POWER))
    opened_at = rig.now
    rig.board.set_cover(True)
    rig.run_for(1)
    assert len(isr_watch) == 1
    call = isr_watch[0]
    assert call["t_ns"] == opened_at and call["open"] is True
    assert call["before"] == dict.fromkeys(_POWER, True)
    assert call["after"] == dict.fromkeys(_POWER, False)
    assert call["triggers_during"] == 0  # no state machine ran: the ISR did it
    assert rig.state("engine") == "open" and rig.state("fuser") == "interlocked"
    assert rig.board.display[0] == "Cover open"


def test_the_interlock_holds_while_the_cover_is_open(rig: Rig) -> None:
    rig.printer.submit(3, 5.0)
    rig.run_for(3 * S)  # warming
    assert rig.board.output(Output.HEATER)
    rig.board.set_cover(True)
    rig.run_for(600 * S)
    assert not any(rig.board.output(o) for o in _POWER)
    assert rig.board.sheets_picked == 0 and rig.of("fuser_ready") == []
    assert rig.board.fuser_temp_c < rig.config.fuser.ready_c


def test_sheets_pulled_with_the_cover_open_are_printed_again_in_order(
    rig: Rig, lp2000: BoardConfig
) -> None:
    job = rig.printer.submit(6, 5.0)
    rig.run_until(lambda: rig.board.sheets_picked == 3)
    rig.run_for(500 * 1_000_000)
    assert rig.board.sheets_in_path == 2  # pages 2 and 3; page 1 is out
    rig.board.set_cover(True)
    rig.run_for(10 * S)
    closed_at = rig.now
    rig.board.set_cover(False)
    rig.finish()

    assert rig.board.sheets_removed == 2
    assert rig.of("jam") == [] and rig.of("jam_cleared") == []  # an open cover is no jam
    assert rig.pages() == [(job.id, p) for p in range(1, 7)]
    assert rig.output_tray() == [(job.id, p) for p in range(1, 7)]
    ready_again = rig.of("fuser_ready")[-1].t_ns
    # The fuser cooled with the heater cut; from the temperature it had at the close,
    # it warms to ready_c again by the model's curve.
    assert ready_again > closed_at
    again = [e for e in rig.of("page_feeding") if e.t_ns >= closed_at]
    assert [(e.t_ns, e.detail["page"]) for e in again] == [
        (ready_again + k * lp2000.page_pitch_ns, 2 + k) for k in range(5)]
    assert rig.times("page_delivered")[-1] == again[-1].t_ns + to_exit_trail_ns(lp2000)


def test_closing_the_cover_rewarms_the_fuser_only_if_heat_was_wanted(
    lp2000: BoardConfig,
) -> None:
    rig = Rig(lp2000)
    rig.run_until(lambda: rig.of("power_save") != [])
    assert rig.state("fuser") == "off"
    rig.board.set_cover(True)
    rig.run_for(S)
    rig.board.set_cover(False)
    rig.run_for(60 * S)
    assert rig.state("fuser") == "off" and not rig.board.output(Output.HEATER)

    rig.board.set_cover(True)
    rig.run_for(S)
    job = rig.printer.submit(1, 5.0)  # wakes the printer while the cover is open
    rig.run_for(30 * S)
    assert rig.state("fuser") == "interlocked" and not rig.board.output(Output.HEATER)
    closed_at, temp_c = rig.now, rig.board.fuser_temp_c
    rig.board.set_cover(False)
    rig.finish()
    assert job.state == "completed"
    assert rig.of("fuser_ready")[-1].t_ns == closed_at + warmup_ns(lp2000, from_c=temp_c)


def test_cover_events_are_published_for_each_change(
    rig: Rig, board_file: Callable[[str], BoardConfig]
) -> None:
    rig.board.set_cover(True)
    rig.run_for(S)
    rig.board.set_cover(False)
    rig.run_for(S)
    assert rig.times("cover_open") == [0]
    assert rig.times("cover_closed") == [S]
    assert rig.state_changes("cover") == ["open", "closed"]
