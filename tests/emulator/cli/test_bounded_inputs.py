"""Issue 16, the command line's side: every input bounded, every mistake one line with
exit status 2 (never a traceback, never a hang), every run honest about how it ended.

Each test fails on the code before the issue (a traceback, a hang, a silent pass or a
wrong word) and passes now."""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
from pathlib import Path

import pytest

from boards import load_board
from emulator.board import EmulatedBoard
from emulator.cli import main
from emulator.cli._common import EXIT_INTERRUPTED, execute
from emulator.run import JobSpec, PrintRun
from firmware import StatusEvent
from hal import Scheduler


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``printer-emu ARGV``: exit status 2 and one line on stderr, returned."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert err.startswith("printer-emu: error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    return path


# -- 1. inputs bounded -------------------------------------------------------------


def test_a_device_as_job_or_scenario_is_refused_unread(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert "/dev/zero: not a regular file (a job file" in one_line_error(
        capsys, "run", "--job", "/dev/zero")
    assert "/dev/zero: not a regular file (a scenario file" in one_line_error(
        capsys, "run", "--scenario", "/dev/zero")


def test_a_scenario_job_file_on_a_device_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[job]]\nfile = "/dev/urandom"\n')
    assert "/dev/urandom: not a regular file" in one_line_error(
        capsys, "run", "--scenario", str(scenario))


def test_a_fifo_as_job_scenario_or_trace_does_not_block(
        fifo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "not a regular file" in one_line_error(capsys, "run", "--job", str(fifo))
    assert "not a regular file" in one_line_error(capsys, "run", "--scenario", str(fifo))
    trace = tmp_path / "t.jsonl"
    os.mkfifo(trace)
    assert "not a regular file" in one_line_error(capsys, "run", "--trace", str(trace))


def test_files_over_the_cap_are_refused_naming_the_cap(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    assert "limit of 1048576 bytes" in one_line_error(capsys, "run", "--scenario", str(big))
    assert "limit of 1048576 bytes" in one_line_error(capsys, "run", "--board", str(big))
    job = tmp_path / "big.txt"
    with job.open("wb") as f:
        f.truncate((16 << 20) + 1)  # sparse: nothing is written
    assert "limit of 16777216 bytes" in one_line_error(capsys, "run", "--job", str(job))


def test_pages_are_capped_before_anything_is_built(capsys: pytest.CaptureFixture[str]) -> None:
    for pages in ("10000000", "1000000000"):
        assert "--pages: " + pages + " is out of range [1, 1000000]" in one_line_error(
            capsys, "run", "--pages", pages)


# -- 2. tracebacks become one line -------------------------------------------------------


@pytest.mark.parametrize(("text", "fragment"), [
    ('[[at]]\ntime = "1s"\ntray = 500\n', "over the tray's capacity on lp-2000 (250 sheets)"),
    ("[[at]]\ntime = inf\ncover = \"open\"\n", "time: inf is out of range"),
    ("[[at]]\ntime = nan\ncover = \"open\"\n", "time: nan is out of range"),
    ("[[at]]\ntime = 1e300\ncover = \"open\"\n", "time: 1e+300 is out of range"),
    ('[[job]]\nfile = "a\\u0000b"\n', "file: expected a path"),
    ("a = " + "[" * 2000 + "]" * 2000 + "\n", "nested too deeply"),
    ("[[job]]\npages = 3\n[[at]]\npage = 50\ntoner_pct = 5\n", "50 never comes: the run has 3"),
    ("[[job]]\npages = 3\n[[at]]\npage = 1\njob = 5\ntoner_pct = 5\n",
     "job 5 never comes (jobs: 1)"),
])
def test_scenario_mistakes_are_one_line(text: str, fragment: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(text)
    err = one_line_error(capsys, "run", "--scenario", str(scenario))
    assert "s.toml" in err and fragment in err


def test_a_non_utf8_scenario_or_board_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"seed = 1 # \xff\xfe\n")
    assert "bad.toml: not UTF-8 text" in one_line_error(capsys, "run", "--scenario", str(bad))
    assert "bad.toml: not UTF-8 text" in one_line_error(capsys, "run", "--board", str(bad))


def test_a_byte_order_mark_is_accepted(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_bytes(b"\xef\xbb\xbfseed = 3\n[[job]]\npages = 1\n")
    board = tmp_path / "b.toml"
    board.write_bytes(b'\xef\xbb\xbfextends = "lp-2000"\n')
    assert main(["run", "--json", "--scenario", str(scenario), "--board", str(board)]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 3


def test_a_trace_on_a_full_disk_is_one_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("no /dev/full")
    # A regular file is asked for, so the full disk is met where it would be: the file
    # the trace is written to fails its writes (ENOSPC) in the middle of the run.
    trace = tmp_path / "x.jsonl"
    real_open = open

    def full_disk_open(file: object, *args: object, **kwargs: object) -> object:
        if file == trace:
            return real_open("/dev/full", *args, **kwargs)  # type: ignore[call-overload]
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    import builtins
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "open", full_disk_open)
        err = one_line_error(capsys, "run", "--quiet", "--pages", "3", "--trace", str(trace))
    assert "x.jsonl: cannot write the trace: No space left on device" in err


# -- 3. honest runs ---------------------------------------------------------------------


def test_ctrl_c_mid_run_is_an_interrupted_outcome_with_the_pages_so_far(
        capsys: pytest.CaptureFixture[str]) -> None:
    board = EmulatedBoard(load_board("lp-2000"), Scheduler(), seed=0)

    def ctrl_c_at_page_28(event: StatusEvent) -> None:
        if event.kind == "page_delivered" and event.detail["page"] == 28:
            raise KeyboardInterrupt

    run = PrintRun(board, seed=0, listeners=[ctrl_c_at_page_28])
    run.add_job(JobSpec(pages=64, coverage_pct=5.0))
    code = execute(run, argparse.Namespace(json=True, quiet=False))
    out, err = capsys.readouterr()
    assert code == EXIT_INTERRUPTED == 130
    assert err == "printer-emu: interrupted\n"
    result = json.loads(out)
    assert result["outcome"] == "interrupted"
    assert result["pages_delivered"] == 28
    assert result["wall_time_s"] > 0 and result["speedup"] is not None


def test_injected_press_and_heater_are_in_the_json_events(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[job]]\npages = 2\n[[at]]\ntime = "1s"\nheater = "failed"\n'
                        '[[at]]\ntime = "2s"\nheater = "ok"\n'
                        '[[at]]\ntime = "3s"\npress = "continue"\n')
    main(["run", "--json", "--scenario", str(scenario)])
    events = json.loads(capsys.readouterr().out)["events"]
    assert {"t_s": 1.0, "kind": "injected_heater", "state": "failed"} in events
    assert {"t_s": 2.0, "kind": "injected_heater", "state": "ok"} in events
    assert {"t_s": 3.0, "kind": "injected_press", "button": "continue"} in events


def test_injected_actions_are_in_the_console_log(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[job]]\npages = 2\n[[at]]\ntime = "3s"\npress = "continue"\n')
    main(["run", "--scenario", str(scenario)])
    assert "injected press  continue" in capsys.readouterr().out


# -- 4. small things --------------------------------------------------------------------


def test_seed_minus_one_is_refused_alike_with_the_range(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text("seed = -1\n")
    rng = "-1 is out of range [0, 9223372036854775807]"
    assert f"--seed: {rng}" in one_line_error(capsys, "run", "--seed", "-1")
    assert f"seed: {rng}" in one_line_error(capsys, "run", "--scenario", str(scenario))


def test_the_progress_display_is_two_unpadded_lines() -> None:
    from rich.console import Console

    from emulator.cli._console import RunConsole

    board = EmulatedBoard(load_board("lp-2000"), Scheduler(), seed=0)
    run = PrintRun(board, seed=0)
    run.add_job(JobSpec(pages=1, coverage_pct=5.0))
    console = Console(width=120, record=True, file=io.StringIO())
    view = RunConsole(run, console, live=False)
    console.print(view._render())
    lines = console.export_text().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("━") and lines[0].rstrip() == lines[0]
    assert lines[1].startswith("cover:") and "panel:" in lines[1]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("printer-emu ")


def test_baud_without_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--baud" in one_line_error(capsys, "run", "--baud", "9600")


def test_plot_help_says_toner_percent(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "toner % and" in out and "%%" not in out


def test_the_trace_dir_help_names_the_default_it_uses() -> None:
    from emulator import pytest_plugin

    options: dict[str, str] = {}

    class Group:
        def addoption(self, name: str, **kwargs: object) -> None:
            options[name] = str(kwargs.get("help", ""))

    class Parser:
        def getgroup(self, *args: object, **kwargs: object) -> Group:
            return Group()

    pytest_plugin.pytest_addoption(Parser())  # type: ignore[arg-type]
    help_text = options["--printer-trace-dir"]
    assert "printer-emu-traces" in help_text and "tmp_path" not in help_text


def test_a_moment_that_never_came_is_reported_in_the_json_and_the_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    # Known only as the run goes: the job is cancelled at its first page.
    scenario.write_text('[[job]]\npages = 5\n[[at]]\npage = 1\npress = "cancel"\n'
                        "[[at]]\npage = 4\ntoner_pct = 5\n")
    main(["run", "--json", "--scenario", str(scenario)])
    assert json.loads(capsys.readouterr().out)["moments_not_reached"] == ["page 4: toner_pct"]
    main(["run", "--scenario", str(scenario)])
    assert "page 4: toner_pct (its page never came)" in capsys.readouterr().out
