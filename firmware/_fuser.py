"""The fuser: closed-loop temperature control by window-comparator interrupts.

Never polled: every decision is taken when the thermistor's comparator fires.

* ``warming``: heater on, window up to ``ready_c``; crossing it is ``fuser_ready``.
  No crossing within ``warmup_limit_s`` of the heater's start, by the board's clock (a
  failed heater), is a fuser error.
* ``ready`` regulates in a band of ``ready_c +- hysteresis_c``: heater off above the
  band, on below it — switched by the board's own regulator where it has one
  (``"regulator"``: the band is then kept in the board's time, however slow the link;
  the window watches only the cold and over-temperature bounds), else here at each
  crossing. Below ``ready_c - 4 * hysteresis_c`` with the heater on, the fuser has gone
  cold (the engine stops picking) and warms again under the same limit. Above
  ``over_temp_c`` it is a fuser error.
* ``error``: heater off for good (until the board resets); the engine is told.
* ``interlocked``: the cover is open (the interlock ISR already cut the heater).
"""

from __future__ import annotations

from typing import Any

from firmware._kernel import ActiveObject, Kernel
from hal import AnalogChannel, Crossing, Output, Timer

_NO_LOW_BOUND_C = -1000.0
_COLD_BAND_FACTOR = 4.0


class Fuser(ActiveObject):
    NAME = "fuser"
    PRIORITY = 60
    STATES = ["off", "warming", "ready", "interlocked", "error"]
    INITIAL = "off"
    TRANSITIONS = [
        {"trigger": "warm_up", "source": "off", "dest": "warming"},
        {"trigger": "warm_up", "source": "interlocked", "dest": None, "after": "_want_heat"},
        {"trigger": "power_save", "source": ["warming", "ready"], "dest": "off"},
        {"trigger": "power_save", "source": "interlocked", "dest": None,
         "after": "_want_no_heat"},
        {"trigger": "crossing", "source": "warming", "dest": "ready", "conditions": "_above"},
        # One unconditional transition for the crossings of regulation (the hot path);
        # the rare outcomes leave it as events of their own.
        {"trigger": "crossing", "source": "ready", "dest": None, "after": "_regulate"},
        {"trigger": "overheat", "source": "ready", "dest": "error"},
        {"trigger": "went_cold", "source": "ready", "dest": "warming", "after": "_went_cold"},
        {"trigger": "crossing", "source": "off", "dest": "error", "conditions": "_above"},
        {"trigger": "warmup_timeout", "source": "warming", "dest": "error"},
        {"trigger": "cover_opened", "source": ["off", "warming", "ready"],
         "dest": "interlocked"},
        {"trigger": "cover_closed", "source": "interlocked", "dest": "warming",
         "conditions": "_heat_is_wanted"},
        {"trigger": "cover_closed", "source": "interlocked", "dest": "off"},
    ]

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(kernel)
        self.engine: ActiveObject | None = None
        cfg = kernel.board.config.fuser
        self._cfg = cfg
        self._cold_c = cfg.ready_c - _COLD_BAND_FACTOR * cfg.hysteresis_c
        self._warmup_limit_ns = round(cfg.warmup_limit_s * 1e9)
        self._timer: Timer | None = None
        self._heat_wanted = False
        self.error_reason = ""

    # -- conditions --------------------------------------------------------------------

    @staticmethod
    def _above(crossing: Crossing, **_: Any) -> bool:
        return crossing is Crossing.ABOVE

    def _heat_is_wanted(self, **_: Any) -> bool:
        return self._heat_wanted

    def _want_heat(self, **_: Any) -> None:
        self._heat_wanted = True

    def _want_no_heat(self, **_: Any) -> None:
        self._heat_wanted = False

    # -- states ------------------------------------------------------------------------

    def _heater(self, on: bool, low_c: float, high_c: float) -> None:
        self.board.set_output(Output.HEATER, on)  # (taking it back from a regulator)
        self.board.set_window(AnalogChannel.FUSER_C, low_c, high_c)

    def on_enter_off(self, **_: Any) -> None:
        self._heat_wanted = False
        self._heater(False, _NO_LOW_BOUND_C, self._cfg.over_temp_c)

    def on_enter_warming(self, **_: Any) -> None:
        self._heat_wanted = True
        self._heater(True, _NO_LOW_BOUND_C, self._cfg.ready_c)
        # In the board's time from the heater's start: a slow link is no cold heater.
        self._timer = self.after_commands(self._warmup_limit_ns, "warmup_timeout")

    def on_exit_warming(self, **_: Any) -> None:
        self.kernel.cancel(self._timer)
        self._timer = None

    def on_enter_ready(self, reading: float = 0.0, **_: Any) -> None:
        cfg = self._cfg
        board = self.board
        if "regulator" in board.capabilities:
            board.regulate(Output.HEATER, AnalogChannel.FUSER_C,
                           cfg.ready_c - cfg.hysteresis_c, cfg.ready_c + cfg.hysteresis_c)
            board.set_window(AnalogChannel.FUSER_C, self._cold_c, cfg.over_temp_c)
        else:
            self._heater(True, self._cold_c, cfg.ready_c + cfg.hysteresis_c)
        self.publish("fuser_ready", reading_c=round(reading, 3))
        assert self.engine is not None
        self.engine.post("fuser_ready")

    def on_exit_ready(self, **_: Any) -> None:
        assert self.engine is not None
        self.engine.post("fuser_cold")

    def on_enter_interlocked(self, **_: Any) -> None:
        self.board.set_output(Output.HEATER, False)

    def on_enter_error(self, reading: float | None = None, reason: str = "", **_: Any) -> None:
        self.board.set_output(Output.HEATER, False)
        if reading is None:
            reason, reading = "no heat within the warm-up limit", self._reading()
        elif not reason:
            reason = "over temperature"
        self.error_reason = reason
        self.publish("fuser_error", reason=reason, reading_c=round(reading, 3))
        assert self.engine is not None
        self.engine.post("fuser_fault")

    def _reading(self) -> float:
        return self.board.read_analog(AnalogChannel.FUSER_C)

    def _went_cold(self, **_: Any) -> None:
        self.publish("fuser_cold")

    def _regulate(self, crossing: Crossing, reading: float, **_: Any) -> None:
        """Bang-bang in the band: off above it, on below it. Above the over-temperature
        bound it is an error; below the cold bound with the heater on (the board's
        regulator has it on there), warm up again."""
        cfg = self._cfg
        if crossing is Crossing.ABOVE:
            if reading >= cfg.over_temp_c:
                self.overheat(reading=reading)  # type: ignore[attr-defined]
            else:
                self._heater(False, cfg.ready_c - cfg.hysteresis_c, cfg.over_temp_c)
        elif self.board.output(Output.HEATER) or "regulator" in self.board.capabilities:
            self.went_cold()  # type: ignore[attr-defined]
        else:
            self._heater(True, self._cold_c, cfg.ready_c + cfg.hysteresis_c)

    def fail_self_test(self) -> None:
        """Boot found the thermistor implausible: the fuser may never heat."""
        self.machine.set_state("error")
        self.on_enter_error(reading=self._reading(), reason="thermistor implausible")
