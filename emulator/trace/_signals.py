"""What a trace is made of: signals, the events on them, and where events go.

A trace is a set of declared :class:`Signal` s (the variables of a waveform: a scope, a
name, a kind and a value at the start) and *events* ``(t_ns, signal, value)`` in time
order. A :class:`TraceSink` writes them out (``_sinks.py``: VCD, JSONL); the recorder
(``_recorder.py``) makes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal, Protocol

SignalKind = Literal["wire", "integer", "real", "string"]
"""Lines and sensors are wires, states and texts strings, toner %, fuser °C and the
tray's count reals, counts integers."""

SIGNAL_KINDS: Final[frozenset[str]] = frozenset({"wire", "integer", "real", "string"})

TRACE_SUFFIXES: Final = (".vcd", ".jsonl")
"""What a trace file's name ends in (either case)."""


class TraceError(Exception):
    """A trace that cannot be made or read (a bad path, misuse of the recorder): one
    line."""


class Signal:
    """One traced variable: ``scope`` (dotted: ``irq.feed_sensor``), ``name``, ``kind``
    and the value it has when the trace starts (``None``: unknown)."""

    __slots__ = ("index", "init", "kind", "name", "scope")

    def __init__(self, scope: str, name: str, kind: SignalKind, init: object) -> None:
        self.scope = scope
        self.name = name
        self.kind: SignalKind = kind
        self.init = init
        self.index = -1
        """Position in the sorted declaration; set when the trace starts."""

    def __repr__(self) -> str:
        return f"<Signal {self.scope}.{self.name} {self.kind}>"


Event = tuple[int, Signal, object]
"""What the recorder hands its sinks: ``(t_ns, signal, value)``, in time order. A signal
whose ``index`` is -1 was not declared (see :meth:`TraceRecorder.record`)."""


class TraceSink(Protocol):
    """Where events go. ``open`` gets every signal (sorted, indexed; ``signal.init`` is
    its value at ``start_ns``) before any batch; ``write`` gets the events in batches, in
    time order."""

    def open(self, signals: Sequence[Signal], start_ns: int, title: str) -> None: ...

    def write(self, events: Sequence[Event]) -> None: ...

    def close(self, end_ns: int) -> None: ...


def trace_text(value: object) -> str:
    """A value as trace text: ASCII (VCD readers decode strings as ASCII), floats short."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if text.isascii() else text.encode("ascii", "backslashreplace").decode()


def kind_of(value: object) -> SignalKind:
    """The kind of a signal first seen with ``value`` (one that was not declared)."""
    if isinstance(value, bool):
        return "wire"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    return "string"
