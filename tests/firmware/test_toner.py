"""The toner monitor on the emulated lp-2000: warnings at the page where the level
crossed, printing at full speed through ``toner_low``, the ``stop`` and ``continue``
policies for an empty cartridge, and hysteresis against a noisy sensor."""

from __future__ import annotations

from collections.abc import Callable

from boards import BoardConfig
from hal import Button, Output
from tests.conftest import Rig, S, run_out_ns, to_drum_trail_ns, to_exit_trail_ns, warmup_ns


def _levels(config: BoardConfig, start_pct: float, pages: int, coverage_pct: float) -> list[float]:
    """The cartridge's level after each page: the board's consumption formula
    (``coverage / 5 / capacity_pages_at_5pct`` of a full cartridge a page)."""
    per_page = coverage_pct * (100.0 / (5.0 * config.toner.capacity_pages_at_5pct))
    level, levels = start_pct, []
    for _ in range(pages):
        level = min(100.0, max(0.0, level - per_page))
        levels.append(level)
    return levels


def _first_below(levels: list[float], threshold: float) -> int:
    """The page (1-based) whose imaging took the level below ``threshold``."""
    return next(i for i, level in enumerate(levels, start=1) if level < threshold)


def test_toner_low_mid_job_warns_once_at_its_page_and_printing_keeps_full_speed(
    lp2000: BoardConfig,
) -> None:
    start = 11.0
    levels = _levels(lp2000, start, 100, 5.0)
    page = _first_below(levels, lp2000.toner.low_pct)
    assert 1 < page < 100  # the crossing is mid-job

    rig = Rig(lp2000)
    rig.board.set_toner_pct(start)
    job = rig.printer.submit(100, 5.0)
    rig.finish()

    clean = Rig(lp2000)  # the same job on a cartridge that never goes low
    clean.printer.submit(100, 5.0)
    clean.finish()

    picks = [e.t_ns for e in rig.of("page_feeding")]
    low = rig.of("toner_low")
    assert [(e.t_ns, e.detail) for e in low] == [
        (picks[page - 1] + to_drum_trail_ns(lp2000), {"reading_pct": round(levels[page - 1], 4)})]
    assert rig.pages() == [(job.id, p) for p in range(1, 101)]
    assert rig.times("page_delivered") == clean.times("page_delivered")
    assert clean.of("toner_low") == []
    assert rig.of("toner_empty") == [] and rig.of("toner_replaced") == []
    assert rig.state("toner") == "low" and rig.board.output(Output.LED_TONER)
    assert rig.board.toner_level_pct == levels[-1]
    assert job.state == "completed"


def test_toner_empty_under_stop_pauses_after_the_sheets_in_flight_until_a_new_cartridge(
    lp2000: BoardConfig,
) -> None:
    assert lp2000.toner.empty_policy == "stop"
    start, pages, pitch = 1.5, 30, lp2000.page_pitch_ns
    levels = _levels(lp2000, start, pages, 5.0)
    empty_page = _first_below(levels, lp2000.toner.empty_pct)
    rig = Rig(lp2000)
    rig.board.set_toner_pct(start)
    job = rig.printer.submit(pages, 5.0)
    held_at = rig.run_until(lambda: rig.state("engine") == "held")

    ready = warmup_ns(lp2000)
    empty_at = ready + (empty_page - 1) * pitch + to_drum_trail_ns(lp2000)
    assert [(e.t_ns, e.detail) for e in rig.of("toner_empty")] == [
        (empty_at, {"reading_pct": round(levels[empty_page - 1], 4), "policy": "stop"})]
    # Every sheet picked before the report is finished; none after it.
    in_flight = [p for p in range(1, pages + 1) if ready + (p - 1) * pitch <= empty_at]
    assert rig.pages() == [(job.id, p) for p in in_flight]
    last_out = ready + (in_flight[-1] - 1) * pitch + to_exit_trail_ns(lp2000)
    assert held_at == last_out + run_out_ns(lp2000)
    assert not rig.board.output(Output.MOTOR) and rig.board.display[1] == "Toner empty"

    rig.run_for(120 * S)  # it waits for the operator
    assert len(rig.of("page_feeding")) == len(in_flight)
    replaced_at = rig.now
    rig.board.replace_toner()
    rig.finish()
    assert rig.of("toner_replaced")[-1].t_ns == replaced_at
    resumed = [e for e in rig.of("page_feeding") if e.detail["page"] > in_flight[-1]]
    assert [(e.t_ns, e.detail["page"]) for e in resumed] == [
        (replaced_at + k * pitch, in_flight[-1] + 1 + k) for k in range(pages - len(in_flight))]
    assert rig.pages() == [(job.id, p) for p in range(1, pages + 1)]
    assert rig.output_tray() == [(job.id, p) for p in range(1, pages + 1)]
    assert job.state == "completed" and rig.state("toner") == "ok"
    assert not rig.board.output(Output.LED_TONER)


def test_the_continue_button_overrides_an_empty_cartridge_stop(lp2000: BoardConfig) -> None:
    rig = Rig(lp2000)
    rig.board.set_toner_pct(1.2)
    job = rig.printer.submit(20, 5.0)
    rig.run_until(lambda: rig.state("engine") == "held")
    done = len(rig.of("page_delivered"))
    rig.run_for(10 * S)
    pressed_at = rig.now
    rig.board.press(Button.CONTINUE)
    rig.finish()
    resumed = [e.t_ns for e in rig.of("page_feeding")][done:]
    assert resumed == [pressed_at + k * lp2000.page_pitch_ns for k in range(20 - done)]
    assert rig.pages() == [(job.id, p) for p in range(1, 21)]
    assert rig.state("toner") == "empty" and len(rig.of("toner_empty")) == 1


def test_toner_empty_under_continue_is_reported_and_printing_goes_on_at_full_speed(
    board_file: Callable[[str], BoardConfig], lp2000: BoardConfig,
) -> None:
    config = board_file('[toner]\nempty_policy = "continue"\n')
    start = 1.5
    levels = _levels(config, start, 40, 5.0)
    rig = Rig(config)
    rig.board.set_toner_pct(start)
    job = rig.printer.submit(40, 5.0)
    rig.finish()
    clean = Rig(lp2000)
    clean.printer.submit(40, 5.0)
    clean.finish()

    page = _first_below(levels, config.toner.empty_pct)
    picks = rig.times("page_feeding")
    assert [(e.t_ns, e.detail) for e in rig.of("toner_empty")] == [
        (picks[page - 1] + to_drum_trail_ns(config),
         {"reading_pct": round(levels[page - 1], 4), "policy": "continue"})]
    assert "held" not in rig.state_changes("engine")
    assert rig.times("page_delivered") == clean.times("page_delivered")
    assert job.state == "completed" and job.delivered == 40


def _noisy_run(config: BoardConfig, start_pct: float, pages: int, seed: int) -> Rig:
    rig = Rig(config, seed=seed)
    rig.board.set_toner_pct(start_pct)
    rig.printer.submit(pages, 5.0)
    rig.finish()
    return rig


def test_hysteresis_keeps_a_noisy_sensor_from_flapping(
    board_file: Callable[[str], BoardConfig],
) -> None:
    # A sensor this noisy reads above the low threshold again and again after the level
    # has crossed it; with the board's hysteresis the warning is raised once and stays.
    noisy = board_file("[toner]\nsensor_noise_pct = 0.5\n")
    assert noisy.toner.hysteresis_pct == 2.0
    for seed in range(3):
        rig = _noisy_run(noisy, 10.6, 60, seed)
        assert len(rig.of("toner_low")) == 1, seed
        assert rig.of("toner_replaced") == []
        assert rig.state_changes("toner") == ["low"]
        assert rig.board.output(Output.LED_TONER)
        assert rig.printer.jobs.jobs[1].delivered == 60


def test_without_hysteresis_the_same_noisy_sensor_flaps(
    board_file: Callable[[str], BoardConfig],
) -> None:
    # The control experiment for the test above: it would catch a monitor that ignored
    # the hysteresis, because this very run flaps without it.
    flappy = board_file("[toner]\nsensor_noise_pct = 0.5\nhysteresis_pct = 0.0\n")
    rig = _noisy_run(flappy, 10.6, 60, seed=0)
    assert len(rig.of("toner_low")) > 1
    assert len(rig.of("toner_replaced")) == len(rig.of("toner_low")) - 1


def test_a_new_cartridge_clears_the_low_warning(rig: Rig) -> None:
    rig.board.set_toner_pct(5.0)
    rig.run_for(S)
    assert rig.state("toner") == "low" and rig.board.display[1] == "Toner low"
    rig.board.replace_toner()
    rig.run_for(S)
    assert [e.detail["reading_pct"] for e in rig.of("toner_replaced")] == [100.0]
    assert rig.state("toner") == "ok" and not rig.board.output(Output.LED_TONER)
    assert rig.board.display[1] == ""
