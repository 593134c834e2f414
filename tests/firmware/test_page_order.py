"""Page order after a spoiled sheet (issue 15, item 5): pages come out in the job's order.

A sheet that comes out blank has its page printed again; the sheets picked after it must
not deliver their pages first. Two ways a sheet is spoiled with sheets pipelined behind
it, on the emulated board in virtual time:

* its imaging fails as it starts (the laser is off as the sheet reaches the drum: a
  glitch of the laser's drive, done here through the board's output);
* a serial device's failsafe at a link loss cancels every pending imaging request (done
  here as that device does it, on the emulated board's handles): the sheet comes out
  blank when the link is back.
"""

from __future__ import annotations

import pytest

from boards import BoardConfig, load_board
from hal import LinkChange, Output
from tests.conftest import Rig, S, to_feed_ns, travel_ns


def _laser_glitch_at_drum(rig: Rig, page: int) -> None:
    """Run until ``page`` is picked; turn the laser off from just before its sheet
    reaches the drum to just after (the sheet's imaging fails as it starts)."""
    rig.run_until(lambda: len(rig.of("page_feeding")) >= page)
    picked = rig.of("page_feeding")[-1]
    assert picked.detail["page"] == page
    to_drum_ns = travel_ns(rig.config, rig.config.paper_path.drum_mm)
    rig.run_to(picked.t_ns + to_drum_ns - 1_000)
    rig.board.set_output(Output.LASER, False)
    rig.run_to(picked.t_ns + to_drum_ns + 1_000)
    rig.board.set_output(Output.LASER, True)


def _in_order_once(rig: Rig, pages: int) -> None:
    expected = [(1, p) for p in range(1, pages + 1)]
    assert rig.pages() == expected
    assert [d for d in rig.output_tray() if d is not None] == expected  # physically too
    assert not rig.of("jam") and not rig.of("misfeed")


@pytest.mark.parametrize("board", ["lp-2000", "devkit"])
@pytest.mark.parametrize("spoiled_page", [1, 4])
def test_a_sheet_spoiled_at_the_drum_is_printed_again_before_the_pages_behind_it(
        board: str, spoiled_page: int) -> None:
    rig = Rig(load_board(board))
    rig.printer.submit(10, 5.0)
    _laser_glitch_at_drum(rig, spoiled_page)
    rig.finish()
    assert [e.detail["page"] for e in rig.of("page_spoiled")] == [spoiled_page]
    _in_order_once(rig, 10)
    # Its page went back as soon as its imaging failed: only the spoiled sheet is waste.
    assert rig.output_tray().count(None) == 1


def _failsafe_link_loss(rig: Rig) -> None:
    """What a serial device does when its link goes: outputs safe, every pending imaging
    request cancelled (the sheets in the path will come out blank); then the host's
    ``link`` interrupt."""
    for output in (Output.MOTOR, Output.LASER, Output.HEATER):
        rig.board.set_output(output, False)
    for sheet in list(rig.board.paper_path.sheets):
        if sheet.handle is not None:
            sheet.handle.cancel()
    rig.board.irq.raise_line("link", LinkChange(up=False, reason="test"))


def test_a_sheet_spoiled_by_a_link_loss_is_printed_again_in_order(lp2000: BoardConfig) -> None:
    rig = Rig(lp2000)
    rig.printer.submit(12, 5.0)
    rig.run_until(lambda: len(rig.of("page_feeding")) >= 5)
    rig.run_for(to_feed_ns(lp2000) + 1)  # sheet 5 past the feed sensor, sheet 4 ahead
    assert rig.board.sheets_in_path == 2
    _failsafe_link_loss(rig)
    rig.run_for(2 * S)
    rig.board.irq.raise_line("link", LinkChange(up=True, reason="test"))
    rig.finish()
    # Sheet 5 came out blank; page 6, asked for when sheet 5 was fed, came back with it
    # (and the spooler's answer, page 5 again, reached an engine offline: still taken).
    assert [e.detail["page"] for e in rig.of("page_spoiled")] == [5]
    _in_order_once(rig, 12)


def test_pages_given_back_out_of_order_go_back_in_order(rig: Rig) -> None:
    """The spooler's side: a page handed to the engine while earlier ones were on their
    way back comes back after them, and must go back behind them."""
    from firmware import PageTask

    job = rig.printer.submit(6, 5.0)
    spooler = rig.printer.firmware.spooler
    store = rig.printer.jobs
    rig.run_for(1_000_000)  # the engine holds page 1 while the fuser warms up
    assert rig.state("engine") == "warming"
    taken = [store.take() for _ in range(3)]  # pages 2, 3, 4 as if in flight
    assert [t.page for t in taken if t is not None] == [2, 3, 4]
    spooler.post("pages_back", tasks=[PageTask(job.id, 2, 5.0), PageTask(job.id, 3, 5.0)])
    spooler.post("pages_back", tasks=[PageTask(job.id, 4, 5.0)])
    rig.run_for(1)
    assert [t.page for t in store.pending][:4] == [2, 3, 4, 5]
    rig.finish()
    assert rig.pages() == [(job.id, p) for p in range(1, 7)]
