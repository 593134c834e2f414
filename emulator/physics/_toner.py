"""The toner cartridge and its level sensor.

Contract
--------
* ``level_pct`` (the true level, in ``[0, 100]``) starts at the board file's
  ``loaded_pct`` and falls with each imaged page by
  ``(coverage_pct / 5) / capacity_pages_at_5pct * 100`` percent (never below 0).
* The sensor is sampled when the level changes (a page imaged, the level set by a fault,
  a cartridge replaced: each is a sample even when the level stays where it was, e.g.
  a page on an empty cartridge) and once at power-on: ``reading_pct = level_pct + N(0,
  sensor_noise_pct)``, clamped to ``[0, 100]``, drawn from the model's own seeded RNG.
  :meth:`read` returns the last sample, so how often the firmware reads it changes
  nothing, and the noise is the same for the same seed and the same history.
* The window comparator (the ``toner`` line) compares each new sample with its window;
  it is one-shot (see ``hal.Board``): :meth:`set_window` arms it, the first sample
  outside ``[low, high]`` raises the line once with a :class:`hal.WindowCrossing` and
  disarms it. Arming it while the last sample is already outside raises at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from boards import TonerConfig
from hal import AnalogChannel, Crossing, InterruptController, WindowCrossing

_LINE = "toner"


class TonerCartridge:
    """See the module docstring."""

    def __init__(self, config: TonerConfig, irq: InterruptController, rng: random.Random) -> None:
        self._irq = irq
        self._rng = rng
        self._noise_pct = config.sensor_noise_pct
        # Percent of a full cartridge one page at 1 % coverage takes.
        self._pct_per_coverage_pct = 100.0 / (5.0 * config.capacity_pages_at_5pct)
        self.level_pct = min(100.0, max(0.0, config.loaded_pct))
        self.reading_pct = self._sample()
        self._window: tuple[float, float] | None = None
        self.observer: Callable[[str, object], None] | None = None
        """Told ``("level_pct", level)`` on every change of the true level."""

    def read(self) -> float:
        """The sensor's last sample (%)."""
        return self.reading_pct

    def consume(self, coverage_pct: float) -> None:
        """One page imaged at ``coverage_pct``."""
        self._set(self.level_pct - coverage_pct * self._pct_per_coverage_pct)

    def set_level(self, level_pct: float) -> None:
        self._set(level_pct)

    def replace(self) -> None:
        """A new, full cartridge."""
        self._set(100.0)

    # -- window comparator ---------------------------------------------------------

    def set_window(self, low_pct: float, high_pct: float) -> None:
        self._window = (low_pct, high_pct)
        self._check()

    def disarm(self) -> None:
        self._window = None

    @property
    def window(self) -> tuple[float, float] | None:
        """The armed window, or ``None`` when the comparator is disarmed."""
        return self._window

    # -- internals -----------------------------------------------------------------

    def _set(self, level_pct: float) -> None:
        level_pct = min(100.0, max(0.0, level_pct))
        changed = level_pct != self.level_pct
        self.level_pct = level_pct
        if changed and self.observer is not None:
            self.observer("level_pct", level_pct)
        self.reading_pct = self._sample()
        self._check()

    def _sample(self) -> float:
        if self._noise_pct == 0.0:
            return self.level_pct
        noisy = self.level_pct + self._rng.gauss(0.0, self._noise_pct)
        return min(100.0, max(0.0, noisy))

    def _check(self) -> None:
        window = self._window
        if window is None:
            return
        reading = self.reading_pct
        if reading < window[0]:
            crossing = Crossing.BELOW
        elif reading > window[1]:
            crossing = Crossing.ABOVE
        else:
            return
        self._window = None
        self._irq.raise_line(_LINE, WindowCrossing(AnalogChannel.TONER_PCT, reading, crossing))
