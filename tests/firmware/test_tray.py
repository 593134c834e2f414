"""Paper out: the engine pauses after the sheet in flight; paper loaded resumes it at the
next undelivered page."""

from __future__ import annotations

from boards import BoardConfig
from hal import Output
from tests.conftest import Rig, S, run_out_ns, to_exit_trail_ns, warmup_ns


def test_paper_out_pauses_after_the_last_sheet_and_loading_resumes_at_the_next_page(
    rig: Rig, lp2000: BoardConfig
) -> None:
    sheets, pages, pitch = 5, 10, lp2000.page_pitch_ns
    rig.board.set_tray(sheets)
    job = rig.printer.submit(pages, 5.0)
    held_at = rig.run_until(lambda: rig.state("engine") == "held")

    ready = warmup_ns(lp2000)
    last_pick = ready + (sheets - 1) * pitch
    # Taking the last sheet empties the tray: reported at that very pickup.
    assert rig.times("paper_out") == [last_pick]
    assert rig.pages() == [(job.id, p) for p in range(1, sheets + 1)]
    assert held_at == last_pick + to_exit_trail_ns(lp2000) + run_out_ns(lp2000)
    assert rig.board.sheets_picked == sheets and rig.board.sheets_in_path == 0
    assert not rig.board.output(Output.MOTOR)
    assert rig.board.display[0] == "Load paper" and rig.board.output(Output.LED_ATTENTION)
    assert job.state == "printing"

    rig.run_for(60 * S)
    assert len(rig.of("page_feeding")) == sheets  # nothing is tried from an empty tray
    assert rig.of("misfeed") == [] and rig.of("jam") == []
    loaded_at = rig.now
    rig.board.set_tray(100)
    rig.finish()
    assert rig.times("paper_loaded") == [loaded_at]
    resumed = rig.of("page_feeding")[sheets:]
    assert [(e.t_ns, e.detail["page"]) for e in resumed] == [
        (loaded_at + k * pitch, sheets + 1 + k) for k in range(pages - sheets)]
    assert rig.pages() == [(job.id, p) for p in range(1, pages + 1)]
    assert rig.output_tray() == [(job.id, p) for p in range(1, pages + 1)]
    assert job.state == "completed" and rig.board.tray_sheets == 100 - (pages - sheets)
    assert not rig.board.output(Output.LED_ATTENTION)


def test_an_empty_tray_at_boot_holds_a_job_until_paper_is_loaded(
    lp2000: BoardConfig,
) -> None:
    rig = Rig(lp2000, before_boot=lambda board: board.set_tray(0))
    rig.run_for(S)
    assert rig.times("paper_out") == [0]
    assert rig.state("tray") == "empty"
    job = rig.printer.submit(3, 5.0)
    rig.run_for(30 * S)
    assert rig.state("engine") == "held" and rig.of("page_feeding") == []
    assert rig.board.display[0] == "Load paper"
    loaded_at = rig.now
    rig.board.set_tray(10)
    rig.finish()
    # The fuser warmed while the engine waited: the first page goes at once.
    assert rig.times("page_feeding") == [loaded_at + k * lp2000.page_pitch_ns for k in range(3)]
    assert rig.pages() == [(job.id, p) for p in (1, 2, 3)]
