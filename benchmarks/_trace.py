"""What tracing costs: pages per wall second of one job with tracing off, VCD, JSONL.

The same run — the ``devkit`` board, seed 1, one job of :data:`PAGES` pages at 5 %
coverage, the tray topped up every :data:`REFILL_EVERY` pages — is made three ways in
this one process: untraced, traced to a VCD file and traced to a JSONL file (both in a
temporary directory, on disk, as ``--trace`` does).
Repeats are interleaved and the best of :data:`REPEATS` is kept for each (noise only
ever slows a run down). Timed: ``run.run()`` plus, when traced, starting and closing
the trace (the file is complete when the clock stops); not timed: building the board
and queueing the job. Every run is checked to have delivered every page.

Target (from the issue): tracing to VCD costs at most 2x, i.e. ``vcd_cost`` (untraced
pages/s over VCD-traced pages/s) <= 2.
"""

from __future__ import annotations

import gc
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from benchmarks import scale as _scale

REPEATS: Final = 3
PAGES: Final = 1_000
"""Pages of the job at scale 1."""
REFILL_EVERY: Final = 200
"""The tray is refilled when this many more pages have started to feed."""
TARGET: Final = 2.0
"""VCD tracing may cost at most this factor in pages per wall second."""
_MODES: Final = ("off", "vcd", "jsonl")


def _one(mode: str, pages: int, directory: Path) -> tuple[float, int, int]:
    """One timed run: ``(wall seconds, events traced, trace bytes)``."""
    from boards import load_board
    from emulator.board import EmulatedBoard
    from emulator.run import Action, JobSpec, Moment, Outcome, PrintRun, TimedAction
    from emulator.trace import start_trace
    from hal import Scheduler

    board = EmulatedBoard(load_board("devkit"), Scheduler(), seed=1)
    run = PrintRun(board, seed=1)
    run.add_job(JobSpec(pages=pages, coverage_pct=5.0))
    # The tray holds 250 sheets: the operator tops it up every REFILL_EVERY pages.
    capacity = board.config.tray.capacity_sheets
    run.add_actions(TimedAction(Moment(page=page), Action("tray", capacity))
                    for page in range(REFILL_EVERY, pages, REFILL_EVERY))
    path = directory / f"bench.{mode}"
    gc.collect()
    start = time.perf_counter()
    recorder = start_trace(run, path) if mode != "off" else None
    outcome = run.run()
    if recorder is not None:
        recorder.stop()
    elapsed = time.perf_counter() - start
    if outcome is not Outcome.COMPLETED or run.pages_delivered != pages:
        raise RuntimeError(f"{mode}: {outcome} with {run.pages_delivered}/{pages} pages")
    events = recorder.events if recorder is not None else 0
    size = path.stat().st_size if recorder is not None else 0
    return elapsed, events, size


def run(scale: float | None = None) -> dict[str, Any]:
    """Measure; see the module docstring. ``scale`` defaults to the runner's."""
    factor = _scale() if scale is None else scale
    if not factor > 0:
        raise ValueError(f"scale must be > 0, got {factor}")
    pages = max(2, round(PAGES * factor))
    best: dict[str, float] = {}
    events: dict[str, int] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="printer-emu-bench-") as tmp:
        directory = Path(tmp)
        for _ in range(REPEATS):
            for mode in _MODES:
                elapsed, count, size = _one(mode, pages, directory)
                best[mode] = min(best.get(mode, elapsed), elapsed)
                events[mode], sizes[mode] = count, size
    rate = {mode: pages / best[mode] for mode in _MODES}
    vcd_cost = rate["off"] / rate["vcd"]
    jsonl_cost = rate["off"] / rate["jsonl"]
    per_page = events["vcd"] / pages
    rows: list[list[Any]] = [
        ["off", round(rate["off"], 1), round(best["off"], 4), 1.0, None, None],
        ["vcd", round(rate["vcd"], 1), round(best["vcd"], 4), round(vcd_cost, 3),
         round(per_page, 1), round(sizes["vcd"] / pages, 1)],
        ["jsonl", round(rate["jsonl"], 1), round(best["jsonl"], 4), round(jsonl_cost, 3),
         round(events["jsonl"] / pages, 1), round(sizes["jsonl"] / pages, 1)],
    ]
    return {
        "name": "trace",
        "scale": factor,
        "pages": pages,
        "repeats": REPEATS,
        "python": platform.python_version(),
        "off_pages_per_s": round(rate["off"], 1),
        "vcd_pages_per_s": round(rate["vcd"], 1),
        "jsonl_pages_per_s": round(rate["jsonl"], 1),
        "vcd_cost": round(vcd_cost, 3),
        "jsonl_cost": round(jsonl_cost, 3),
        "events_per_page": round(per_page, 1),
        "vcd_bytes_per_page": round(sizes["vcd"] / pages, 1),
        "jsonl_bytes_per_page": round(sizes["jsonl"] / pages, 1),
        "target_cost": TARGET,
        "meets_target": vcd_cost <= TARGET,
        "table": {
            "title": f"tracing cost: devkit, {pages} pages, best of {REPEATS}",
            "columns": ["tracing", "pages/s", "wall s", "cost vs off", "events/page",
                        "bytes/page"],
            "rows": rows,
        },
        "notes": [
            f"target: VCD tracing costs at most {TARGET:g}x "
            f"({'met' if vcd_cost <= TARGET else 'NOT met'}: {vcd_cost:.2f}x)",
            "cost = untraced pages/s over traced pages/s, measured in this one run",
        ],
    }
