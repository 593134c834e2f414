"""Boot: the self-test (thermistor plausible, sensors at rest), then idle; power save after
the idle timeout with the fuser off, and a job wakes the printer."""

from __future__ import annotations

from boards import BoardConfig
from hal import Output
from tests.conftest import Rig, S, warmup_ns


def test_boot_self_tests_then_idles_warm(rig: Rig, lp2000: BoardConfig) -> None:
    rig.run_for(1)
    assert [(e.t_ns, e.detail) for e in rig.of("boot")] == [(0, {"reset_cause": "power_on"})]
    assert rig.of("self_test_failed") == [] and rig.of("watchdog_reset") == []
    assert rig.printer.states() == {
        "cover": "closed", "fuser": "warming", "engine": "standby", "spooler": "idle",
        "tray": "loaded", "toner": "ok", "panel": "ready"}
    assert rig.board.output(Output.HEATER)
    assert not rig.board.output(Output.MOTOR) and not rig.board.output(Output.LASER)
    assert rig.board.output(Output.LED_READY) and not rig.board.output(Output.LED_ATTENTION)
    assert rig.board.display == ("Ready", "")
    rig.run_for(warmup_ns(lp2000))
    assert rig.times("fuser_ready") == [warmup_ns(lp2000)]
    assert rig.state("engine") == "standby" and rig.board.sheets_picked == 0


def test_power_save_after_the_idle_timeout_switches_the_fuser_off(
    rig: Rig, lp2000: BoardConfig
) -> None:
    idle = round(lp2000.engine.power_save_after_s * S)
    rig.run_to(idle - 1)
    assert rig.of("power_save") == [] and rig.state("fuser") == "ready"
    rig.run_to(idle)
    assert rig.times("power_save") == [idle]
    assert rig.state("fuser") == "off" and not rig.board.output(Output.HEATER)
    assert rig.board.display[0] == "Power save"
    rig.run_for(3600 * S)
    assert rig.times("power_save") == [idle]  # once, not every timeout
    assert rig.board.fuser_temp_c < lp2000.fuser.ambient_c + 0.01


def test_a_job_wakes_the_printer_from_power_save(rig: Rig, lp2000: BoardConfig) -> None:
    rig.run_until(lambda: rig.of("power_save") != [])
    rig.run_for(3600 * S)
    woken_at = rig.now
    temp_c = rig.board.fuser_temp_c
    job = rig.printer.submit(3, 5.0)
    rig.finish()
    assert rig.times("wake") == [woken_at]
    ready = woken_at + warmup_ns(lp2000, from_c=temp_c)
    assert rig.times("fuser_ready")[-1] == ready
    assert rig.times("page_feeding") == [ready + k * lp2000.page_pitch_ns for k in range(3)]
    assert job.state == "completed" and rig.board.display[0] == "Ready"


def test_the_idle_timeout_counts_from_the_end_of_the_last_job(
    rig: Rig, lp2000: BoardConfig
) -> None:
    rig.printer.submit(2, 5.0)
    rig.finish()
    standby_at = rig.now
    rig.run_for(round(lp2000.engine.power_save_after_s * S) + S)
    assert rig.times("power_save") == [standby_at + round(lp2000.engine.power_save_after_s * S)]


def test_boot_with_the_cover_open_waits_for_it_to_close(lp2000: BoardConfig) -> None:
    rig = Rig(lp2000, before_boot=lambda board: board.set_cover(True))
    job = rig.printer.submit(2, 5.0)
    rig.run_for(60 * S)
    assert rig.state("engine") == "open" and rig.state("fuser") == "interlocked"
    assert not rig.board.output(Output.HEATER) and rig.board.sheets_picked == 0
    closed_at = rig.now
    rig.board.set_cover(False)
    rig.finish()
    ready = closed_at + warmup_ns(lp2000)
    assert rig.times("page_feeding") == [ready, ready + lp2000.page_pitch_ns]
    assert job.state == "completed" and rig.of("jam") == []
