"""The benchmark runner's CLI contract (benchmarks/__main__.py), on a tiny workload.

These tests check plumbing only: they never assert a timing or a ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import benchmarks
from benchmarks import SCALE_ENV, print_result
from benchmarks.__main__ import BENCHMARKS, main

REPO = Path(__file__).resolve().parents[2]
TINY = "0.0005"
"""--scale for the scheduler benchmark: 500-event chains, a few ms a contender."""


def _python_m_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    # As a reader runs it: from the checkout's root, no PYTHONPATH (`-m` finds the
    # benchmarks folder, and the checkout's packages, in the current directory).
    env = {**os.environ}
    env.pop("PYTHONPATH", None)
    env.pop(SCALE_ENV, None)
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _check_result_shape(result: dict[str, Any]) -> None:
    table = result["table"]
    assert isinstance(table["title"], str)
    assert all(isinstance(column, str) for column in table["columns"])
    assert table["rows"]
    assert all(len(row) == len(table["columns"]) for row in table["rows"])


def test_json_prints_exactly_one_object_on_stdout() -> None:
    done = _python_m_benchmarks("scheduler", "--json", "--scale", TINY)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert isinstance(result, dict)
    assert done.stdout.count("\n") == 1
    assert result["name"] == "scheduler"
    assert result["scale"] == float(TINY)
    _check_result_shape(result)
    workloads = result["workloads"]
    assert set(workloads) == {"firmware", "1x500", "1000x1"}
    for figures in workloads.values():
        assert figures["ours_events_per_s"] > 0
        assert figures["simpy_events_per_s"] > 0
        assert figures["bare_events_per_s"] > 0
        assert figures["ours_cost_vs_bare"] > 0
    replayed = workloads["firmware"]
    assert replayed["pages"] == 5  # the smallest recording
    assert replayed["events"] > replayed["pages"] * 30
    assert 0 < replayed["cancels"] < replayed["timers"]
    assert "compiled" not in done.stdout + done.stderr


def test_the_firmware_benchmark_runs_from_the_checkout() -> None:
    done = _python_m_benchmarks("firmware", "--json", "--scale", "0.005")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["pages"] == 5
    assert result["events_per_page"] > 30
    assert result["triggers_per_page"] > 5
    assert "compiled_modules" not in result


def test_without_json_prints_a_readable_table() -> None:
    done = _python_m_benchmarks("scheduler", "--scale", TINY)
    assert done.returncode == 0, done.stderr
    assert "Scheduler throughput" in done.stdout
    assert "1000x1" in done.stdout
    assert "firmware (5-page replay)" in done.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(done.stdout)


def test_unknown_benchmark_exits_2_with_one_line() -> None:
    done = _python_m_benchmarks("warp-drive", "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "unknown benchmark 'warp-drive'" in done.stderr
    assert "scheduler" in done.stderr  # says what there is


def test_a_registered_but_missing_module_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(BENCHMARKS, "ghost", "benchmarks._ghost_not_written_yet")
    assert main(["ghost", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "not available yet" in err


def test_a_benchmark_whose_dependency_is_missing_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    module = tmp_path / "needs_dep_benchmark.py"
    module.write_text("import a_package_that_is_not_installed_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(BENCHMARKS, "needy", "needs_dep_benchmark")
    assert main(["needy"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "a_package_that_is_not_installed_anywhere" in err


def test_a_module_without_run_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(BENCHMARKS, "norun", "benchmarks")  # a module with no run()
    assert main(["norun"]) == 2
    assert "no run()" in capsys.readouterr().err


def test_no_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1


@pytest.mark.parametrize("scale", ["0", "-1", "nan", "inf"])
def test_a_bad_scale_is_a_usage_error(scale: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scheduler", "--scale", scale]) == 2
    assert "--scale" in capsys.readouterr().err


def test_list_names_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list(BENCHMARKS)


def test_in_process_json_run_keeps_stdout_clean_and_restores_the_scale(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(SCALE_ENV, raising=False)

    def noisy_run() -> dict[str, Any]:
        print("progress chatter")  # must not reach stdout
        return {
            "name": "noisy",
            "scale": benchmarks.scale(),
            "table": {"title": "t", "columns": ["a"], "rows": [[1]]},
        }

    fake = type(sys)("fake_noisy_benchmark")
    fake.run = noisy_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_noisy_benchmark", fake)
    monkeypatch.setitem(BENCHMARKS, "noisy", "fake_noisy_benchmark")
    assert main(["noisy", "--json", "--scale", "0.25"]) == 0
    out, err = capsys.readouterr()
    # The result as the benchmark made it: the runner adds nothing.
    assert json.loads(out) == {
        "name": "noisy",
        "scale": 0.25,
        "table": {"title": "t", "columns": ["a"], "rows": [[1]]},
    }
    assert "progress chatter" in err
    assert SCALE_ENV not in os.environ


def test_importing_the_runner_imports_no_benchmark() -> None:
    code = (
        "import sys, benchmarks.__main__; "
        "print(sorted(m for m in sys.modules if m.startswith('benchmarks.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "['benchmarks.__main__']"


def test_scale_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCALE_ENV, raising=False)
    assert benchmarks.scale() == 1.0
    monkeypatch.setenv(SCALE_ENV, "0.01")
    assert benchmarks.scale() == 0.01
    for bad in ("0", "-3", "nan", "many"):
        monkeypatch.setenv(SCALE_ENV, bad)
        with pytest.raises(ValueError):
            benchmarks.scale()


def test_print_result_refuses_a_malformed_table() -> None:
    with pytest.raises(ValueError, match="table"):
        print_result({"name": "x"})
    with pytest.raises(ValueError, match="columns"):
        print_result({"table": {"title": "t", "columns": ["a", "b"], "rows": [[1]]}})
