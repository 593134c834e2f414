"""Jams: the motor stops, the jam is reported with its page and where the sheet stuck, an
open-and-close of the cover clears it, and the jammed page is printed again, so every
page is delivered exactly once."""

from __future__ import annotations

import pytest

from boards import BoardConfig
from hal import JamPoint, Output
from tests.conftest import (
    Rig,
    S,
    engine_travel_ns,
    margin_ns,
    to_exit_trail_ns,
    to_feed_ns,
    warmup_ns,
)


def _deadline_ns(config: BoardConfig, distance_mm: float) -> int:
    expected = engine_travel_ns(config, distance_mm)
    return expected + margin_ns(config, expected)


def _jam_page_3(rig: Rig, point: JamPoint) -> None:
    """Arm a jam at ``point`` for page 3's sheet as it is picked."""
    rig.run_until(lambda: rig.board.sheets_picked == 3)
    rig.board.jam(point)


@pytest.mark.parametrize("point", [JamPoint.FEED, JamPoint.EXIT])
def test_a_jam_stops_the_motor_and_is_reported_with_its_page_and_place(
    rig: Rig, lp2000: BoardConfig, point: JamPoint
) -> None:
    job = rig.printer.submit(8, 5.0)
    _jam_page_3(rig, point)
    jammed_at = rig.run_until(lambda: rig.state("engine") == "jammed")

    pick3 = warmup_ns(lp2000) + 2 * lp2000.page_pitch_ns
    fed3 = pick3 + to_feed_ns(lp2000)
    p, length = lp2000.paper_path, lp2000.engine.sheet_length_mm
    if point is JamPoint.FEED:
        # Stuck at the feed sensor: its leading edge never reaches the exit sensor.
        expected = fed3 + _deadline_ns(lp2000, p.exit_sensor_mm - p.feed_sensor_mm)
    else:
        # Stuck at the exit sensor while still covering the feed sensor (a sheet is
        # longer than the gap): its trailing edge never leaves the feed sensor.
        assert length > p.exit_sensor_mm - p.feed_sensor_mm
        expected = fed3 + _deadline_ns(lp2000, length)
    assert jammed_at == expected
    assert [(e.t_ns, e.detail) for e in rig.of("jam")] == [
        (jammed_at, {"at": str(point), "job": job.id, "page": 3, "sheet": 3})]
    assert not rig.board.output(Output.MOTOR) and not rig.board.output(Output.LASER)
    assert rig.board.display[0] == "Paper jam" and rig.board.output(Output.LED_ATTENTION)
    assert rig.pages() == [(job.id, 1), (job.id, 2)]


@pytest.mark.parametrize("point", [JamPoint.FEED, JamPoint.EXIT])
def test_a_cover_cycle_clears_a_jam_and_every_page_is_delivered_exactly_once(
    rig: Rig, lp2000: BoardConfig, point: JamPoint
) -> None:
    job = rig.printer.submit(8, 5.0)
    _jam_page_3(rig, point)
    rig.run_until(lambda: rig.state("engine") == "jammed")
    rig.run_for(60 * S)
    assert rig.state("engine") == "jammed"  # it waits for the operator
    picked = rig.board.sheets_picked

    rig.board.set_cover(True)
    # Opening the cover is how the user takes the sheets out.
    assert rig.board.sheets_in_path == 0
    rig.run_for(5 * S)
    assert rig.state("engine") == "open" and rig.of("jam_cleared") == []
    closed_at = rig.now
    rig.board.set_cover(False)
    rig.finish()

    # Page 3's sheet and the page behind it go back, in order.
    assert [(e.t_ns, e.detail) for e in rig.of("jam_cleared")] == [
        (closed_at, {"pages_requeued": 2})]
    assert rig.pages() == [(job.id, p) for p in range(1, 9)]
    assert rig.output_tray() == [(job.id, p) for p in range(1, 9)]
    assert job.state == "completed" and job.delivered == 8
    reprint = [e for e in rig.of("page_feeding") if e.t_ns > closed_at]
    assert [e.detail["page"] for e in reprint] == list(range(3, 9))
    # The cover cut the heater: printing resumes once the fuser is ready again.
    ready_again = rig.of("fuser_ready")[-1].t_ns
    assert ready_again > closed_at
    assert [e.t_ns for e in reprint] == [
        ready_again + k * lp2000.page_pitch_ns for k in range(6)]
    assert rig.times("page_delivered")[-1] == reprint[-1].t_ns + to_exit_trail_ns(lp2000)
    # One sheet was in the path (the one behind it had not entered), and six more made it.
    assert rig.board.sheets_removed == 1 and rig.board.sheets_picked == picked + 6


def test_a_jam_is_not_cleared_until_the_cover_is_opened(rig: Rig) -> None:
    rig.printer.submit(4, 5.0)
    _jam_page_3(rig, JamPoint.FEED)
    rig.run_until(lambda: rig.state("engine") == "jammed")
    rig.board.set_tray(200)  # other operator actions do not clear it
    rig.run_for(300 * S)
    assert rig.state("engine") == "jammed" and rig.of("jam_cleared") == []
    assert len(rig.of("jam")) == 1
