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
* The regulator (:meth:`regulate`, the board's ``"regulator"``): a comparator with
  hysteresis on the same analog front end that switches the heater itself — off when the
  temperature reaches the band's top, on when it falls to its bottom — solved in closed
  form like the window (its own timer, re-solved at every change; the curve re-based on
  the bound it switches at). Starting it applies the rule at once; inside the band the
  heater keeps its state. :meth:`set_heater` (the firmware's command) ends it. Each
  switch it makes is told to ``on_regulated(on)``.
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
        self._band: tuple[float, float] | None = None
        self._band_timer: Timer | None = None
        self.on_regulated: Callable[[bool], None] | None = None
        """Told the heater's new state each time the regulator switches it."""
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
        """The heater as the firmware commands it (which ends a regulation)."""
        if self._band is not None:
            self.release()
        self._switch(on)

    def _switch(self, on: bool) -> None:
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
        """Start a new curve segment at ``temp_c`` now, and re-solve the comparator and
        the regulator."""
        self._t0_ns = self._scheduler.now_ns
        self._temp0_c = temp_c
        if self.observer is not None:
            self.observer("temp_c", temp_c)
        self._solve_crossing()
        if self._band is not None:
            self._solve_band()

    def _first_reach_ns(self, bound: float) -> int | None:
        """The first whole nanosecond the current curve is past ``bound``, if it ever is
        (it runs monotonically toward its target, and heating never passes the cutoff)."""
        temp0, target = self._temp0_c, self._target_c
        if target > bound:
            if target > self._cutoff_c and bound >= self._cutoff_c:
                return None
        elif not target < bound:
            return None
        delay_s = self._tau_s * math.log((target - temp0) / (target - bound))
        return self._t0_ns + math.floor(delay_s * 1e9) + 1

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
        # The curve can only leave by the bound on its target's side.
        if self._target_c > high:
            bound, crossing = high, Crossing.ABOVE
        elif self._target_c < low:
            bound, crossing = low, Crossing.BELOW
        else:
            return
        t_ns = self._first_reach_ns(bound)
        if t_ns is not None:
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

    # -- regulator -----------------------------------------------------------------

    def regulate(self, low_c: float, high_c: float) -> None:
        """Hold the heater in ``[low_c, high_c]`` from now on (see the module docstring)."""
        self._band = (low_c, high_c)
        self._solve_band()

    def release(self) -> None:
        """End the regulation; the heater stays as the regulator left it."""
        self._band = None
        if self._band_timer is not None:
            self._scheduler.cancel(self._band_timer)
            self._band_timer = None

    @property
    def regulated(self) -> bool:
        return self._band is not None

    def _regulated(self, on: bool) -> None:
        """The regulator switches the heater now (the board hears of it first, as it
        does of a commanded switch)."""
        if on != self.heater_on:
            if self.on_regulated is not None:
                self.on_regulated(on)
            was = self.heating
            self._switch(on)
            if self.heating == was:  # a failed heater: no new curve re-solved it
                self._solve_band()

    def _solve_band(self) -> None:
        if self._band_timer is not None:
            self._scheduler.cancel(self._band_timer)
            self._band_timer = None
        assert self._band is not None
        low, high = self._band
        temp = self.temp_c()
        if self.heater_on and temp >= high:
            self._regulated(False)  # re-solves
            return
        if not self.heater_on and temp <= low:
            self._regulated(True)
            return
        # The next switch: off at the top while heating, on at the bottom while off. A
        # heater on but failed cools with nothing to switch.
        if self.heater_on:
            if not self.heating:
                return
            bound = high
        else:
            bound = low
        t_ns = self._first_reach_ns(bound)
        if t_ns is not None:
            self._band_timer = self._scheduler.call_at(
                t_ns, partial(self._on_band_edge, bound, not self.heater_on)
            )

    def _on_band_edge(self, bound: float, on: bool) -> None:
        self._band_timer = None
        # Re-based exactly on the bound, as at a window crossing (module docstring).
        self._t0_ns = self._scheduler.now_ns
        self._temp0_c = bound
        self._regulated(on)
