"""Fault injection: what a test or a scenario can do to a board from outside.

The emulated board implements it directly on its physics models; a serial device offers
it as simulation commands when its HELLO announces the ``"sim"`` capability (a real
device does not). Faults of the *printer* are physical conditions here — a stuck sheet,
an empty tray — and reach the firmware only as the interrupts those conditions cause.
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable


class JamPoint(enum.StrEnum):
    """Where a sheet sticks: its leading edge stops at that sensor."""

    FEED = "feed"
    EXIT = "exit"


class Button(enum.StrEnum):
    CANCEL = "cancel"
    CONTINUE = "continue"


@runtime_checkable
class FaultInjector(Protocol):
    """Each method acts at the board's current instant."""

    def set_toner_pct(self, level_pct: float) -> None:
        """The cartridge now holds ``level_pct``."""
        ...

    def replace_toner(self) -> None:
        """A new, full cartridge (the cover is opened and closed around it)."""
        ...

    def set_tray(self, sheets: int) -> None:
        """The input tray now holds ``sheets`` (0 empties it)."""
        ...

    def jam(self, point: JamPoint) -> None:
        """The sheet approaching ``point`` (or the next one picked) sticks there."""
        ...

    def misfeed(self) -> None:
        """The next pickup takes nothing."""
        ...

    def set_cover(self, is_open: bool) -> None:
        """Open or close the cover. Opening it lets the user pull every sheet out of
        the paper path (how a jam is cleared)."""
        ...

    def press(self, button: Button) -> None:
        """Press and release a panel button."""
        ...

    def set_heater_failed(self, failed: bool) -> None:
        """A failed heater element draws no power whatever the firmware commands."""
        ...
