"""The cover interlock.

Opening the cover is the one event that cannot wait for an active object: the ISR
(:func:`cover_isr`) cuts heater, laser and motor itself, as real firmware does, and then
posts ``opened``. The engine pauses (and treats every sheet in the path as pulled out by
the user); closing the cover resumes it.
"""

from __future__ import annotations

from typing import Any

from firmware._kernel import ActiveObject, Kernel
from hal import Board, IrqEvent, Output


def safety_cut(board: Board) -> None:
    """Heater, laser and motor off: the interlock's hard action."""
    board.set_output(Output.HEATER, False)
    board.set_output(Output.LASER, False)
    board.set_output(Output.MOTOR, False)


class CoverInterlock(ActiveObject):
    NAME = "cover"
    PRIORITY = 70
    STATES = ["closed", "open"]
    INITIAL = "closed"
    TRANSITIONS = [
        {"trigger": "opened", "source": "closed", "dest": "open"},
        {"trigger": "closed", "source": "open", "dest": "closed"},
    ]

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(kernel)
        self.listeners: list[ActiveObject] = []

    def isr(self, event: IrqEvent) -> None:
        """Cut power, then tell the engine and fuser straight from the ISR: the sheets
        the user pulls out raise sensor edges next, and the engine must already know
        they are not deliveries."""
        self.notify(bool(event.value))

    def notify(self, is_open: bool) -> None:
        if is_open:
            safety_cut(self.board)
        for ao in self.listeners:
            ao.post("cover_opened" if is_open else "cover_closed")
        self.post("opened" if is_open else "closed")

    def on_enter_open(self, **_: Any) -> None:
        self.publish("cover_open")

    def on_enter_closed(self, **_: Any) -> None:
        self.publish("cover_closed")
