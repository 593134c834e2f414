"""The trace files: the events as a VCD or as JSON Lines.

* :class:`VcdSink` — a VCD file (``pyvcd``, timescale 1 ns) for GTKWave or Surfer: a
  scope per model, per interrupt line and per active object; lines and sensors as
  wires, states and texts as strings, toner %, fuser °C and the tray's count as reals,
  counts as integers.
* :class:`JsonlSink` — the same events, one JSON object a line, keys in the order
  ``t_ns, scope, signal, value``. It opens with the value of every signal at the start
  (what a VCD's ``$dumpvars`` holds; ``null`` when unknown), then one line per event.

The VCD keeps one value per signal at the start and drops events that do not change a
value; the JSONL keeps them all. Neither holds a date or any wall-clock field, so the
same events give the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final

from emulator.trace._signals import Event, Signal, SignalKind, TraceError, TraceSink, trace_text

_VERSION: Final = "printer-emu trace 1"


def _json_value(value: object) -> str:
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return json.dumps(trace_text(value))


class _Output:
    """A text file the sink owns (opened from a path) or borrows (given open)."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, str | Path):
            try:
                # ASCII (VCD readers decode strings as ASCII; JSON is escaped anyway), with
                # any other character written as a \x/\u escape rather than failing, and
                # newline="\n": the same bytes on every platform.
                self.file: IO[str] = open(  # noqa: SIM115
                    target, "w", encoding="ascii", errors="backslashreplace", newline="\n")
            except OSError as e:
                raise TraceError(f"cannot write trace {target}: {e.strerror}") from None
            self.owned = True
        else:
            self.file = target
            self.owned = False

    def close(self) -> None:
        if self.owned:
            self.file.close()
        else:
            self.file.flush()


class JsonlSink:
    """The events as JSON Lines: ``{"t_ns": ..., "scope": ..., "signal": ..., "value": ...}``."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        self._out = _Output(target)
        self._prefix: list[str] = []

    def open(self, signals: Sequence[Signal], start_ns: int, title: str) -> None:
        self._prefix = [self._head(s) for s in signals]
        self.write([(start_ns, s, s.init) for s in signals])

    @staticmethod
    def _head(signal: Signal) -> str:
        return f',"scope":{json.dumps(signal.scope)},"signal":{json.dumps(signal.name)},"value":'

    def write(self, events: Sequence[Event]) -> None:
        prefix, head, value_of = self._prefix, self._head, _json_value
        self._out.file.write("".join([
            f'{{"t_ns":{t_ns}{prefix[signal.index] if signal.index >= 0 else head(signal)}'
            f'{value_of(value)}}}\n'
            for t_ns, signal, value in events
        ]))

    def close(self, end_ns: int) -> None:
        self._out.close()


def _vcd_wire(value: object) -> object:
    return "x" if value is None else bool(value)


def _vcd_integer(value: object) -> object:
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return round(value)
    return "x"


def _vcd_real(value: object) -> object:
    return value if isinstance(value, int | float) else math.nan


def _vcd_string(value: object) -> object:
    return "" if value is None else trace_text(value)


_VCD_CONVERT: Final[dict[SignalKind, Callable[[object], object]]] = {
    "wire": _vcd_wire,
    "integer": _vcd_integer,
    "real": _vcd_real,
    "string": _vcd_string,
}
_VCD_TYPE: Final[dict[SignalKind, tuple[str, int | None]]] = {
    "wire": ("wire", 1),
    "integer": ("integer", 32),
    "real": ("real", None),
    "string": ("string", None),
}


class VcdSink:
    """The events as a Value Change Dump (``pyvcd``), timescale 1 ns."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        self._out = _Output(target)
        self._writer: Any = None
        self._vars: list[Any] = []
        self._convert: list[Callable[[object], object]] = []
        self._undeclared: Any = None

    def open(self, signals: Sequence[Signal], start_ns: int, title: str) -> None:
        from vcd import VCDWriter

        writer = VCDWriter(self._out.file, timescale="1 ns", date="", version=_VERSION,
                           comment=title, init_timestamp=start_ns)
        self._writer = writer
        for signal in signals:
            var_type, size = _VCD_TYPE[signal.kind]
            convert = _VCD_CONVERT[signal.kind]
            init: Any = convert(signal.init)
            if signal.kind == "real" and signal.init is None:
                init = 0.0
            var = writer.register_var(signal.scope, signal.name, var_type, size=size, init=init)
            self._vars.append(var)
            self._convert.append(convert)
            if (signal.scope, signal.name) == ("trace", "undeclared"):
                self._undeclared = var

    def write(self, events: Sequence[Event]) -> None:
        change, variables = self._writer.change, self._vars
        for t_ns, signal, value in events:
            i = signal.index
            if i < 0:
                if self._undeclared is not None:
                    change(self._undeclared, t_ns,
                           trace_text(f"{signal.scope}.{signal.name}={trace_text(value)}"))
                continue
            try:
                change(variables[i], t_ns, value)
            except ValueError:
                # Values recorded here have the signal's type; one that has not is coerced.
                change(variables[i], t_ns, self._convert[i](value))

    def close(self, end_ns: int) -> None:
        if self._writer is not None:
            self._writer.close(end_ns)
        self._out.close()


def open_sink(path: str | Path) -> TraceSink:
    """A sink for ``path`` by its suffix (``.vcd`` or ``.jsonl``). Raises TraceError."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".vcd":
        return VcdSink(p)
    if suffix == ".jsonl":
        return JsonlSink(p)
    raise TraceError(f"a trace file ends in .vcd or .jsonl, got {str(path)!r}")
