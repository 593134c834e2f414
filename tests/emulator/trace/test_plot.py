"""The timeline picture (emulator/trace/_plot.py): what it takes from a trace, PNG and SVG
output, and one-line errors (matplotlib is optional: the drawing tests skip without it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from boards import load_board
from emulator.board import EmulatedBoard
from emulator.run import Action, JobSpec, Moment, PrintRun, TimedAction
from emulator.trace import (
    PlotError,
    TraceError,
    plot_trace,
    read_trace,
    start_trace,
    timeline,
)
from hal import Scheduler

S = 1_000_000_000


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> tuple[PrintRun, Path, Path]:
    """A short devkit run with a jam and a toner warning, traced both ways."""
    directory = tmp_path_factory.mktemp("plot")
    board = EmulatedBoard(load_board("devkit"), Scheduler(), seed=5)
    run = PrintRun(board, seed=5)
    run.add_job(JobSpec(pages=10, coverage_pct=5.0))
    run.add_actions([
        TimedAction(Moment(page=3), Action("jam", "exit")),
        TimedAction(Moment(t_ns=2 * S), Action("cover", "open")),
        TimedAction(Moment(t_ns=2 * S + S // 4), Action("cover", "closed")),
        TimedAction(Moment(page=6), Action("toner_pct", 5.0)),
    ])
    jsonl, vcd = directory / "run.jsonl", directory / "run.vcd"
    recorders = [start_trace(run, jsonl), start_trace(run, vcd)]
    run.run()
    for recorder in recorders:
        recorder.stop()
    return run, jsonl, vcd


def test_timeline_takes_lanes_curves_and_ticks_from_the_trace(
        traces: tuple[PrintRun, Path, Path]) -> None:
    run, jsonl, vcd = traces
    for path in (jsonl, vcd):
        tl = timeline(read_trace(path))
        assert sorted(tl.states) == sorted(run.printer.states())
        assert tl.states["engine"][0][0] == 0  # every lane starts with the run
        assert "jammed" in [state for _, state in tl.states["engine"]]
        assert len(tl.pages) == run.pages_delivered == 10
        assert [text for _, text in tl.faults][:1] == ["jam:exit"]
        assert any(kind == "jam" for _, kind in tl.warnings)
        assert tl.toner[0][1] == 100.0 and tl.toner[-1][1] < 6.0
        assert tl.fuser and tl.fuser[0][1] == pytest.approx(25.0)
        assert {"feed_sensor", "exit_sensor", "fuser"} <= set(tl.irq)
        assert tl.board == "devkit"
        assert tl.end_ns >= run.end_ns  # type: ignore[operator]


def test_plot_writes_png_and_svg(traces: tuple[PrintRun, Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="missing tool: matplotlib")
    _, jsonl, vcd = traces
    png, svg = tmp_path / "run.png", tmp_path / "run.svg"
    plot_trace(jsonl, png)
    plot_trace(vcd, svg, title="from the VCD")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = svg.read_text()
    assert "<svg" in text and "from the VCD" in text
    again = tmp_path / "again.svg"
    plot_trace(vcd, again, title="from the VCD")
    assert again.read_bytes() == svg.read_bytes()  # no date, fixed ids


def test_plot_rejects_other_picture_formats(traces: tuple[PrintRun, Path, Path],
                                            tmp_path: Path) -> None:
    with pytest.raises(PlotError, match=r"\.png or \.svg"):
        plot_trace(traces[1], tmp_path / "run.pdf")


def test_plot_says_in_one_line_that_matplotlib_is_missing(
        traces: tuple[PrintRun, Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotError) as caught:
        plot_trace(traces[1], tmp_path / "run.png")
    assert str(caught.value) == "plot needs matplotlib: pip install 'printer-emu[plot]'"


def test_a_trace_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    picture = tmp_path / "x.png"
    with pytest.raises(TraceError, match=r"^cannot read trace .*none\.jsonl"):
        plot_trace(tmp_path / "none.jsonl", picture)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(TraceError, match=r"^bad\.jsonl:1: not a trace event$"):
        plot_trace(bad, picture)
    with pytest.raises(TraceError, match=r"\.vcd or \.jsonl"):
        plot_trace(tmp_path / "t.txt", picture)
    with pytest.raises(PlotError, match=r"\.png or \.svg"):
        plot_trace(bad, tmp_path / "x.pdf")
