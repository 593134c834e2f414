"""The operator panel: LEDs, the 2x16 display, and the cancel / continue buttons.

The panel follows the printer through published status (it is routed the engine's
state changes and the warnings, never per-page traffic) and shows the most urgent
condition. Buttons act on press: cancel drops the job being printed (its sheet in the
path is finished), continue overrides an empty-toner stop.
"""

from __future__ import annotations

from typing import Any

from firmware._kernel import ActiveObject, Kernel
from hal import Output

_ENGINE_TEXT = {
    "standby": "Ready",
    "warming": "Warming up",
    "printing": "Printing",
    "held": "Paused",
    "jammed": "Paper jam",
    "open": "Cover open",
    "failed": "Fuser error",
}
_ATTENTION_STATES = {"held", "jammed", "open", "failed"}

ROUTED_KINDS = frozenset({
    "state", "toner_low", "toner_empty", "toner_replaced", "paper_out", "paper_loaded",
    "power_save", "wake",
})
"""Status kinds the panel is told of."""


class Panel(ActiveObject):
    NAME = "panel"
    PRIORITY = 10
    STATES = ["ready", "attention"]
    INITIAL = "ready"
    TRANSITIONS = [
        {"trigger": "status", "source": "ready", "dest": "attention",
         "conditions": "_needs_attention", "before": "_note"},
        {"trigger": "status", "source": "attention", "dest": "ready",
         "unless": "_needs_attention", "before": "_note"},
        {"trigger": "status", "source": ["ready", "attention"], "dest": None,
         "before": "_note"},
        {"trigger": "button", "source": ["ready", "attention"], "dest": None,
         "after": "_on_button"},
    ]

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(kernel)
        self.spooler: ActiveObject | None = None
        self.toner: ActiveObject | None = None
        self._engine_state = "standby"
        self._toner_text = ""
        self._paper_out = False
        self._asleep = False

    def start(self) -> None:
        self._refresh()

    def _needs_attention(self, kind: str, detail: dict[str, Any], **_: Any) -> bool:
        state = self._engine_state
        if kind == "state" and detail.get("source") == "engine":
            state = str(detail["state"])
        return state in _ATTENTION_STATES

    def _note(self, kind: str, detail: dict[str, Any], **_: Any) -> None:
        if kind == "state":
            if detail.get("source") != "engine":
                return
            self._engine_state = str(detail["state"])
        elif kind == "toner_low":
            self._toner_text = "Toner low"
        elif kind == "toner_empty":
            self._toner_text = "Toner empty"
        elif kind == "toner_replaced":
            self._toner_text = ""
        elif kind == "paper_out":
            self._paper_out = True
        elif kind == "paper_loaded":
            self._paper_out = False
        elif kind == "power_save":
            self._asleep = True
        elif kind == "wake":
            self._asleep = False
        self._refresh()

    def on_enter_attention(self, **_: Any) -> None:
        self.board.set_output(Output.LED_ATTENTION, True)

    def on_enter_ready(self, **_: Any) -> None:
        self.board.set_output(Output.LED_ATTENTION, False)

    def _refresh(self) -> None:
        state = self._engine_state
        top = _ENGINE_TEXT.get(state, state)
        if state == "held" and self._paper_out:
            top = "Load paper"
        elif state == "standby" and self._asleep:
            top = "Power save"
        self.board.set_output(Output.LED_READY, state in ("standby", "warming", "printing"))
        self.board.show(top, self._toner_text)

    def _on_button(self, name: str, level: bool, **_: Any) -> None:
        if not level:
            return
        if name == "button_cancel":
            assert self.spooler is not None
            self.spooler.post("cancel")
        elif name == "button_continue":
            assert self.toner is not None
            self.toner.post("override")
