"""The input tray (emulator/physics/_tray.py) and the panel (emulator/physics/_panel.py): edge
interrupts carry the new level; a button press is True then False 100 ms later in
virtual time; the display is cut at 16 columns."""

from __future__ import annotations

import dataclasses

import pytest

from boards import load_board
from emulator.physics import BUTTON_PRESS_NS, InputTray, Panel
from hal import Button, InterruptController, IrqEvent, Output, Scheduler, irq_lines_of

LP = load_board("lp-2000")
MS = 1_000_000


class Rig:
    def __init__(self, loaded_sheets: int = 3) -> None:
        self.scheduler = Scheduler()
        self.irq = InterruptController(self.scheduler, irq_lines_of(LP))
        tray = dataclasses.replace(LP.tray, loaded_sheets=loaded_sheets)
        self.tray = InputTray(tray, self.irq)
        self.panel = Panel(self.scheduler, self.irq)
        self.edges: list[tuple[int, str, object]] = []
        for line in ("paper_present", "cover_open", "button_cancel", "button_continue"):
            self.irq.attach(line, self._isr)

    def _isr(self, event: IrqEvent) -> None:
        self.edges.append((event.t_ns, event.name, event.value))

    def run(self, until_ns: int) -> None:
        self.scheduler.run_until(until_ns)


# -- tray ----------------------------------------------------------------------------


def test_the_tray_starts_loaded() -> None:
    rig = Rig(3)
    assert rig.tray.count == 3 and rig.tray.paper_present
    assert rig.tray.capacity_sheets == LP.tray.capacity_sheets


def test_taking_the_last_sheet_raises_paper_present_false() -> None:
    rig = Rig(2)
    assert rig.tray.take() and rig.tray.take()
    assert not rig.tray.take()  # empty: nothing taken
    rig.run(0)
    assert rig.tray.count == 0 and not rig.tray.paper_present
    assert rig.edges == [(0, "paper_present", False)]  # one edge, not one per sheet


def test_refilling_raises_paper_present_true_once() -> None:
    rig = Rig(0)
    rig.tray.set_count(10)
    rig.tray.set_count(250)
    rig.run(0)
    assert rig.edges == [(0, "paper_present", True)]
    assert rig.tray.count == 250


@pytest.mark.parametrize("sheets", [-1, LP.tray.capacity_sheets + 1])
def test_a_tray_cannot_hold_what_does_not_fit(sheets: int) -> None:
    rig = Rig()
    with pytest.raises(ValueError, match="cannot hold"):
        rig.tray.set_count(sheets)


def test_tray_observer_sees_every_count() -> None:
    rig = Rig(1)
    seen: list[tuple[str, object]] = []
    rig.tray.observer = lambda signal, value: seen.append((signal, value))
    rig.tray.take()
    rig.tray.set_count(5)
    assert seen == [
        ("sheets", 0),
        ("paper_present", False),
        ("sheets", 5),
        ("paper_present", True),
    ]


# -- panel ---------------------------------------------------------------------------


def test_the_cover_raises_edges_with_its_new_level() -> None:
    rig = Rig()
    assert rig.panel.set_cover(True)
    assert not rig.panel.set_cover(True)  # already open: no edge
    rig.run(5 * MS)
    assert rig.panel.set_cover(False)
    rig.run(10 * MS)
    assert rig.edges == [(0, "cover_open", True), (5 * MS, "cover_open", False)]


@pytest.mark.parametrize("button", list(Button))
def test_a_press_is_true_then_false_100_ms_later(button: Button) -> None:
    rig = Rig()
    rig.run(7 * MS)
    rig.panel.press(button)
    assert rig.panel.is_pressed(button)
    rig.run(7 * MS + BUTTON_PRESS_NS - 1)
    assert rig.panel.is_pressed(button)
    rig.run(1_000 * MS)
    line = f"button_{button.value}"
    assert BUTTON_PRESS_NS == 100 * MS
    assert rig.edges == [(7 * MS, line, True), (7 * MS + 100 * MS, line, False)]
    assert not rig.panel.is_pressed(button)


def test_pressing_a_held_button_releases_it_first() -> None:
    rig = Rig()
    rig.panel.press(Button.CANCEL)
    rig.run(30 * MS)
    rig.panel.press(Button.CANCEL)
    rig.run(1_000 * MS)
    assert rig.edges == [
        (0, "button_cancel", True),
        (30 * MS, "button_cancel", False),
        (30 * MS, "button_cancel", True),
        (130 * MS, "button_cancel", False),
    ]


def test_buttons_are_independent() -> None:
    rig = Rig()
    rig.panel.press(Button.CANCEL)
    rig.run(50 * MS)
    rig.panel.press(Button.CONTINUE)
    rig.run(1_000 * MS)
    assert [(t // MS, n, v) for t, n, v in rig.edges] == [
        (0, "button_cancel", True),
        (50, "button_continue", True),
        (100, "button_cancel", False),
        (150, "button_continue", False),
    ]


def test_the_display_is_cut_at_16_columns() -> None:
    rig = Rig()
    rig.panel.show("READY", "a much longer second row")
    assert rig.panel.display == ("READY", "a much longer se")
    rig.panel.show("0123456789abcdefXYZ", "")
    assert rig.panel.display == ("0123456789abcdef", "")


def test_display_observer_sees_changed_rows_only() -> None:
    rig = Rig()
    seen: list[tuple[str, object]] = []
    rig.panel.observer = lambda signal, value: seen.append((signal, value))
    rig.panel.show("READY", "")
    rig.panel.show("READY", "TONER LOW")
    assert seen == [("row0", "READY"), ("row1", "TONER LOW")]


def test_leds_hold_their_level() -> None:
    rig = Rig()
    assert not rig.panel.led(Output.LED_READY)
    rig.panel.set_led(Output.LED_READY, True)
    rig.panel.set_led(Output.LED_TONER, True)
    rig.panel.set_led(Output.LED_TONER, False)
    assert rig.panel.led(Output.LED_READY) and not rig.panel.led(Output.LED_TONER)
    assert not rig.panel.led(Output.LED_ATTENTION)
