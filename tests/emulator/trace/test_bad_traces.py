"""Issue 16, the trace's side: ``plot``'s reader refuses random bytes, a time of 1e400 and
a FIFO in one line (TraceError), and a trace whose writes fail (a full disk) does not
stop the run: the error is one TraceError when the trace ends."""

from __future__ import annotations

import errno
import io
import os
import random
from pathlib import Path

import pytest

from boards import load_board
from emulator.board import EmulatedBoard
from emulator.run import JobSpec, PrintRun
from emulator.trace import TraceError, read_trace, trace_run
from hal import Scheduler


@pytest.mark.parametrize("suffix", [".jsonl", ".vcd"])
def test_random_bytes_are_not_a_trace(suffix: str, tmp_path: Path) -> None:
    rng = random.Random(16)
    for n in range(20):
        path = tmp_path / f"r{n}{suffix}"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600))))
        with pytest.raises(TraceError):
            read_trace(path)


def test_a_time_of_1e400_is_not_a_trace_event(tmp_path: Path) -> None:
    path = tmp_path / "inf.jsonl"
    path.write_text('{"t_ns": 1e400, "scope": "a", "signal": "b", "value": 1}\n')
    with pytest.raises(TraceError, match=r"inf\.jsonl:1: not a trace event"):
        read_trace(path)


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    os.mkfifo(path)
    with pytest.raises(TraceError, match="not a regular file"):
        read_trace(path)


class _FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_ends_the_trace_with_one_error_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import emulator.trace._sinks as sinks

    real_open = open
    target = tmp_path / "t.jsonl"

    def full_open(file: object, *args: object, **kwargs: object) -> object:
        return _FullDisk() if file == target else real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(sinks, "open", full_open, raising=False)
    board = EmulatedBoard(load_board("devkit"), Scheduler(), seed=0)
    run = PrintRun(board, seed=0)
    run.add_job(JobSpec(pages=2, coverage_pct=5.0))
    full = r"t\.jsonl: cannot write the trace: No space left"
    with pytest.raises(TraceError, match=full), trace_run(run, target):
        run.run()
    assert run.pages_delivered == 2
