"""The fuser's closed loop on the emulated board: ready at the instant the model's curve
reaches ``ready_c``, regulated in its band while sheets draw heat, and a fault (no heat
within the warm-up limit, over temperature) cuts the heater for good and fails the
jobs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from itertools import pairwise

import pytest

from boards import BoardConfig
from emulator.board import EmulatedBoard
from hal import AnalogChannel, Output
from tests.conftest import Rig, S, warmup_ns


def test_the_fuser_is_ready_when_the_curve_reaches_ready_c(rig: Rig, lp2000: BoardConfig) -> None:
    ready = warmup_ns(lp2000)
    rig.run_to(ready - 1)
    assert rig.state("fuser") == "warming" and rig.board.output(Output.HEATER)
    rig.run_to(ready)
    assert [(e.t_ns, e.detail) for e in rig.of("fuser_ready")] == [
        (ready, {"reading_c": lp2000.fuser.ready_c})]
    assert rig.state("fuser") == "ready"


REGULATIONS = pytest.mark.parametrize("regulation", ["firmware", "board"])
"""Who switches the heater in the band: the same outcomes either way."""


def regulated_by(config: BoardConfig, regulation: str) -> BoardConfig:
    return dataclasses.replace(config, fuser=dataclasses.replace(config.fuser,
                                                                 regulation=regulation))


@REGULATIONS
def test_the_loop_holds_the_band_while_a_long_job_draws_heat(
    lp2000: BoardConfig, regulation: str
) -> None:
    lp2000 = regulated_by(lp2000, regulation)
    rig = Rig(lp2000)
    f = lp2000.fuser
    cold_c = f.ready_c - 4 * f.hysteresis_c
    temps: list[float] = []
    heater: list[bool] = []

    def sample(event: object) -> None:
        temps.append(rig.board.fuser_temp_c)
        heater.append(rig.board.output(Output.HEATER))

    rig.printer.subscribe(lambda e: sample(e) if e.kind == "page_feeding" else None)
    job = rig.printer.submit(60, 5.0)
    rig.finish()
    assert job.delivered == 60 and rig.of("fuser_cold") == []
    assert all(cold_c <= t <= f.ready_c + f.hysteresis_c + 1e-9 for t in temps)
    assert True in heater and False in heater  # bang-bang: it switches both ways
    assert rig.board.fuser.regulated is (regulation == "board")
    # One page per pitch throughout: the fuser never held the engine up.
    picks = rig.times("page_feeding")
    assert {b - a for a, b in pairwise(picks)} == {lp2000.page_pitch_ns}


def test_no_heat_within_the_warm_up_limit_is_a_fuser_error_that_fails_the_jobs(
    lp2000: BoardConfig,
) -> None:
    rig = Rig(lp2000, before_boot=lambda board: board.set_heater_failed(True))
    job = rig.printer.submit(3, 5.0)
    rig.finish()
    limit = round(lp2000.fuser.warmup_limit_s * S)
    assert [(e.t_ns, e.detail) for e in rig.of("fuser_error")] == [
        (limit, {"reason": "no heat within the warm-up limit",
                 "reading_c": lp2000.fuser.ambient_c})]
    assert rig.now == limit
    assert rig.state("fuser") == "error" and rig.state("engine") == "failed"
    assert not rig.board.output(Output.HEATER) and not rig.board.output(Output.MOTOR)
    assert job.state == "failed" and job.delivered == 0
    assert [(e.t_ns, e.detail["state"]) for e in rig.of("job_done")] == [(limit, "failed")]
    assert rig.board.display[0] == "Fuser error" and rig.board.output(Output.LED_ATTENTION)
    assert rig.board.sheets_picked == 0


def test_a_job_sent_after_a_fuser_error_fails_at_once(lp2000: BoardConfig) -> None:
    rig = Rig(lp2000, before_boot=lambda board: board.set_heater_failed(True))
    rig.run_until(lambda: rig.state("engine") == "failed")
    later = rig.now + 60 * S
    rig.run_to(later)
    job = rig.printer.submit(2, 5.0)
    rig.finish(timeout_s=10)
    assert job.state == "failed" and rig.now == later
    assert rig.board.sheets_picked == 0 and not rig.board.output(Output.HEATER)


@REGULATIONS
def test_a_heater_that_fails_mid_job_stops_the_pickups_with_exact_page_accounting(
    lp2000: BoardConfig, regulation: str
) -> None:
    lp2000 = regulated_by(lp2000, regulation)
    rig = Rig(lp2000)
    job = rig.printer.submit(40, 5.0)
    rig.run_until(lambda: len(rig.of("page_delivered")) == 5)
    rig.board.set_heater_failed(True)
    rig.finish()
    cold_at = rig.times("fuser_cold")[0]
    # Gone cold, the fuser warms again under the same limit, and fails at its end.
    limit = round(lp2000.fuser.warmup_limit_s * S)
    assert [(e.t_ns, e.detail["reason"]) for e in rig.of("fuser_error")] == [
        (cold_at + limit, "no heat within the warm-up limit")]
    picked = [e.detail["page"] for e in rig.of("page_feeding")]
    assert all(e.t_ns < cold_at for e in rig.of("page_feeding"))  # no sheet into a cold fuser
    # Every sheet picked before came out printed; the job failed with exactly those.
    assert job.state == "failed" and job.delivered_pages == picked
    assert rig.output_tray() == [(job.id, p) for p in picked]
    assert rig.board.sheets_in_path == 0
    assert not rig.board.output(Output.HEATER) and not rig.board.output(Output.MOTOR)


@REGULATIONS
def test_a_fuser_that_goes_cold_and_recovers_resumes_printing_when_ready(
    lp2000: BoardConfig, regulation: str
) -> None:
    lp2000 = regulated_by(lp2000, regulation)
    rig = Rig(lp2000)
    job = rig.printer.submit(12, 5.0)
    rig.run_until(lambda: len(rig.of("page_delivered")) == 5)
    rig.board.set_heater_failed(True)
    rig.run_until(lambda: rig.of("fuser_cold") != [])
    cold_at = rig.now
    rig.run_for(S)
    rig.board.set_heater_failed(False)
    rig.finish()
    ready_again = rig.times("fuser_ready")[-1]
    assert ready_again > cold_at
    before = [e for e in rig.of("page_feeding") if e.t_ns < cold_at]
    after = [e for e in rig.of("page_feeding") if e.t_ns >= cold_at]
    assert [e.detail["page"] for e in before] == list(range(1, len(before) + 1))
    assert [(e.t_ns, e.detail["page"]) for e in after] == [
        (ready_again + k * lp2000.page_pitch_ns, len(before) + 1 + k)
        for k in range(12 - len(before))]
    assert job.state == "completed" and rig.output_tray() == [(job.id, p) for p in range(1, 13)]


def test_a_hung_fuser_task_cannot_overheat_the_fuser_past_its_cutoff(
    board_file: Callable[[str], BoardConfig],
) -> None:
    # A fuser task that hangs with the heater on heats the fuser until the watchdog
    # resets the board; the element's thermostat holds it at cutoff_c, below the
    # firmware's over-temperature threshold, so the firmware that boots warms up again.
    config = board_file("[fuser]\nover_temp_c = 186.0\ncutoff_c = 185.5\n")
    rig = Rig(config)
    rig.run_until(lambda: rig.state("fuser") == "warming")
    rig.printer.hang("fuser")
    rig.run_until(lambda: rig.printer.boots == 2)
    assert rig.board.fuser_temp_c == config.fuser.cutoff_c
    rig.run_for(1)
    assert rig.of("fuser_error") == []
    job = rig.printer.submit(2, 5.0)
    rig.finish()
    assert job.state == "completed"


def test_a_fuser_found_over_temperature_is_an_error(lp2000: BoardConfig) -> None:
    # Hotter than over_temp_c (a real board whose thermostat failed): the firmware's
    # own bound, armed from boot, cuts the heater for good and fails the jobs.
    rig = Rig(lp2000)
    rig.board.fuser.set_temp(240.0)
    rig.run_for(1)
    errors = rig.of("fuser_error")
    assert [e.detail for e in errors] == [{"reason": "over temperature", "reading_c": 240.0}]
    assert rig.state("fuser") == "error" and not rig.board.output(Output.HEATER)
    job = rig.printer.submit(2, 5.0)
    rig.finish()
    assert job.state == "failed" and rig.board.sheets_picked == 0


class _BrokenThermistor(EmulatedBoard):
    """An open-circuit thermistor: every reading is far below anything plausible."""

    def read_analog(self, channel: AnalogChannel) -> float:
        if channel == AnalogChannel.FUSER_C:
            return -273.0
        return super().read_analog(channel)


def test_an_implausible_thermistor_at_boot_keeps_the_heater_off(lp2000: BoardConfig) -> None:
    rig = Rig(lp2000, board_type=_BrokenThermistor)
    job = rig.printer.submit(1, 5.0)
    rig.finish()
    assert [e.detail for e in rig.of("self_test_failed")] == [
        {"reason": "thermistor reads -273.0 C"}]
    assert [e.detail["reason"] for e in rig.of("fuser_error")] == ["thermistor implausible"]
    assert rig.state("fuser") == "error" and job.state == "failed"
    assert "warming" not in rig.state_changes("fuser")
    assert not rig.board.output(Output.HEATER) and rig.board.fuser_temp_c == lp2000.fuser.ambient_c
