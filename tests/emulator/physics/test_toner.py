"""The toner cartridge (emulator/physics/_toner.py): the level falls by
``(coverage / 5) / capacity_pages_at_5pct * 100`` per page; the sensor is sampled (with
seeded noise, clamped to [0, 100]) when the level changes; the window comparator checks
each sample and is one-shot."""

from __future__ import annotations

import dataclasses

import pytest

from boards import BoardConfig, load_board
from emulator.physics import TonerCartridge, model_rng
from hal import (
    AnalogChannel,
    Crossing,
    InterruptController,
    IrqEvent,
    Scheduler,
    WindowCrossing,
    irq_lines_of,
)

LP = load_board("lp-2000")
T = LP.toner  # 3000 pages at 5 %, loaded 100 %


class Rig:
    def __init__(self, config: BoardConfig = LP, seed: int = 0) -> None:
        self.scheduler = Scheduler()
        self.irq = InterruptController(self.scheduler, irq_lines_of(config))
        self.toner = TonerCartridge(config.toner, self.irq, model_rng(seed, "toner"))
        self.crossings: list[WindowCrossing] = []
        self.irq.attach("toner", self._isr)

    def _isr(self, event: IrqEvent) -> None:
        assert isinstance(event.value, WindowCrossing)
        self.crossings.append(event.value)

    def settle(self) -> None:
        self.scheduler.run()


def with_toner(
    loaded_pct: float = T.loaded_pct, sensor_noise_pct: float = T.sensor_noise_pct
) -> BoardConfig:
    toner = dataclasses.replace(T, loaded_pct=loaded_pct, sensor_noise_pct=sensor_noise_pct)
    return dataclasses.replace(LP, toner=toner)


def test_starts_at_the_loaded_level() -> None:
    rig = Rig(with_toner(loaded_pct=42.5))
    assert rig.toner.level_pct == 42.5 and rig.toner.read() == 42.5


def test_a_page_at_5pct_takes_one_capacity_th_of_the_cartridge() -> None:
    rig = Rig()
    rig.toner.consume(5.0)
    assert rig.toner.level_pct == pytest.approx(100.0 - 100.0 / T.capacity_pages_at_5pct)


@pytest.mark.parametrize("coverage_pct", [0.0, 1.0, 5.0, 12.5, 100.0])
def test_the_level_falls_by_coverage_exactly(coverage_pct: float) -> None:
    rig = Rig()
    for _ in range(10):
        rig.toner.consume(coverage_pct)
    per_page = (coverage_pct / 5.0) / T.capacity_pages_at_5pct * 100.0
    assert rig.toner.level_pct == pytest.approx(100.0 - 10 * per_page, rel=1e-12)
    assert rig.toner.read() == rig.toner.level_pct  # lp-2000's sensor has no noise


def test_a_full_cartridge_prints_its_rated_pages() -> None:
    rig = Rig()
    for _ in range(T.capacity_pages_at_5pct - 1):
        rig.toner.consume(5.0)
    assert rig.toner.level_pct > 0.0
    rig.toner.consume(5.0)
    assert rig.toner.level_pct == pytest.approx(0.0, abs=1e-9)


def test_the_level_never_goes_below_zero() -> None:
    rig = Rig(with_toner(loaded_pct=0.01))
    rig.toner.consume(100.0)
    rig.toner.consume(100.0)
    assert rig.toner.level_pct == 0.0 and rig.toner.read() == 0.0


def test_set_level_and_replace() -> None:
    rig = Rig()
    rig.toner.set_level(3.0)
    assert rig.toner.level_pct == 3.0 and rig.toner.read() == 3.0
    rig.toner.replace()
    assert rig.toner.level_pct == 100.0


def test_the_comparator_fires_on_the_page_that_crosses_and_only_once() -> None:
    rig = Rig(with_toner(loaded_pct=10.1))
    rig.toner.set_window(T.low_pct, 100.0)
    per_page = 100.0 / T.capacity_pages_at_5pct  # 0.0333 %
    pages = 0
    while not rig.crossings:
        rig.toner.consume(5.0)
        pages += 1
        rig.settle()
        assert pages < 100
    assert pages == 4  # 10.1 - 4 * 0.0333 = 9.967 < 10 (3 pages leave 10.0000...)
    [crossing] = rig.crossings
    assert crossing.channel is AnalogChannel.TONER_PCT and crossing.crossing is Crossing.BELOW
    assert crossing.reading == pytest.approx(10.1 - 4 * per_page)
    for _ in range(100):
        rig.toner.consume(5.0)
    rig.settle()
    assert len(rig.crossings) == 1 and rig.toner.window is None


def test_arming_outside_fires_at_once() -> None:
    rig = Rig(with_toner(loaded_pct=5.0))
    rig.toner.set_window(T.low_pct, 100.0)
    rig.settle()
    assert [(c.crossing, c.reading) for c in rig.crossings] == [(Crossing.BELOW, 5.0)]


def test_a_refill_crosses_above() -> None:
    rig = Rig(with_toner(loaded_pct=5.0))
    rig.toner.set_window(0.0, T.low_pct + T.hysteresis_pct)
    rig.toner.replace()
    rig.settle()
    assert [(c.crossing, c.reading) for c in rig.crossings] == [(Crossing.ABOVE, 100.0)]


def test_disarm() -> None:
    rig = Rig()
    rig.toner.set_window(50.0, 100.0)
    rig.toner.disarm()
    rig.toner.set_level(1.0)
    rig.settle()
    assert rig.crossings == []


def test_noisy_readings_are_sampled_on_change_and_seeded() -> None:
    noisy = with_toner(sensor_noise_pct=3.0, loaded_pct=80.0)
    series = []
    for seed in (1, 1, 2):
        rig = Rig(noisy, seed=seed)
        readings = [rig.toner.read()]
        for _ in range(200):
            rig.toner.consume(50.0)
            readings.append(rig.toner.read())
            assert rig.toner.read() == readings[-1]  # no new sample without a change
        series.append(readings)
        per_page = 10.0 / T.capacity_pages_at_5pct * 100.0
        assert rig.toner.level_pct == pytest.approx(80.0 - 200 * per_page)  # true: no noise
        errors = [r - (80.0 - k * per_page) for k, r in enumerate(readings)]
        mean = sum(errors) / len(errors)
        sd = (sum((e - mean) ** 2 for e in errors) / len(errors)) ** 0.5
        assert abs(mean) < 0.7 and sd == pytest.approx(3.0, rel=0.2)
    assert series[0] == series[1]
    assert series[0] != series[2]


@pytest.mark.parametrize("level_pct", [0.0, 100.0])
def test_noisy_readings_are_clamped_to_0_100(level_pct: float) -> None:
    rig = Rig(with_toner(sensor_noise_pct=5.0))
    readings = []
    for _ in range(50):
        rig.toner.set_level(level_pct)
        readings.append(rig.toner.read())
    assert all(0.0 <= r <= 100.0 for r in readings)
    assert readings.count(level_pct) > 10  # half the noise lands beyond the end


def test_the_comparator_checks_the_noisy_sample() -> None:
    # At the threshold itself, noise alone decides: some seed's first sample is below.
    fired = 0
    for seed in range(20):
        rig = Rig(with_toner(sensor_noise_pct=1.0, loaded_pct=20.0), seed=seed)
        rig.toner.set_window(T.low_pct, 100.0)
        rig.toner.set_level(T.low_pct)
        rig.settle()
        if rig.crossings:
            fired += 1
            assert rig.crossings[0].reading < T.low_pct
    assert 0 < fired < 20
