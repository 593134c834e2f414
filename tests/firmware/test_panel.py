"""The operator panel: LEDs and the 2x16 display follow the printer; the cancel button
cancels the job printing (its sheet in the path is finished), continue overrides an
empty-toner stop."""

from __future__ import annotations

from boards import BoardConfig
from hal import Button, JamPoint, Output
from tests.conftest import Rig, S, to_exit_trail_ns, warmup_ns


def _leds(rig: Rig) -> tuple[bool, bool, bool]:
    b = rig.board
    return (b.output(Output.LED_READY), b.output(Output.LED_ATTENTION),
            b.output(Output.LED_TONER))


def test_display_and_leds_follow_the_printer_through_a_day(rig: Rig) -> None:
    seen: list[tuple[str, str, tuple[bool, bool, bool]]] = []

    def look() -> None:
        rig.run_for(1)
        seen.append((*rig.board.display, _leds(rig)))

    look()                                            # booted, warming quietly
    rig.printer.submit(3, 5.0)
    rig.run_for(S)
    look()                                            # warming for a job
    rig.run_until(lambda: rig.state("engine") == "printing")
    look()
    rig.board.set_toner_pct(5.0)
    look()                                            # a warning, printing goes on
    rig.finish()
    look()
    rig.board.set_tray(0)
    rig.printer.submit(1, 5.0)
    rig.run_until(lambda: rig.state("engine") == "held")
    look()
    rig.board.set_tray(50)
    rig.finish()
    rig.board.jam(JamPoint.EXIT)
    rig.printer.submit(1, 5.0)
    rig.run_until(lambda: rig.state("engine") == "jammed")
    look()
    rig.board.set_cover(True)
    look()
    rig.board.set_cover(False)
    rig.board.replace_toner()
    rig.finish()
    look()
    rig.run_until(lambda: rig.of("power_save") != [])
    look()
    assert seen == [
        ("Ready", "", (True, False, False)),
        ("Warming up", "", (True, False, False)),
        ("Printing", "", (True, False, False)),
        ("Printing", "Toner low", (True, False, True)),
        ("Ready", "Toner low", (True, False, True)),
        ("Load paper", "Toner low", (False, True, True)),
        ("Paper jam", "Toner low", (False, True, True)),
        ("Cover open", "Toner low", (False, True, True)),
        ("Ready", "", (True, False, False)),
        ("Power save", "", (True, False, False)),
    ]


def test_cancel_finishes_the_sheet_in_the_path_and_drops_the_rest(
    rig: Rig, lp2000: BoardConfig
) -> None:
    first = rig.printer.submit(10, 5.0)
    second = rig.printer.submit(2, 5.0)
    pitch = lp2000.page_pitch_ns
    ready = warmup_ns(lp2000)
    # Press while page 3's sheet is in the path and page 4 is waiting for its pickup.
    rig.run_to(ready + 2 * pitch + pitch // 4)
    pressed_at = rig.now
    rig.board.press(Button.CANCEL)
    rig.finish()

    assert first.state == "cancelled" and first.delivered_pages == [1, 2, 3]
    page3_out = ready + 2 * pitch + to_exit_trail_ns(lp2000)
    done = {e.detail["job"]: (e.t_ns, e.detail) for e in rig.of("job_done")}
    assert done[first.id] == (page3_out, {"job": first.id, "state": "cancelled",
                                          "delivered": 3, "pages": 10})
    assert done[second.id][1]["state"] == "completed"
    # The next job takes the pickup the cancelled page would have had.
    assert [e.detail for e in rig.of("page_feeding")][3:] == [
        {"job": second.id, "page": 1, "sheet": 4}, {"job": second.id, "page": 2, "sheet": 5}]
    assert rig.times("page_feeding")[3] == ready + 3 * pitch
    assert pressed_at < rig.times("page_feeding")[3]
    assert rig.output_tray() == [(first.id, 1), (first.id, 2), (first.id, 3),
                                 (second.id, 1), (second.id, 2)]


def test_cancel_with_nothing_printing_does_nothing(rig: Rig) -> None:
    rig.board.press(Button.CANCEL)
    rig.run_for(S)
    job = rig.printer.submit(2, 5.0)
    rig.finish()
    assert job.state == "completed" and rig.of("job_done")[0].detail["delivered"] == 2


def test_continue_with_no_empty_cartridge_does_nothing(rig: Rig) -> None:
    rig.board.press(Button.CONTINUE)
    job = rig.printer.submit(2, 5.0)
    rig.finish()
    assert job.state == "completed" and rig.state("toner") == "ok"
