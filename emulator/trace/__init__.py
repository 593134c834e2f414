"""Tracing a run: every interrupt, ISR, state change, I/O request and fault, in
nanoseconds, into a VCD or JSONL file; reading a trace back; drawing its timeline.

* :class:`TraceRecorder` (``_recorder.py``) watches a board, the firmware and a run
  through their hooks and makes *events* on declared :class:`Signal` s
  (``_signals.py``);
* :class:`VcdSink` and :class:`JsonlSink` (``_sinks.py``) write them;
  :func:`start_trace`, :func:`start_board_trace` and :func:`trace_run` (``_start.py``)
  trace into a file in one call;
* :func:`read_trace` (``_reader.py``) reads either file back as :data:`TraceEvent` s;
  :func:`plot_trace` (``_plot.py``) draws the timeline (matplotlib, imported only then).

The command line's ``--trace`` option and ``plot`` command are ``emulator.cli``'s.
"""

from emulator.trace._plot import (
    PLOT_SUFFIXES,
    PlotError,
    Timeline,
    plot_trace,
    timeline,
)
from emulator.trace._reader import TraceEvent, read_trace
from emulator.trace._recorder import DEFAULT_RING_SIZE, TraceRecorder
from emulator.trace._signals import (
    TRACE_SUFFIXES,
    Event,
    Signal,
    SignalKind,
    TraceError,
    TraceSink,
)
from emulator.trace._sinks import JsonlSink, VcdSink, open_sink
from emulator.trace._start import start_board_trace, start_trace, trace_run

__all__ = [
    "DEFAULT_RING_SIZE",
    "PLOT_SUFFIXES",
    "TRACE_SUFFIXES",
    "Event",
    "JsonlSink",
    "PlotError",
    "Signal",
    "SignalKind",
    "Timeline",
    "TraceError",
    "TraceEvent",
    "TraceRecorder",
    "TraceSink",
    "VcdSink",
    "open_sink",
    "plot_trace",
    "read_trace",
    "start_board_trace",
    "start_trace",
    "timeline",
    "trace_run",
]
