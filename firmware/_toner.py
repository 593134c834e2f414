"""The toner monitor: warnings from the level sensor's window comparator.

``ok`` → (below ``low_pct``) → ``low``: the toner LED and a ``toner_low`` status, while
printing goes on at full speed. ``low`` → (below ``empty_pct``) → ``empty``: under the
board's ``stop`` policy the engine is held until a new cartridge (or the continue
button) releases it; under ``continue`` it is only reported. A warning clears only
``hysteresis_pct`` above its threshold, so a noisy sensor does not flap.
"""

from __future__ import annotations

from typing import Any

from firmware._kernel import ActiveObject, Kernel
from hal import AnalogChannel, Crossing, Output

_OPEN_BOUND_PCT = 1000.0


class TonerMonitor(ActiveObject):
    NAME = "toner"
    PRIORITY = 20
    STATES = ["ok", "low", "empty"]
    INITIAL = "ok"
    TRANSITIONS = [
        {"trigger": "crossing", "source": "ok", "dest": "low", "conditions": "_below",
         "after": "_warn_low"},
        {"trigger": "crossing", "source": "low", "dest": "empty", "conditions": "_below"},
        {"trigger": "crossing", "source": "low", "dest": "ok", "conditions": "_above",
         "after": "_replaced"},
        {"trigger": "crossing", "source": "empty", "dest": "ok",
         "conditions": ["_above", "_full_enough"], "after": "_replaced"},
        {"trigger": "crossing", "source": "empty", "dest": "low", "conditions": "_above",
         "after": "_replaced"},
        {"trigger": "override", "source": "empty", "dest": None, "after": "_release"},
    ]

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(kernel)
        self.engine: ActiveObject | None = None
        self._cfg = kernel.board.config.toner

    def start(self) -> None:
        """Arm the comparator; a cartridge already low at boot fires it at once."""
        self.on_enter_ok()

    @staticmethod
    def _below(crossing: Crossing, **_: Any) -> bool:
        return crossing is Crossing.BELOW

    @staticmethod
    def _above(crossing: Crossing, **_: Any) -> bool:
        return crossing is Crossing.ABOVE

    def _full_enough(self, reading: float, **_: Any) -> bool:
        return reading >= self._cfg.low_pct + self._cfg.hysteresis_pct

    def _window(self, low_pct: float, high_pct: float) -> None:
        self.board.set_window(AnalogChannel.TONER_PCT, low_pct, high_pct)

    def on_enter_ok(self, **_: Any) -> None:
        self.board.set_output(Output.LED_TONER, False)
        self._window(self._cfg.low_pct, _OPEN_BOUND_PCT)

    def on_enter_low(self, **_: Any) -> None:
        self.board.set_output(Output.LED_TONER, True)
        self._window(self._cfg.empty_pct, self._cfg.low_pct + self._cfg.hysteresis_pct)

    def on_enter_empty(self, reading: float, **_: Any) -> None:
        cfg = self._cfg
        self.board.set_output(Output.LED_TONER, True)
        self._window(-_OPEN_BOUND_PCT, cfg.empty_pct + cfg.hysteresis_pct)
        self.publish("toner_empty", reading_pct=round(reading, 4), policy=cfg.empty_policy)
        if cfg.empty_policy == "stop":
            assert self.engine is not None
            self.engine.post("hold", reason="toner")

    def on_exit_empty(self, **_: Any) -> None:
        self._release()

    def _release(self, **_: Any) -> None:
        if self._cfg.empty_policy == "stop":
            assert self.engine is not None
            self.engine.post("release", reason="toner")

    def _warn_low(self, reading: float, **_: Any) -> None:
        self.publish("toner_low", reading_pct=round(reading, 4))

    def _replaced(self, reading: float, **_: Any) -> None:
        self.publish("toner_replaced", reading_pct=round(reading, 4))
