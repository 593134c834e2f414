"""Tracing into a file: a recorder with one sink, attached, started, and stopped when
the traced work is over."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from emulator.trace._recorder import DEFAULT_RING_SIZE, TraceRecorder
from emulator.trace._signals import TraceError
from emulator.trace._sinks import open_sink
from hal import Board

if TYPE_CHECKING:
    from emulator.run import PrintRun


def start_trace(run: PrintRun, path: str | Path, *,
                ring_size: int = DEFAULT_RING_SIZE) -> TraceRecorder:
    """Trace ``run`` into ``path`` (.vcd or .jsonl) from now; :meth:`~TraceRecorder.stop`
    when the run is over. Raises TraceError for a bad path."""
    sink = open_sink(path)
    recorder = TraceRecorder(ring_size=ring_size)
    recorder.add_sink(sink)
    recorder.attach_run(run)
    recorder.start()
    return recorder


def start_board_trace(board: Board, path: str | Path, *,
                      ring_size: int = DEFAULT_RING_SIZE) -> TraceRecorder:
    """Trace a board with no firmware on this side (``serve``: the host runs it)."""
    sink = open_sink(path)
    recorder = TraceRecorder(ring_size=ring_size)
    recorder.add_sink(sink)
    recorder.attach_board(board)
    recorder.start()
    return recorder


@contextlib.contextmanager
def trace_run(run: PrintRun, path: str | Path | None) -> Iterator[TraceRecorder | None]:
    """``with trace_run(run, args.trace): ...``: trace the block into ``path``, or do
    nothing at all when ``path`` is ``None``. The file is complete when the block ends,
    however it ends; a write error (a full disk) is a TraceError naming ``path`` when the
    block ends (the run itself is not disturbed)."""
    if path is None:
        yield None
        return
    recorder = start_trace(run, path)
    try:
        yield recorder
    finally:
        try:
            recorder.stop()
        except TraceError as e:
            raise TraceError(f"{path}: {e}") from None
