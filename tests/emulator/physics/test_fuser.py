"""The fuser (emulator/physics/_fuser.py) against its closed form
``T(t) = T_inf + (T0 - T_inf) * exp(-t / tau)``, in virtual time: the window comparator
fires at ``tau * ln((T_inf - T0) / (T_inf - bound))`` (rounded up to the ns), is
re-solved at every change and is one-shot; no ticks."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from boards import BoardConfig, FuserConfig, load_board
from emulator.physics import Fuser, model_rng
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
F = LP.fuser  # ambient 25, max 250, tau 6.851 s, ready 180, draw 4
S = 1_000_000_000
MS = 1_000_000


class Rig:
    def __init__(self, config: BoardConfig = LP, seed: int = 0) -> None:
        self.scheduler = Scheduler()
        self.irq = InterruptController(self.scheduler, irq_lines_of(config))
        self.fuser = Fuser(config.fuser, self.scheduler, self.irq, model_rng(seed, "fuser"))
        self.crossings: list[tuple[int, WindowCrossing]] = []
        self.irq.attach("fuser", self._isr)

    def _isr(self, event: IrqEvent) -> None:
        assert isinstance(event.value, WindowCrossing)
        self.crossings.append((event.t_ns, event.value))

    def run(self, until_ns: int) -> None:
        self.scheduler.run_until(until_ns)


def closed_form(t_s: float, t0_c: float, target_c: float, tau_s: float = F.tau_s) -> float:
    return target_c + (t0_c - target_c) * math.exp(-t_s / tau_s)


def crossing_ns(t0_c: float, target_c: float, bound_c: float, tau_s: float = F.tau_s) -> int:
    """The first whole ns after the closed-form crossing instant."""
    return math.floor(tau_s * math.log((target_c - t0_c) / (target_c - bound_c)) * 1e9) + 1


def with_fuser(**changes: float) -> BoardConfig:
    return dataclasses.replace(LP, fuser=dataclasses.replace(LP.fuser, **changes))


def test_starts_at_ambient_and_stays_there() -> None:
    rig = Rig()
    rig.run(3600 * S)
    assert rig.fuser.temp_c() == F.ambient_c
    assert rig.fuser.read() == F.ambient_c  # lp-2000's thermistor has no noise


@pytest.mark.parametrize("t_s", [0.0, 0.001, 1.0, 6.851, 8.0, 30.0, 600.0])
def test_heating_follows_the_closed_form(t_s: float) -> None:
    rig = Rig()
    rig.fuser.set_heater(True)
    rig.run(round(t_s * S))
    expected_c = min(closed_form(t_s, F.ambient_c, F.max_c), F.cutoff_c)  # the thermostat
    assert rig.fuser.temp_c() == pytest.approx(expected_c, rel=1e-12)


def test_the_thermostat_holds_the_heater_at_its_cutoff_for_ever() -> None:
    # Heater on for an hour (a hung firmware, a stopped host): never past cutoff_c, and a
    # comparator bound at or above the cutoff never fires; below it, it fires as solved.
    rig = Rig()
    assert F.ready_c + F.hysteresis_c < F.cutoff_c < F.over_temp_c < F.max_c
    rig.fuser.set_window(0.0, F.over_temp_c)
    rig.fuser.set_heater(True)
    for t_s in (60, 600, 3600):
        rig.run(t_s * S)
        assert rig.fuser.temp_c() == F.cutoff_c and rig.fuser.read() == F.cutoff_c
    assert rig.crossings == []
    rig.fuser.set_window(0.0, F.cutoff_c)
    rig.run(7200 * S)
    assert rig.crossings == []
    rig.fuser.set_window(0.0, F.cutoff_c - 1.0)
    rig.run(7201 * S)
    assert [c.crossing for _, c in rig.crossings] == [Crossing.ABOVE]  # already outside


def test_the_heater_cools_from_the_cutoff_when_switched_off() -> None:
    rig = Rig()
    rig.fuser.set_heater(True)
    rig.run(60 * S)
    rig.fuser.set_heater(False)
    rig.run(65 * S)
    assert rig.fuser.temp_c() == pytest.approx(
        closed_form(5.0, F.cutoff_c, F.ambient_c), rel=1e-12)


def test_cooling_follows_the_closed_form_from_where_heating_left_it() -> None:
    rig = Rig()
    rig.fuser.set_heater(True)
    rig.run(5 * S)
    hot = closed_form(5.0, F.ambient_c, F.max_c)
    rig.fuser.set_heater(False)
    rig.run(12 * S)
    assert rig.fuser.temp_c() == pytest.approx(closed_form(7.0, hot, F.ambient_c), rel=1e-12)


def test_reaches_ready_when_the_closed_form_says_and_the_comparator_fires_then() -> None:
    rig = Rig()
    rig.fuser.set_window(0.0, F.ready_c)
    rig.fuser.set_heater(True)
    rig.run(60 * S)
    expected = crossing_ns(F.ambient_c, F.max_c, F.ready_c)
    assert abs(expected - 8 * S) < 5 * MS  # the board file's comment: 25 -> 180 C in 8 s
    assert len(rig.crossings) == 1
    t_ns, crossing = rig.crossings[0]
    assert t_ns == expected
    assert crossing == WindowCrossing(AnalogChannel.FUSER_C, F.ready_c, Crossing.ABOVE)
    # The closed form: inside one ns before, past the bound at the instant.
    assert closed_form((expected - 1) / 1e9, F.ambient_c, F.max_c) <= F.ready_c
    assert closed_form(expected / 1e9, F.ambient_c, F.max_c) > F.ready_c - 1e-9
    assert rig.fuser.temp_c() > F.ready_c  # and it goes on heating


def test_no_ticks_one_timer_for_a_warm_up() -> None:
    rig = Rig()
    rig.fuser.set_window(0.0, F.ready_c)
    rig.fuser.set_heater(True)
    rig.run(60 * S)
    # The crossing timer and the ISR dispatch: nothing else ran.
    assert rig.scheduler.events_run == 2


def test_cooling_below_the_band_fires_below() -> None:
    rig = Rig()
    rig.fuser.set_heater(True)
    rig.run(10 * S)
    hot = closed_form(10.0, F.ambient_c, F.max_c)
    low = F.ready_c - F.hysteresis_c
    rig.fuser.set_window(low, F.over_temp_c)
    rig.fuser.set_heater(False)
    rig.run(60 * S)
    assert [(t, c.crossing) for t, c in rig.crossings] == [
        (10 * S + crossing_ns(hot, F.ambient_c, low), Crossing.BELOW)
    ]
    assert rig.crossings[0][1].reading == low


def test_the_crossing_is_re_solved_when_the_heater_changes() -> None:
    rig = Rig()
    rig.fuser.set_window(0.0, F.ready_c)
    rig.fuser.set_heater(True)
    rig.run(3 * S)
    rig.fuser.set_heater(False)  # cools toward ambient: never above ready now
    rig.run(5 * S)
    assert rig.crossings == []
    t1 = closed_form(3.0, F.ambient_c, F.max_c)
    t2 = closed_form(2.0, t1, F.ambient_c)
    rig.fuser.set_heater(True)
    rig.run(60 * S)
    assert [t for t, _ in rig.crossings] == [5 * S + crossing_ns(t2, F.max_c, F.ready_c)]


def test_a_sheet_draws_heat_at_once_and_the_crossing_moves() -> None:
    rig = Rig()
    rig.fuser.set_heater(True)
    rig.run(4 * S)
    before = rig.fuser.temp_c()
    rig.fuser.set_window(0.0, F.ready_c)
    rig.fuser.draw_sheet()
    assert rig.fuser.temp_c() == pytest.approx(before - F.sheet_draw_c, abs=1e-12)
    rig.run(60 * S)
    after = before - F.sheet_draw_c
    assert [t for t, _ in rig.crossings] == [4 * S + crossing_ns(after, F.max_c, F.ready_c)]


def test_a_sheet_that_takes_it_below_the_window_fires_at_once() -> None:
    rig = Rig()
    rig.fuser.set_heater(True)
    rig.run(10 * S)
    temp = rig.fuser.temp_c()  # about 198 C
    rig.fuser.set_window(temp - 1.0, F.over_temp_c)
    rig.fuser.draw_sheet()
    rig.run(10 * S)
    assert [(t, c.crossing) for t, c in rig.crossings] == [(10 * S, Crossing.BELOW)]
    assert rig.crossings[0][1].reading == pytest.approx(temp - F.sheet_draw_c)


def test_arming_outside_the_window_fires_at_once() -> None:
    rig = Rig()
    rig.run(1 * S)
    rig.fuser.set_window(100.0, 200.0)  # 25 C is below
    rig.run(1 * S)
    assert [(t, c.crossing, c.reading) for t, c in rig.crossings] == [
        (1 * S, Crossing.BELOW, F.ambient_c)
    ]
    assert rig.fuser.window is None


def test_the_comparator_is_one_shot_until_rearmed() -> None:
    rig = Rig()
    rig.fuser.set_window(0.0, 100.0)
    rig.fuser.set_heater(True)
    rig.run(30 * S)
    assert len(rig.crossings) == 1 and rig.fuser.window is None
    # Cool down through the band and heat again: disarmed, nothing fires.
    rig.fuser.set_heater(False)
    rig.run(120 * S)
    rig.fuser.set_heater(True)
    rig.run(150 * S)
    assert len(rig.crossings) == 1
    rig.fuser.set_window(0.0, 100.0)  # re-armed while above: at once
    rig.run(150 * S)
    assert [t for t, _ in rig.crossings][1] == 150 * S


def test_disarm_cancels_the_pending_crossing() -> None:
    rig = Rig()
    rig.fuser.set_window(0.0, F.ready_c)
    rig.fuser.set_heater(True)
    rig.fuser.disarm()
    rig.run(60 * S)
    assert rig.crossings == []


def test_an_unreachable_bound_schedules_nothing() -> None:
    rig = Rig()
    rig.fuser.set_window(0.0, F.max_c)  # the asymptote: approached, never passed
    rig.fuser.set_heater(True)
    assert rig.scheduler.next_event_ns() is None
    rig.run(3600 * S)
    assert rig.crossings == []


def test_a_failed_heater_does_not_heat() -> None:
    rig = Rig()
    rig.fuser.set_window(0.0, F.ready_c)
    rig.fuser.set_failed(True)
    rig.fuser.set_heater(True)
    rig.run(60 * S)
    assert rig.fuser.temp_c() == F.ambient_c and rig.crossings == []
    assert rig.fuser.heater_on and not rig.fuser.heating
    rig.fuser.set_failed(False)  # repaired with the heater commanded on: heats from now
    rig.run(120 * S)
    assert [t for t, _ in rig.crossings] == [60 * S + crossing_ns(F.ambient_c, F.max_c, F.ready_c)]


def test_a_heater_failing_while_hot_cools_it() -> None:
    rig = Rig()
    rig.fuser.set_heater(True)
    rig.run(10 * S)
    hot = rig.fuser.temp_c()
    rig.fuser.set_failed(True)
    rig.run(15 * S)
    assert rig.fuser.temp_c() == pytest.approx(closed_form(5.0, hot, F.ambient_c))


def test_thermistor_noise_is_gaussian_seeded_and_reproducible() -> None:
    noisy = with_fuser(thermistor_noise_c=2.0)
    a, b, c = Rig(noisy, seed=7), Rig(noisy, seed=7), Rig(noisy, seed=8)
    readings_a = [a.fuser.read() for _ in range(2000)]
    readings_b = [b.fuser.read() for _ in range(2000)]
    readings_c = [c.fuser.read() for _ in range(2000)]
    assert readings_a == readings_b
    assert readings_a != readings_c
    mean = sum(readings_a) / len(readings_a)
    sd = math.sqrt(sum((r - mean) ** 2 for r in readings_a) / len(readings_a))
    assert mean == pytest.approx(F.ambient_c, abs=0.2)
    assert sd == pytest.approx(2.0, rel=0.1)
    assert a.fuser.temp_c() == F.ambient_c  # the true value carries no noise


def test_noise_does_not_move_the_comparator() -> None:
    # The comparator watches the true temperature: the crossing instant is the same
    # whatever the noise and however often the firmware reads the thermistor.
    quiet, noisy = Rig(), Rig(with_fuser(thermistor_noise_c=5.0))
    for rig in (quiet, noisy):
        rig.fuser.set_window(0.0, F.ready_c)
        rig.fuser.set_heater(True)
    for _ in range(100):
        noisy.fuser.read()
    quiet.run(60 * S)
    noisy.run(60 * S)
    assert [t for t, _ in quiet.crossings] == [t for t, _ in noisy.crossings]


def test_every_parameter_comes_from_the_board_file() -> None:
    fast: FuserConfig = load_board("devkit").fuser
    assert fast.tau_s == 0.3
    rig = Rig(load_board("devkit"))
    rig.fuser.set_window(0.0, fast.ready_c)
    rig.fuser.set_heater(True)
    rig.run(10 * S)
    assert [t for t, _ in rig.crossings] == [
        crossing_ns(fast.ambient_c, fast.max_c, fast.ready_c, fast.tau_s)
    ]


def test_re_arming_the_bound_that_just_fired_does_not_fire_again() -> None:
    # A thermostat that switches the heater and re-arms the same band in its ISR: the
    # curve sits exactly on the bound at the crossing instant, so time moves on.
    rig = Rig()
    low, high = F.ready_c - F.hysteresis_c, F.ready_c + F.hysteresis_c

    def thermostat(event: IrqEvent) -> None:
        assert isinstance(event.value, WindowCrossing)
        rig.crossings.append((event.t_ns, event.value))
        rig.fuser.set_heater(event.value.crossing is Crossing.BELOW)
        rig.fuser.set_window(low, high)

    rig.irq.attach("fuser", thermostat)
    rig.fuser.set_window(0.0, high)
    rig.fuser.set_heater(True)
    rig.run(120 * S)
    kinds = [c.crossing for _, c in rig.crossings]
    assert kinds[0] is Crossing.ABOVE and len(kinds) > 10
    assert all(a is not b for a, b in itertools.pairwise(kinds))  # alternate
    times = [t for t, _ in rig.crossings]
    assert all(b > a for a, b in itertools.pairwise(times))
    # Each half-period is the closed form between the bounds.
    cool = crossing_ns(high, F.ambient_c, low)
    heat = crossing_ns(low, F.max_c, high)
    assert times[1] - times[0] == cool and times[2] - times[1] == heat
    assert all(c.reading in (low, high) for _, c in rig.crossings)


def test_re_arming_without_acting_fires_one_ns_later() -> None:
    rig = Rig()
    rig.fuser.set_window(0.0, 100.0)
    rig.fuser.set_heater(True)
    rig.run(60 * S)
    first = rig.crossings[0][0]
    rig.crossings.clear()
    rig.fuser.set_window(0.0, 100.0)  # still heating, and past 100 C since
    rig.run(60 * S)
    assert [t for t, _ in rig.crossings] == [60 * S]

    rig2 = Rig()

    def stubborn(event: IrqEvent) -> None:
        assert isinstance(event.value, WindowCrossing)
        rig2.crossings.append((event.t_ns, event.value))
        rig2.fuser.set_window(0.0, 100.0)

    rig2.irq.attach("fuser", stubborn)
    rig2.fuser.set_window(0.0, 100.0)
    rig2.fuser.set_heater(True)
    rig2.run(first + 2)
    assert [t for t, _ in rig2.crossings] == [first, first + 1, first + 2]


# -- the regulator ---------------------------------------------------------------------


def regulated_rig(
    low_c: float = 175.0, high_c: float = 185.0
) -> tuple[Rig, list[tuple[int, bool]]]:
    """A rig warmed to ``low_c`` with the heater on, then handed to the regulator."""
    rig = Rig()
    switches: list[tuple[int, bool]] = []
    rig.fuser.on_regulated = lambda on: switches.append((rig.scheduler.now_ns, on))
    rig.fuser.set_heater(True)
    rig.run(crossing_ns(F.ambient_c, F.max_c, low_c))
    rig.fuser.regulate(low_c, high_c)
    return rig, switches


def test_the_regulator_switches_at_the_bounds_of_the_closed_form() -> None:
    rig, switches = regulated_rig()
    start = rig.scheduler.now_ns
    temp0 = rig.fuser.temp_c()
    assert switches == []  # inside the band: the heater keeps its state
    up = crossing_ns(temp0, F.max_c, 185.0)
    down = crossing_ns(185.0, F.ambient_c, 175.0)  # re-based on the bound it switched at
    rig.run(start + up + down + 1)
    assert switches == [(start + up, False), (start + up + down, True)]
    assert rig.fuser.heater_on
    assert rig.fuser.temp_c() == pytest.approx(175.0, abs=1e-6)


def test_the_regulator_keeps_the_band_for_as_long_as_it_holds() -> None:
    rig, switches = regulated_rig()
    temps = []
    for _ in range(600):  # a minute, every 100 ms
        rig.run(rig.scheduler.now_ns + 100 * MS)
        temps.append(rig.fuser.temp_c())
    assert min(temps) >= 175.0 - 1e-6 and max(temps) <= 185.0 + 1e-6
    assert len(switches) > 10 and rig.crossings == []


def test_a_sheet_that_takes_it_below_the_band_switches_the_heater_on_at_once() -> None:
    rig, switches = regulated_rig(low_c=170.0, high_c=172.0)
    rig.run(rig.scheduler.now_ns + crossing_ns(170.0, F.max_c, 172.0))  # off at the top
    assert switches[-1][1] is False
    rig.fuser.draw_sheet()  # 4 C: below the band now
    assert switches[-1] == (rig.scheduler.now_ns, True)


def test_regulating_above_the_band_switches_the_heater_off_at_once() -> None:
    rig, switches = regulated_rig(low_c=100.0, high_c=110.0)
    rig.fuser.regulate(60.0, 70.0)
    assert switches == [(rig.scheduler.now_ns, False)] and not rig.fuser.heating


def test_the_firmware_takes_the_heater_back() -> None:
    rig, switches = regulated_rig()
    rig.fuser.set_heater(False)
    assert not rig.fuser.regulated
    rig.run(rig.scheduler.now_ns + 60 * S)
    assert switches == [] and rig.fuser.temp_c() < 100.0


def test_a_failed_heater_leaves_the_regulator_nothing_to_switch() -> None:
    rig, switches = regulated_rig()
    rig.fuser.set_failed(True)
    rig.run(rig.scheduler.now_ns + 60 * S)
    assert switches == [] and rig.fuser.heater_on and rig.fuser.temp_c() < 100.0
    rig.fuser.set_failed(False)  # repaired: heating again, off at the top
    rig.run(rig.scheduler.now_ns + 60 * S)
    assert switches[0][1] is False and 175.0 - 1e-6 <= rig.fuser.temp_c() <= 185.0 + 1e-6
