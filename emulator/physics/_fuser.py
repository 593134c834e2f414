"""The fuser: a first-order thermal model, exact in closed form, and its thermistor.

Contract
--------
* The true temperature follows ``T(t) = T_inf + (T0 - T_inf) * exp(-(t - t0) / tau_s)``
  from the last change ``(t0, T0)``, with ``T_inf = max_c`` while the heater draws power
  and ``ambient_c`` otherwise. It starts at ``ambient_c``. Changes are: the heater
  switched (or failed, or repaired), and a sheet entering the nip, which takes
  ``sheet_draw_c`` at once. Between changes nothing is computed: no ticks.
* A failed heater (a fault) draws no power whatever the firmware commands.
* The element's thermostat (``cutoff_c``, the hardware over-temperature cutoff) opens
  at ``cutoff_c`` whatever the firmware commands: while the heater draws power the
  temperature is ``min(T(t), cutoff_c)`` (an ideal thermostat holds the element at its
  setpoint), so the fuser never exceeds ``cutoff_c`` by its own heat. A board file puts
  it above the firmware's working band and below its ``over_temp_c``, so a healthy run
  never reaches it and is unchanged by it.
* :meth:`read` is a thermistor reading now: ``T(now) + N(0, thermistor_noise_c)`` from
  the model's own seeded RNG (one draw per read; none when the noise is 0).
* The window comparator (the ``fuser`` line) watches the true temperature (the analog
  front end before the ADC's noise) and is one-shot (see ``hal.Board``). While it is
  armed, the instant the temperature leaves ``[low, high]`` is solved in closed form —
  ``s = tau_s * ln((T_inf - T0) / (T_inf - bound))``, the crossing is at the first whole
  nanosecond after ``s`` (``floor(s) + 1``) — and scheduled as one timer, re-solved at
  every change. It raises the line with a :class:`hal.WindowCrossing` whose ``reading``
  is the bound. At that instant the curve is re-based exactly on the bound (it was past
  it by less than one nanosecond of slope), so a firmware that switches the heater and
  re-arms the same bound in its ISR is inside the window, not outside it again: time
  always moves on. Arming it, or a step (a sheet), with the temperature already outside
  raises at once with the temperature as ``reading``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import partial

from boards import FuserConfig
from hal import (
    AnalogChannel,
    Crossing,
    InterruptController,
    Scheduler,
    Timer,
    WindowCrossing,
)

_LINE = "fuser"


class Fuser:
    """See the module docstring."""

    def __init__(
        self,
        config: FuserConfig,
        scheduler: Scheduler,
        irq: InterruptController,
        rng: random.Random,
    ) -> None:
        self._scheduler = scheduler
        self._irq = irq
        self._rng = rng
        self._ambient_c = config.ambient_c
        self._max_c = config.max_c
        self._cutoff_c = config.cutoff_c
        self._tau_s = config.tau_s
        self._tau_ns = config.tau_s * 1e9
        self._draw_c = config.sheet_draw_c
        self._noise_c = config.thermistor_noise_c
        self.heater_on = False
        """The heater as commanded."""
        self.heater_failed = False
        self._t0_ns = scheduler.now_ns
        self._temp0_c = config.ambient_c
        self._target_c = config.ambient_c
        self._window: tuple[float, float] | None = None
        self._crossing_timer: Timer | None = None
        self.observer: Callable[[str, object], None] | None = None
        """Told ``("temp_c", T)`` at every change of the curve (heater, sheet, crossing)
        and ``("heating", bool)`` when the element starts or stops drawing power."""

    # -- physics -------------------------------------------------------------------

    @property
    def heating(self) -> bool:
        """Whether the element draws power (commanded on and not failed)."""
        return self.heater_on and not self.heater_failed

    def temp_c(self) -> float:
        """The true temperature now."""
        return self._temp_at(self._scheduler.now_ns)

    def read(self) -> float:
        """A thermistor reading now (°C, noise included)."""
        temp = self._temp_at(self._scheduler.now_ns)
        if self._noise_c == 0.0:
            return temp
        return temp + self._rng.gauss(0.0, self._noise_c)

    def set_heater(self, on: bool) -> None:
        if on != self.heater_on:
            was = self.heating
            self.heater_on = on
            self._heating_changed(was)

    def set_failed(self, failed: bool) -> None:
        if failed != self.heater_failed:
            was = self.heating
            self.heater_failed = failed
            self._heating_changed(was)

    def draw_sheet(self) -> None:
        """A sheet enters the nip and takes ``sheet_draw_c`` at once."""
        if self._draw_c == 0.0:
            return
        self._rebase(self.temp_c() - self._draw_c)

    def _heating_changed(self, was_heating: bool) -> None:
        heating = self.heating
        if heating == was_heating:
            return
        # The temperature now is on the old curve: read it before the target moves.
        temp_now_c = self.temp_c()
        self._target_c = self._max_c if heating else self._ambient_c
        if self.observer is not None:
            self.observer("heating", heating)
        self._rebase(temp_now_c)

    def _temp_at(self, t_ns: int) -> float:
        if t_ns == self._t0_ns:
            return self._temp0_c  # exactly: no "a + (b - a)" round-off at a bound
        target = self._target_c
        temp = target + (self._temp0_c - target) * math.exp(-(t_ns - self._t0_ns) / self._tau_ns)
        if target > self._cutoff_c and temp > self._cutoff_c:
            return max(self._cutoff_c, self._temp0_c)  # the thermostat holds, never heats
        return temp

    def set_temp(self, temp_c: float) -> None:
        """The element is at ``temp_c`` now (a power cycle after a long time off)."""
        self._rebase(temp_c)

    def _rebase(self, temp_c: float) -> None:
        """Start a new curve segment at ``temp_c`` now, and re-solve the comparator."""
        self._t0_ns = self._scheduler.now_ns
        self._temp0_c = temp_c
        if self.observer is not None:
            self.observer("temp_c", temp_c)
        self._solve_crossing()

    # -- window comparator ---------------------------------------------------------

    def set_window(self, low_c: float, high_c: float) -> None:
        self._window = (low_c, high_c)
        self._solve_crossing()

    def disarm(self) -> None:
        self._window = None
        self._cancel_crossing()

    @property
    def window(self) -> tuple[float, float] | None:
        """The armed window, or ``None`` when the comparator is disarmed."""
        return self._window

    def _cancel_crossing(self) -> None:
        if self._crossing_timer is not None:
            self._scheduler.cancel(self._crossing_timer)
            self._crossing_timer = None

    def _solve_crossing(self) -> None:
        self._cancel_crossing()
        window = self._window
        if window is None:
            return
        low, high = window
        now = self._scheduler.now_ns
        temp = self._temp_at(now)
        if temp > high:
            self._fire(temp, Crossing.ABOVE)
            return
        if temp < low:
            self._fire(temp, Crossing.BELOW)
            return
        # The curve is monotonic toward the target: it can only leave by the bound on
        # the target's side, and only if the target lies beyond that bound. Heating, it
        # never passes the thermostat's cutoff.
        temp0, target = self._temp0_c, self._target_c
        if target > high and not (target > self._cutoff_c and high >= self._cutoff_c):
            bound, crossing = high, Crossing.ABOVE
        elif target < low:
            bound, crossing = low, Crossing.BELOW
        else:
            return
        delay_s = self._tau_s * math.log((target - temp0) / (target - bound))
        t_ns = self._t0_ns + math.floor(delay_s * 1e9) + 1
        self._crossing_timer = self._scheduler.call_at(
            t_ns, partial(self._on_crossing, bound, crossing)
        )

    def _on_crossing(self, bound: float, crossing: Crossing) -> None:
        self._crossing_timer = None
        self._window = None
        # Whole nanoseconds put the curve a hair past the bound; re-basing on the bound
        # keeps "the same bound, re-armed now" inside (see the module docstring).
        self._t0_ns = self._scheduler.now_ns
        self._temp0_c = bound
        if self.observer is not None:
            self.observer("temp_c", bound)
        self._fire(bound, crossing)

    def _fire(self, reading_c: float, crossing: Crossing) -> None:
        self._window = None
        self._irq.raise_line(_LINE, WindowCrossing(AnalogChannel.FUSER_C, reading_c, crossing))
