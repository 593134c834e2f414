"""The operator panel: cover switch, two buttons, three LEDs and a 2x16 display.

Contract
--------
* ``cover_open`` reads ``True`` while the cover is open; each change raises the
  ``cover_open`` line with the new level. Setting the level it already has does nothing.
* :meth:`press` is a press and a release: the button's line (``button_cancel``,
  ``button_continue``) is raised ``True`` at once and ``False``
  :data:`BUTTON_PRESS_NS` later, in the scheduler's time. Pressing a button that is
  still down releases it first (an edge ``False``, then ``True``), so every press is
  seen and edges always alternate.
* LEDs hold the level last commanded; the display holds the text last shown, each row
  cut at :data:`hal.DISPLAY_COLUMNS` (never padded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from hal import DISPLAY_COLUMNS, Button, InterruptController, Output, Scheduler, Timer

BUTTON_PRESS_NS: Final = 100_000_000
"""How long a press holds a button down (100 ms)."""

LEDS: Final = (Output.LED_READY, Output.LED_ATTENTION, Output.LED_TONER)


class Panel:
    """See the module docstring."""

    def __init__(self, scheduler: Scheduler, irq: InterruptController) -> None:
        self._scheduler = scheduler
        self._irq = irq
        self.cover_open = False
        self._pressed: dict[Button, bool] = dict.fromkeys(Button, False)
        self._release_timers: dict[Button, Timer] = {}
        self._leds: dict[Output, bool] = dict.fromkeys(LEDS, False)
        self.display: tuple[str, str] = ("", "")
        """The two rows as shown (each at most 16 characters)."""
        self.observer: Callable[[str, object], None] | None = None
        """Told ``(signal, value)`` on every change: ``cover_open``, ``button_cancel``,
        ``button_continue``, ``row0``, ``row1``."""

    # -- cover ---------------------------------------------------------------------

    def set_cover(self, is_open: bool) -> bool:
        """Open or close the cover; returns whether its state changed."""
        if is_open == self.cover_open:
            return False
        self.cover_open = is_open
        if self.observer is not None:
            self.observer("cover_open", is_open)
        self._irq.raise_line("cover_open", is_open)
        return True

    # -- buttons -------------------------------------------------------------------

    def is_pressed(self, button: Button) -> bool:
        return self._pressed[button]

    def press(self, button: Button) -> None:
        if self._pressed[button]:
            self._scheduler.cancel(self._release_timers.pop(button))
            self._set_button(button, False)
        self._set_button(button, True)
        self._release_timers[button] = self._scheduler.call_later(
            BUTTON_PRESS_NS, lambda: self._release(button)
        )

    def _release(self, button: Button) -> None:
        del self._release_timers[button]
        self._set_button(button, False)

    def release_buttons(self) -> None:
        """Every button up at once, with its edge (a power cycle)."""
        for button, timer in list(self._release_timers.items()):
            self._scheduler.cancel(timer)
            del self._release_timers[button]
            self._set_button(button, False)

    def _set_button(self, button: Button, down: bool) -> None:
        self._pressed[button] = down
        line = f"button_{button.value}"
        if self.observer is not None:
            self.observer(line, down)
        self._irq.raise_line(line, down)

    # -- LEDs and display ----------------------------------------------------------

    def led(self, led: Output) -> bool:
        return self._leds[led]

    def set_led(self, led: Output, on: bool) -> None:
        self._leds[led] = on

    def show(self, row0: str, row1: str) -> None:
        shown = (row0[:DISPLAY_COLUMNS], row1[:DISPLAY_COLUMNS])
        before, self.display = self.display, shown
        if self.observer is not None:
            for i in range(2):
                if shown[i] != before[i]:
                    self.observer(f"row{i}", shown[i])
