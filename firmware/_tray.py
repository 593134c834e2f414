"""The input tray: paper out holds the engine after the sheet in flight; paper loaded
releases it, and printing resumes at the next undelivered page."""

from __future__ import annotations

from typing import Any

from firmware._kernel import ActiveObject, Kernel
from hal import DigitalInput


class Tray(ActiveObject):
    NAME = "tray"
    PRIORITY = 30
    STATES = ["loaded", "empty"]
    INITIAL = "loaded"
    TRANSITIONS = [
        {"trigger": "paper", "source": "loaded", "dest": "empty", "unless": "_present"},
        {"trigger": "paper", "source": "empty", "dest": "loaded", "conditions": "_present"},
    ]

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(kernel)
        self.engine: ActiveObject | None = None

    def start(self) -> None:
        if not self.board.read_input(DigitalInput.PAPER_PRESENT):
            self.post("paper", level=False)

    @staticmethod
    def _present(level: bool, **_: Any) -> bool:
        return level

    def on_enter_empty(self, **_: Any) -> None:
        self.publish("paper_out")
        assert self.engine is not None
        self.engine.post("hold", reason="paper")

    def on_enter_loaded(self, **_: Any) -> None:
        self.publish("paper_loaded")
        assert self.engine is not None
        self.engine.post("release", reason="paper")
