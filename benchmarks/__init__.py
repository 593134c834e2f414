"""Performance measurements (not timed tests): ``python -m benchmarks NAME [--json]``, from
the checkout's root (this folder is not installed). Figures measured with them, and where
the time goes: ``docs/performance.md``.

The runner (:mod:`benchmarks.__main__`) knows each benchmark by name and the module that
holds it, and imports that module only when asked to run it, so a benchmark's heavy
imports (SimPy, the firmware, ...) cost nothing to the others.

The interface a benchmark module fulfils
----------------------------------------
A benchmark is a module ``benchmarks._NAME``, registered in
:data:`benchmarks.__main__.BENCHMARKS`, that exposes::

    def run() -> dict[str, Any]: ...

``run()`` does the measurement and returns a JSON-able dict (``str`` keys; values are
``str``, ``int``, finite ``float``, ``bool``, ``None``, or lists and dicts of those):

* ``"name"`` (``str``): the name it is registered under.
* ``"table"`` (``dict``): what the runner prints without ``--json``:
  ``{"title": str, "columns": [str, ...], "rows": [[cell, ...], ...]}`` with cells of
  ``str``, ``int``, ``float`` or ``None`` (printed as ``-``). Every row has one cell per
  column.
* ``"more_tables"`` (``list[dict]``, optional): further tables of the same shape,
  printed after the first (a comparison whose columns are devices, say).
* ``"notes"`` (``list[str]``, optional): one line each, printed under the tables.
* anything else: the figures and ratios, under names that carry their unit
  (``events_per_s``, ``_ns``, ``_mb_s``); ratios are plain numbers named for what they
  divide (``ours_vs_simpy``).

With ``--json`` the runner prints that dict, whole, as exactly one JSON object on stdout
and nothing else there.

Rules for ``run()``:

* It writes nothing meant for the reader on stdout (the runner points stdout at stderr
  while it runs, so stray prints cannot break ``--json``); progress goes to stderr.
* It honours :func:`scale`: the fraction of the full workload to run (``1.0`` unless the
  runner's ``--scale`` or the :data:`SCALE_ENV` variable says otherwise). Tests run a
  benchmark at a tiny scale to check its plumbing in well under a second; they never
  assert timings.
* It takes the best of a few repeats and measures ratios in one process, one run after
  another: the machines this runs on are shared and noisy, so absolute figures are
  orders of magnitude and only ratios measured together mean much.
"""

from __future__ import annotations

import os
from typing import IO, Any, Final

__all__ = ["SCALE_ENV", "print_result", "scale"]

SCALE_ENV: Final = "PRINTER_EMU_BENCH_SCALE"
"""Environment variable holding the workload fraction (a float > 0); see :func:`scale`."""


def scale() -> float:
    """The fraction of its full workload a benchmark should run: :data:`SCALE_ENV` if set,
    else ``1.0``. Raises ``ValueError`` for a value that is not a number > 0."""
    raw = os.environ.get(SCALE_ENV)
    if raw is None or raw == "":
        return 1.0
    value = float(raw)
    # `not value > 0` also rejects NaN.
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{SCALE_ENV} must be a number > 0, got {raw!r}")
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        # Figures span events/s in the millions down to ratios near 1.
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_result(result: dict[str, Any], file: IO[str] | None = None) -> None:
    """Print a benchmark's ``result["table"]`` and ``result["notes"]`` for a reader.

    Raises ``ValueError`` if the result does not follow the interface above (no table,
    or a row whose length differs from the columns'), so a malformed benchmark is caught
    by its first run rather than printed half.
    """
    # rich is imported here, not at module level: `import benchmarks` stays cheap.
    from rich.console import Console
    from rich.table import Table

    table_spec = result.get("table")
    if not isinstance(table_spec, dict):
        raise ValueError("benchmark result has no 'table' dict")
    more = result.get("more_tables", [])
    if not isinstance(more, list) or not all(isinstance(t, dict) for t in more):
        raise ValueError("benchmark 'more_tables' must be a list of table dicts")
    tables = []
    for spec in (table_spec, *more):
        columns = spec.get("columns")
        rows = spec.get("rows")
        if not isinstance(columns, list) or not isinstance(rows, list):
            raise ValueError("benchmark table needs 'columns' and 'rows' lists")
        table = Table(title=str(spec.get("title", result.get("name", ""))))
        for i, column in enumerate(columns):
            table.add_column(str(column), justify="left" if i == 0 else "right")
        for row in rows:
            if not isinstance(row, list) or len(row) != len(columns):
                raise ValueError(f"benchmark table row {row!r} does not match its columns")
            table.add_row(*(_cell(cell) for cell in row))
        tables.append(table)
    console = Console(file=file, highlight=False)
    if not console.is_terminal:
        # Piped or captured: rich would assume 80 columns and squeeze the figures.
        console = Console(file=file, highlight=False, width=120)
    for table in tables:
        console.print(table)
    for note in result.get("notes", []):
        console.print(str(note))
