"""The ``printer-emu`` command line: ``run`` exits 0 with no arguments, ``--json`` prints
exactly one JSON object with the documented keys, and every user mistake is one line on
stderr with exit status 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from boards import load_board
from emulator.cli import main
from tests.conftest import S, run_out_ns, to_exit_trail_ns, warmup_ns

REPO = Path(__file__).resolve().parents[3]

RESULT_KEYS = {
    "board", "seed", "outcome", "sim_time_s", "wall_time_s", "speedup", "pages_delivered",
    "sheets_used", "jams", "warnings", "jobs", "page_log", "events", "states", "toner_pct",
    "tray_sheets",
}


def _json_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["run", "--json", *args])
    out, err = capsys.readouterr()
    assert err == ""
    assert out.endswith("\n") and out.count("\n") == 1
    result = json.loads(out)
    assert isinstance(result, dict)
    return code, result


def test_run_with_no_arguments_prints_the_demo_job_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "20" in out and "lp-2000" in out


def test_json_prints_one_object_with_the_documented_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, result = _json_run(capsys)
    assert code == 0
    assert set(result) == RESULT_KEYS
    lp = load_board("lp-2000")
    ready, pitch = warmup_ns(lp), lp.page_pitch_ns
    out_ns = [ready + k * pitch + to_exit_trail_ns(lp) for k in range(20)]
    assert result["page_log"] == [
        {"job": 1, "page": p, "t_s": round(out_ns[p - 1] / S, 9)} for p in range(1, 21)]
    assert result["sim_time_s"] == round((out_ns[-1] + run_out_ns(lp)) / S, 9)
    assert (result["board"], result["seed"], result["outcome"]) == ("lp-2000", 0, "completed")
    assert result["pages_delivered"] == 20 and result["sheets_used"] == 20
    assert result["tray_sheets"] == lp.tray.loaded_sheets - 20
    assert result["jobs"] == [{"id": 1, "name": "20 pages at 5%", "pages": 20,
                               "delivered": 20, "state": "completed"}]
    assert result["jams"] == 0 and result["warnings"] == 0
    assert result["states"]["engine"] == "standby"
    assert result["wall_time_s"] > 0 and result["speedup"] > 0


def test_options_and_a_scenario_shape_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_text("Dear reader,\n\fSecond page\n")
    scenario = tmp_path / "jam.toml"
    scenario.write_text(
        'seed = 5\n[[job]]\npages = 6\ncoverage = 10\n'
        '[[at]]\npage = 3\njam = "exit"\n'
        '[[at]]\ntime = "40s"\ncover = "open"\n[[at]]\ntime = "41s"\ncover = "closed"\n')
    code, result = _json_run(capsys, "--scenario", str(scenario), "--job", str(letter),
                             "--board", "devkit")
    assert code == 0
    assert result["board"] == "devkit" and result["seed"] == 5
    assert [(j["name"], j["pages"], j["state"]) for j in result["jobs"]] == [
        ("6 pages at 10%", 6, "completed"), ("letter.txt", 2, "completed")]
    assert result["jams"] == 1 and result["pages_delivered"] == 8
    assert sorted((p["job"], p["page"]) for p in result["page_log"]) == sorted(
        [(1, p) for p in range(1, 7)] + [(2, 1), (2, 2)])


def test_a_run_left_waiting_on_its_operator_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    scenario = tmp_path / "no-paper.toml"
    scenario.write_text('[[job]]\npages = 4\n[[at]]\npage = 2\ntray = 0\n')
    code, result = _json_run(capsys, "--scenario", str(scenario))
    assert code == 1 and result["outcome"] == "stalled"
    assert result["pages_delivered"] == 2


def _usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("printer-emu: error: ")
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["run", "--board", "lp-9000"], "unknown board 'lp-9000'"),
        (["run", "--board", "nowhere/lp.toml"], "no board file at nowhere/lp.toml"),
        (["run", "--speed", "fast"], "--speed: expected max, realtime or a number, got 'fast'"),
        (["run", "--speed", "0"], "--speed: the ratio must be > 0, got '0'"),
        (["run", "--speed", "-2"], "--speed: the ratio must be > 0, got '-2'"),
        (["run", "--pages", "0"], "--pages: expected at least 1, got 0"),
        (["run", "--coverage", "120"], "--coverage: expected a percentage in [0, 100], got 120"),
        (["run", "--pages", "many"], "argument --pages: invalid int value: 'many'"),
        (["run", "--colour"], "unrecognized arguments: --colour"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], names: str
) -> None:
    assert names in _usage_error(capsys, *argv)


def test_a_bad_scenario_is_one_line_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('[[at]]\npage = 2\njam = "drum"\n')
    err = _usage_error(capsys, "run", "--scenario", str(scenario))
    assert "bad.toml: [[at]] #1 jam: expected one of feed, exit, got 'drum'" in err
    err = _usage_error(capsys, "run", "--scenario", str(tmp_path / "gone.toml"))
    assert "gone.toml: cannot read scenario" in err


def test_a_bad_board_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    board = tmp_path / "mine.toml"
    board.write_text('extends = "lp-2000"\n[fuser]\ntau_s = "fast"\n')
    err = _usage_error(capsys, "run", "--board", str(board))
    assert "mine.toml: [fuser] tau_s: expected a number, got 'fast'" in err


def test_an_unreadable_job_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    err = _usage_error(capsys, "run", "--job", str(tmp_path / "missing.txt"))
    assert "missing.txt: cannot read job file" in err
    binary = tmp_path / "scan.pdf"
    binary.write_bytes(b"%PDF\xff")
    err = _usage_error(capsys, "run", "--job", str(binary))
    assert "scan.pdf: not UTF-8 text" in err
    scenario = tmp_path / "sc.toml"
    scenario.write_text('[[job]]\nfile = "nothing-here.txt"\n')
    err = _usage_error(capsys, "run", "--scenario", str(scenario))
    assert "nothing-here.txt: cannot read job file" in err


def test_python_m_emulator_run_quiet_in_a_subprocess() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "run", "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("completed: 20 of 20 pages in ")
    assert lines[0].endswith(" s simulated on lp-2000")
