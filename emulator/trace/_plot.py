"""The timeline picture of a run, from its trace (``printer-emu plot TRACE -o FILE``).

Three panels sharing the time axis (seconds of the run):

* one lane per active object, its states as coloured bars, named where there is room;
* toner % (left axis, a step at each page) and fuser °C (right axis) as curves. The
  fuser's trace holds the points where its curve changes (heater switched, a sheet drawn,
  a crossing); between them the temperature follows the board's first-order model, so
  when the trace names a board this package can load, the exponentials are drawn exactly
  (``T_inf + (T0 - T_inf) exp(-t / tau)``); otherwise the points are joined by lines;
* ticks: pages delivered, injected faults and scenario actions (also marked as red
  lines across all panels), the firmware's warnings, and one row per interrupt line
  that was raised.

matplotlib draws it (the optional extra ``plot``: ``pip install 'printer-emu[plot]'``),
imported only here and only when a picture is asked for, on an ``Agg`` canvas of its own
(no display, no pyplot, the process's backend and settings untouched). ``.png`` and
``.svg`` are written; the SVG is reproducible (fixed hash salt, no date). Reads
``.jsonl`` and ``.vcd`` traces alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from emulator.trace._reader import TraceEvent, read_trace

PLOT_SUFFIXES: Final = (".png", ".svg")
_MAX_FAULT_LABELS: Final = 40
_SAMPLES: Final = 2000
"""Points across the whole run for drawing the fuser's exponential segments."""

_WARNINGS: Final = frozenset({
    "jam", "misfeed", "paper_out", "toner_low", "toner_empty", "fuser_error",
    "watchdog_reset", "self_test_failed", "cover_open",
})

# Colours by what a state means; anything else takes the next colour of a fixed cycle.
_STATE_COLOURS: Final[dict[str, str]] = {
    "error": "#d62728", "failed": "#d62728", "jammed": "#d62728", "empty": "#d62728",
    "open": "#ff7f0e", "interlocked": "#ff7f0e", "attention": "#ff7f0e",
    "held": "#ffbb78", "low": "#ffbb78", "warming": "#fdd835",
    "printing": "#2ca02c", "ready": "#98df8a", "ok": "#98df8a", "loaded": "#98df8a",
    "closed": "#98df8a", "busy": "#1f77b4", "idle": "#c7c7c7", "standby": "#c7c7c7",
    "off": "#e0e0e0",
}
_CYCLE: Final = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#aec7e8",
                 "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d")


class PlotError(Exception):
    """A picture that cannot be made: one line for the user."""


@dataclass
class Timeline:
    """What the picture shows, taken from a trace (times in ns)."""

    start_ns: int = 0
    end_ns: int = 0
    board: str | None = None
    states: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    toner: list[tuple[int, float]] = field(default_factory=list)
    fuser: list[tuple[int, float, bool]] = field(default_factory=list)
    """``(t_ns, temp_c, heating after t)`` at each change of the curve."""
    pages: list[int] = field(default_factory=list)
    faults: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    irq: dict[str, list[int]] = field(default_factory=dict)


def timeline(events: Sequence[TraceEvent]) -> Timeline:
    """Sort a trace's events into what the picture needs."""
    tl = Timeline()
    if not events:
        return tl
    tl.start_ns = min(e[0] for e in events)
    tl.end_ns = max(e[0] for e in events)
    heating = False
    pages_seen = 0
    for t_ns, scope, name, value in events:
        if name == "state" and scope.startswith("firmware."):
            lane = tl.states.setdefault(scope.removeprefix("firmware."), [])
            if not lane or lane[-1][1] != value:
                lane.append((t_ns, str(value)))
        elif scope == "toner" and name == "level_pct" and isinstance(value, int | float):
            tl.toner.append((t_ns, float(value)))
        elif scope == "fuser" and name == "heating":
            heating = bool(value)
            if tl.fuser:
                last_t, last_temp, _ = tl.fuser[-1]
                if last_t == t_ns:
                    tl.fuser[-1] = (last_t, last_temp, heating)
        elif scope == "fuser" and name == "temp_c" and isinstance(value, int | float):
            tl.fuser.append((t_ns, float(value), heating))
        elif scope == "firmware" and name == "pages_delivered" and isinstance(value, int):
            if value > pages_seen:
                tl.pages.append(t_ns)
            pages_seen = value
        elif (scope, name) in (("board", "fault"), ("scenario", "action")) and value:
            tl.faults.append((t_ns, str(value)))
        elif scope == "firmware" and name == "status" and isinstance(value, str):
            kind = value.split("(", 1)[0]
            if kind in _WARNINGS:
                tl.warnings.append((t_ns, kind))
        elif scope.startswith("irq.") and name == "raised" and isinstance(value, int):
            if value > 0:
                tl.irq.setdefault(scope.removeprefix("irq."), []).append(t_ns)
        elif scope == "trace" and name == "board" and value:
            tl.board = str(value)
    # One fault seen twice (the scenario's action and the board's own report) is one mark.
    tl.faults = _dedupe_faults(tl.faults)
    return tl


def _dedupe_faults(faults: list[tuple[int, str]]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for t_ns, text in faults:
        if out and out[-1][0] == t_ns:
            continue
        out.append((t_ns, text))
    return out


def _fuser_model(board: str | None) -> tuple[float, float, float] | None:
    """``(tau_s, max_c, ambient_c)`` of the board the trace names, if it can be loaded."""
    if not board:
        return None
    try:
        from boards import load_board

        cfg = load_board(board).fuser
    except Exception:  # a board file that moved or changed: fall back to straight lines
        return None
    return cfg.tau_s, cfg.max_c, cfg.ambient_c


def _fuser_curve(tl: Timeline) -> tuple[list[float], list[float]]:
    points = tl.fuser
    xs: list[float] = []
    ys: list[float] = []
    if not points:
        return xs, ys
    model = _fuser_model(tl.board)
    span_ns = max(1, tl.end_ns - tl.start_ns)
    step_ns = span_ns / _SAMPLES
    ends = [p[0] for p in points[1:]] + [tl.end_ns]
    for (t0, temp0, heating), t1 in zip(points, ends, strict=True):
        if model is None or t1 <= t0:
            xs.append(t0 / 1e9)
            ys.append(temp0)
            continue
        tau_s, max_c, ambient_c = model
        target = max_c if heating else ambient_c
        n = max(2, min(200, math.ceil((t1 - t0) / step_ns) + 1))
        for i in range(n):
            t = t0 + (t1 - t0) * i / (n - 1)
            xs.append(t / 1e9)
            ys.append(target + (temp0 - target) * math.exp(-(t - t0) / 1e9 / tau_s))
    if model is None:
        xs.append(tl.end_ns / 1e9)
        ys.append(points[-1][1])
    return xs, ys


def _colour(state: str, assigned: dict[str, str]) -> str:
    if state in _STATE_COLOURS:
        return _STATE_COLOURS[state]
    if state not in assigned:
        assigned[state] = _CYCLE[len(assigned) % len(_CYCLE)]
    return assigned[state]


def _import_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotError("plot needs matplotlib: pip install 'printer-emu[plot]'") from None
    return matplotlib


def plot_trace(trace: str | Path, output: str | Path, *, title: str | None = None) -> None:
    """Draw the timeline of ``trace`` (.jsonl or .vcd) into ``output`` (.png or .svg).
    Raises PlotError (TraceError for an unreadable trace)."""
    out = Path(output)
    suffix = out.suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise PlotError(f"the picture is a .png or .svg file, got {str(output)!r}")
    events = read_trace(trace)
    if not events:
        raise PlotError(f"{Path(trace).name}: the trace holds no events")
    tl = timeline(events)
    matplotlib = _import_matplotlib()
    # Settings for this picture only (the caller's own matplotlib state is left alone):
    # a fixed hash salt makes the SVG's ids the same from run to run.
    with matplotlib.rc_context({"svg.hashsalt": "printer-emu"}):
        _draw(tl, out, suffix, title)


def _draw(tl: Timeline, out: Path, suffix: str, title: str | None) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lanes = sorted(tl.states)
    tick_rows = ["pages", "faults", "warnings", *sorted(tl.irq)]
    heights = [max(1.0, 0.45 * len(lanes)), 2.6, max(1.2, 0.28 * len(tick_rows))]
    fig = Figure(figsize=(13, 1.2 + sum(heights)), layout="constrained")
    FigureCanvasAgg(fig)  # drawn by Agg: no display, no pyplot, no global backend
    ax_states, ax_curves, ax_ticks = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": heights})
    x0, x1 = tl.start_ns / 1e9, max(tl.end_ns, tl.start_ns + 1) / 1e9
    fig.suptitle(title or f"printer-emu run{f' on {tl.board}' if tl.board else ''}: "
                 f"{len(tl.pages)} pages in {x1 - x0:.3f} s", fontsize=11)

    # States, one lane per active object.
    assigned: dict[str, str] = {}
    for row, name in enumerate(lanes):
        changes = tl.states[name]
        ends = [t for t, _ in changes[1:]] + [tl.end_ns]
        y = len(lanes) - 1 - row
        for (t0, state), t1 in zip(changes, ends, strict=True):
            width = (t1 - t0) / 1e9
            ax_states.broken_barh([(t0 / 1e9, width)], (y - 0.4, 0.8),
                                  facecolors=_colour(state, assigned), edgecolors="white",
                                  linewidth=0.3)
            if width > (x1 - x0) * 0.04:
                ax_states.text(t0 / 1e9 + width / 2, y, state, ha="center", va="center",
                               fontsize=7, clip_on=True)
    ax_states.set_yticks(range(len(lanes)), list(reversed(lanes)))
    ax_states.set_ylim(-0.6, len(lanes) - 0.4)
    ax_states.set_title("active objects", fontsize=9, loc="left")

    # Toner and fuser curves.
    if tl.toner:
        xs = [t / 1e9 for t, _ in tl.toner] + [x1]
        ys = [v for _, v in tl.toner] + [tl.toner[-1][1]]
        ax_curves.step(xs, ys, where="post", color="#1f77b4", linewidth=1.2, label="toner %")
    ax_curves.set_ylabel("toner %", color="#1f77b4")
    ax_curves.set_ylim(-2, 102)
    ax_fuser = ax_curves.twinx()
    fx, fy = _fuser_curve(tl)
    if fx:
        ax_fuser.plot(fx, fy, color="#d62728", linewidth=0.9, label="fuser °C")
    ax_fuser.set_ylabel("fuser °C", color="#d62728")
    ax_curves.set_title("toner % and fuser °C", fontsize=9, loc="left")

    # Ticks: pages, faults, warnings, interrupts.
    rows: list[list[float]] = [
        [t / 1e9 for t in tl.pages],
        [t / 1e9 for t, _ in tl.faults],
        [t / 1e9 for t, _ in tl.warnings],
        *([t / 1e9 for t in tl.irq[line]] for line in sorted(tl.irq)),
    ]
    colours = ["#2ca02c", "#d62728", "#ff7f0e", *["#555555"] * len(tl.irq)]
    offsets = list(range(len(rows) - 1, -1, -1))
    for positions, offset, colour in zip(rows, offsets, colours, strict=True):
        if positions:
            ax_ticks.eventplot([positions], lineoffsets=[offset], linelengths=[0.7],
                               colors=[colour], linewidths=0.6)
    ax_ticks.set_yticks(offsets, tick_rows, fontsize=8)
    ax_ticks.set_ylim(-0.6, len(rows) - 0.4)
    ax_ticks.set_xlabel("time (s)")
    ax_ticks.set_title("pages delivered, faults, warnings, interrupts", fontsize=9, loc="left")

    for i, (t_ns, text) in enumerate(tl.faults):
        for ax in (ax_states, ax_curves, ax_ticks):
            ax.axvline(t_ns / 1e9, color="#d62728", linewidth=0.6, linestyle="--", alpha=0.6)
        if i < _MAX_FAULT_LABELS:
            ax_states.annotate(text, (t_ns / 1e9, 1.0), xycoords=("data", "axes fraction"),
                               xytext=(2, 2), textcoords="offset points", fontsize=6,
                               color="#d62728", rotation=30, ha="left", va="bottom",
                               annotation_clip=False)
    ax_ticks.set_xlim(x0, x1)
    for ax in (ax_states, ax_curves, ax_ticks):
        ax.grid(axis="x", linewidth=0.3, alpha=0.5)

    metadata: dict[str, Any] = {"Date": None} if suffix == ".svg" else {"Software": None}
    try:
        fig.savefig(out, format=suffix[1:], metadata=metadata, dpi=120)
    except OSError as e:
        raise PlotError(f"cannot write {out}: {e.strerror}") from None
