"""What the commands share (emulator/cli/_common.py) and the small commands: ``--trace``,
``--speed``, ``plot``'s one-line mistakes, ``printer-emu --help`` listing every command,
and ``python -m emulator`` being the same command line."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.cli import EXIT_USAGE, CommandParser, UsageError, add_trace_option, main
from emulator.cli._common import parse_speed


def _trace_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="printer-emu")
    add_trace_option(parser)
    return parser


@pytest.mark.parametrize("name", ["run.vcd", "run.jsonl", "RUN.VCD"])
def test_trace_option_takes_vcd_and_jsonl(tmp_path: Path, name: str) -> None:
    args = _trace_parser().parse_args(["--trace", str(tmp_path / name)])
    assert args.trace == tmp_path / name


@pytest.mark.parametrize("value", ["run.txt", "run", "no/such/dir/run.vcd"])
def test_trace_option_rejects_other_paths_in_one_line(value: str) -> None:
    with pytest.raises(UsageError) as caught:
        _trace_parser().parse_args(["--trace", value])
    message = str(caught.value)
    assert "--trace" in message and "\n" not in message
    assert _trace_parser().parse_args([]).trace is None


def test_speed_is_max_realtime_or_a_positive_ratio() -> None:
    assert parse_speed("max") is None
    assert parse_speed("realtime") == 1.0
    assert parse_speed("2.5") == 2.5
    for bad in ("fast", "0", "-1"):
        with pytest.raises(UsageError, match="--speed"):
            parse_speed(bad)


def test_plot_mistakes_are_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    picture = str(tmp_path / "x.png")
    assert main(["plot", str(tmp_path / "none.jsonl"), "-o", picture]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("printer-emu: error: plot: cannot read trace") and err.count("\n") == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert main(["plot", str(bad), "-o", picture]) == EXIT_USAGE
    assert "bad.jsonl:1: not a trace event" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "t.txt"), "-o", picture]) == EXIT_USAGE
    assert ".vcd or .jsonl" in capsys.readouterr().err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "boards", "serve", "diagram", "plot", "flash"):
        assert f"    {command} " in out, command


def test_boards_lists_the_shipped_boards(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"lp-2000", "devkit"} <= set(names)


def test_python_m_emulator_reports_a_usage_error_in_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "emulator", "run", "--speed", "fast"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_USAGE and done.stdout == ""
    assert done.stderr.startswith("printer-emu: error: --speed") and done.stderr.count("\n") == 1
