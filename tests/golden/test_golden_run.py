"""Determinism across releases: a fault scenario's JSON and traces, byte for byte.

`faults.toml` has a misfeed, low toner, an exit jam, the cover, paper out. What it gave
is kept here; a refactoring that means to change nothing must reproduce it exactly. A
change that means to change a run (a new event, another model) renews the files:

    python -m emulator run --board lp-2000 --scenario tests/golden/faults.toml --json
    (and devkit; the JSON sorted, `wall_time_s` and `speedup` dropped;
    `--trace faults.vcd` and `--trace faults.jsonl` of the lp-2000 run into traces.sha256)

and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent
SCENARIO = GOLDEN / "faults.toml"
MACHINE_DEPENDENT = ("wall_time_s", "speedup")  # the README names these


def _run(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "run", "--scenario", str(SCENARIO), *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.mark.parametrize("board", ["lp-2000", "devkit"])
def test_the_fault_scenario_gives_the_kept_json(board: str, tmp_path: Path) -> None:
    run = json.loads(_run("--board", board, "--json", cwd=tmp_path))
    for field in MACHINE_DEPENDENT:
        run.pop(field)
    kept = json.loads((GOLDEN / f"faults-{board}.json").read_text(encoding="utf-8"))
    assert run == kept


def test_the_fault_scenario_gives_the_kept_traces(tmp_path: Path) -> None:
    kept = {}
    for line in (GOLDEN / "traces.sha256").read_text(encoding="utf-8").splitlines():
        digest, name = line.split()
        kept[name] = digest
    for name, digest in sorted(kept.items()):
        _run("--json", "--trace", str(tmp_path / name), cwd=tmp_path)
        made = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert made == digest, f"{name} differs from the kept trace"
