"""Determinism: the same board, scenario and seed give the same record, to the
nanosecond and the event; another seed with noise gives another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from boards import BoardConfig
from emulator.board import EmulatedBoard
from emulator.run import PrintRun, parse_scenario
from hal import Scheduler

_MACHINE_DEPENDENT = ("wall_time_s", "speedup")

_SCENARIO = {
    "job": [{"pages": 40, "coverage": 5}, {"pages": 5, "coverage": 20}],
    "at": [
        {"page": 3, "toner_pct": 10.4},
        {"page": 8, "misfeed": True},
        {"page": 12, "jam": "exit"},
        {"time": "60s", "cover": "open"},
        {"time": "65s", "cover": "closed"},
        {"page": 30, "tray": 0},
        {"time": "200s", "tray": 100},
    ],
}


def _run(config: BoardConfig, seed: int) -> dict[str, Any]:
    scenario = parse_scenario(_SCENARIO, "determinism.toml")
    board = EmulatedBoard(config, Scheduler(), seed=seed)
    run = PrintRun(board, seed=seed)
    for spec in scenario.jobs:
        run.add_job(spec)
    run.add_actions(scenario.actions)
    run.run()
    result = run.result()
    for key in _MACHINE_DEPENDENT:
        result.pop(key)
    return result


def test_the_same_seed_gives_the_same_record(
    board_file: Callable[[str], BoardConfig],
) -> None:
    noisy = board_file("[toner]\nsensor_noise_pct = 0.5\n[fuser]\nthermistor_noise_c = 2.0\n")
    first, second = _run(noisy, 7), _run(noisy, 7)
    assert first == second
    # It is a run worth comparing: faults happened and every page came out.
    assert first["outcome"] == "completed" and first["jams"] == 1
    assert first["pages_delivered"] == 45
    kinds = {e["kind"] for e in first["events"]}
    assert {"toner_low", "misfeed", "jam", "jam_cleared", "paper_out", "paper_loaded",
            "cover_open", "cover_closed"} <= kinds


def test_another_seed_with_noise_gives_another_record(
    board_file: Callable[[str], BoardConfig],
) -> None:
    noisy = board_file("[toner]\nsensor_noise_pct = 0.5\n[fuser]\nthermistor_noise_c = 2.0\n")
    a, b = _run(noisy, 1), _run(noisy, 2)
    assert a["seed"] != b["seed"]
    a.pop("seed"), b.pop("seed")
    assert a != b
    low_a = [e for e in a["events"] if e["kind"] == "toner_low"]
    low_b = [e for e in b["events"] if e["kind"] == "toner_low"]
    assert low_a != low_b  # the noisy sensor crossed at another reading or page


def test_without_noise_the_seed_changes_nothing_but_itself(lp2000: BoardConfig) -> None:
    a, b = _run(lp2000, 1), _run(lp2000, 2)
    a.pop("seed"), b.pop("seed")
    assert a == b
