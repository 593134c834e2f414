"""Tracing a run: every interrupt, ISR, state change, I/O request and fault, in nanoseconds.

A :class:`TraceRecorder` watches a board and the firmware on it and turns what it sees
into *events* ``(t_ns, scope, signal, value)``; each ``(scope, signal)`` pair is one
declared :class:`Signal` (a variable of the waveform). Sinks write the events out:

* :class:`VcdSink` — a VCD file (``pyvcd``, timescale 1 ns) for GTKWave or Surfer: a
  scope per model, per interrupt line and per active object; lines and sensors as
  wires, states and texts as strings, toner %, fuser °C and the tray's count as reals,
  counts as integers.
* :class:`JsonlSink` — the same events, one JSON object a line, keys in the order
  ``t_ns, scope, signal, value``. It opens with the value of every signal at the start
  (what a VCD's ``$dumpvars`` holds; ``null`` when unknown), then one line per event.
  The VCD keeps one value per signal at the start and drops events that do not change
  a value; the JSONL keeps them all.
* an in-memory ring of the last ``ring_size`` events, always kept, for the HIL harness's
  failure report (:meth:`TraceRecorder.tail`).

What is watched, and how (nothing in ``hal``, ``firmware`` or the physics is changed):

==========================  ==============================================================
``irq.<line>``              ``board.irq.add_listener``: ``level`` (wire: the level the
                            raise carried; a comparator's crossing ``above`` is 1, a
                            link ``up`` is 1), ``raised`` and ``isr`` (counts: each raise,
                            each ISR run), ``value`` (string: what a comparator or link
                            raise carried). ``irq``/``spurious``: raises with no ISR.
``board``, ``paper_path``,  the emulated board's probe (``add_probe``): outputs, faults
``fuser``, ``toner``,       (``board``/``fault``), resets, sensors, counts, the fuser's
``tray``, ``panel``         curve, the toner level, the display.
``firmware.<object>``       ``printer.subscribe`` (survives resets): ``state``.
``firmware``                ``status`` (every other status event, as ``kind(k=v,...)``),
                            ``pages_delivered``, ``boots``.
``io.imaging``              every ``board.submit`` (the recorder wraps the board
                            instance's ``submit`` while attached and watches the handle
                            it returns): ``request`` (``job.page:submitted``,
                            ``...:imaging_started``, ``...:done|failed|cancelled``),
                            ``in_flight``, ``error``.
``scenario``                ``action``: each scenario action a :class:`PrintRun` applies
                            (its instance's ``apply`` is wrapped the same way).
``trace``                   ``board``, ``seed`` (what the run was) and ``undeclared``
                            (``scope.signal=value`` of events for undeclared signals: the
                            VCD cannot declare a variable once it has started).
anything else               :meth:`TraceRecorder.record` for signals declared with
                            :meth:`TraceRecorder.declare` before :meth:`~TraceRecorder.start`
                            (serial frames: ``link``/``tx``, ``link``/``rx``).
==========================  ==============================================================

Time is the board scheduler's ``now_ns``: virtual time on the emulated board, wall time
on a serial one. Events never go back in time (an earlier stamp is clamped to the last
one and counted in :attr:`TraceRecorder.clamped`).

Determinism: the variables are declared sorted by ``(scope, signal)``, the VCD header
carries no date, the JSONL no wall-clock field, and every value comes from the run; so
the same board, jobs, scenario and seed give byte-identical files.

After a board reset the new firmware's objects start in their initial states without
publishing them: at the ``boot`` status event the recorder sets every ``state`` back to
its class's ``INITIAL`` and reads the live states once more when the instant is over
(one ``PRIORITY_LATE`` callback, which reads and changes nothing in the run).

Cost: nothing at all unless a recorder is attached; the physics models build no probe
event while no probe is attached. Attached, an event is one tuple appended to a list;
sinks get them in batches of :data:`_BATCH` (and at :meth:`TraceRecorder.flush` and
:meth:`~TraceRecorder.stop`). Call everything on the scheduler's thread.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal, Protocol

from hal import (
    PRIORITY_LATE,
    Board,
    Crossing,
    DigitalInput,
    IoEvent,
    IoHandle,
    IoState,
    IrqEvent,
    LinkChange,
    Output,
    Scheduler,
    WindowCrossing,
)

if TYPE_CHECKING:
    from emulator.run._print_run import PrintRun
    from emulator.run._scenario import Action
    from firmware import Printer, StatusEvent

__all__ = [
    "DEFAULT_RING_SIZE",
    "TRACE_SUFFIXES",
    "Event",
    "JsonlSink",
    "Signal",
    "SignalKind",
    "TraceError",
    "TraceEvent",
    "TraceRecorder",
    "TraceSink",
    "VcdSink",
    "add_trace_option",
    "open_sink",
    "read_trace",
    "start_board_trace",
    "start_trace",
    "trace_path",
    "trace_run",
]

SignalKind = Literal["wire", "integer", "real", "string"]

DEFAULT_RING_SIZE: Final = 10_000
"""Events the recorder keeps in memory for :meth:`TraceRecorder.tail`."""

TRACE_SUFFIXES: Final = (".vcd", ".jsonl")

_VERSION: Final = "printer-emu trace 1"
_BATCH: Final = 4096
"""Events handed to the sinks at a time."""
_FOREVER: Final = 1 << 62

_DIGITAL_LINES: Final = frozenset(d.value for d in DigitalInput)

# What the emulated board's probe reports beyond its initial dump, and the kind of every
# signal it reports: the VCD has to declare them before the first change.
_BOARD_SIGNALS: Final[tuple[tuple[str, str, SignalKind], ...]] = (
    ("board", "fault", "string"),
    ("board", "reset", "string"),
    *(("board", str(output), "wire") for output in Output),
    ("fuser", "heating", "wire"),
    ("fuser", "temp_c", "real"),
    ("panel", "button_cancel", "wire"),
    ("panel", "button_continue", "wire"),
    ("panel", "cover_open", "wire"),
    ("panel", "row0", "string"),
    ("panel", "row1", "string"),
    ("paper_path", "delivered", "integer"),
    ("paper_path", "exit_sensor", "wire"),
    ("paper_path", "feed_sensor", "wire"),
    ("paper_path", "jammed", "integer"),
    ("paper_path", "picked", "integer"),
    ("paper_path", "removed", "integer"),
    ("toner", "level_pct", "real"),
    ("tray", "paper_present", "wire"),
    ("tray", "sheets", "real"),
)
_BOARD_INITIAL: Final[dict[tuple[str, str], object]] = {
    ("board", "fault"): "",
    ("board", "reset"): "",
    ("paper_path", "jammed"): 0,
}


class TraceError(Exception):
    """A trace that cannot be made (a bad path, misuse of the recorder): one line."""


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
        """Position in the sorted declaration; set by :meth:`TraceRecorder.start`."""

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


# -- sinks ----------------------------------------------------------------------------


def _text(value: object) -> str:
    """A value as trace text: ASCII (VCD readers decode strings as ASCII), floats short."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if text.isascii() else text.encode("ascii", "backslashreplace").decode()


def _json_value(value: object) -> str:
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return json.dumps(_text(value))


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
    return "" if value is None else _text(value)


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
                           _text(f"{signal.scope}.{signal.name}={_text(value)}"))
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


# -- the recorder ---------------------------------------------------------------------


class _IrqSignals:
    __slots__ = ("isr", "isr_count", "level", "raised", "raised_count", "value")

    def __init__(self, level: Signal, raised: Signal, isr: Signal, value: Signal | None):
        self.level = level
        self.raised = raised
        self.isr = isr
        self.value = value
        self.raised_count = 0
        self.isr_count = 0


def _irq_level(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, WindowCrossing):
        return value.crossing is Crossing.ABOVE
    if isinstance(value, LinkChange):
        return value.up
    return None


def _irq_value(value: object) -> str:
    if isinstance(value, WindowCrossing):
        return f"{value.crossing.value}:{value.reading:.6g}"
    if isinstance(value, LinkChange):
        return ("up" if value.up else "down") + (f":{value.reason}" if value.reason else "")
    return _text(value)


def _status_text(kind: str, detail: dict[str, Any]) -> str:
    if not detail:
        return kind
    return kind + "(" + ",".join(f"{k}={_text(v)}" for k, v in sorted(detail.items())) + ")"


def _request_label(request: object) -> str:
    job, page = getattr(request, "job", None), getattr(request, "page", None)
    if isinstance(job, int) and isinstance(page, int):
        return f"{job}.{page}"
    return _text(request)


def _action_text(action: Action) -> str:
    value = action.value
    if action.kind == "submit":
        pages, coverage = getattr(value, "pages", 0), getattr(value, "coverage_pct", 0.0)
        return f"submit:{pages}x{coverage:g}%"
    if value is True:
        return action.kind
    return f"{action.kind}:{_text(value)}"


def _kind_of(value: object) -> SignalKind:
    if isinstance(value, bool):
        return "wire"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    return "string"


class TraceRecorder:
    """See the module docstring. Attach, add sinks, :meth:`start`, run, :meth:`stop`."""

    def __init__(self, *, ring_size: int = DEFAULT_RING_SIZE) -> None:
        if ring_size < 0:
            raise ValueError(f"ring_size must be >= 0, got {ring_size}")
        self._signals: dict[tuple[str, str], Signal] = {}
        self._sinks: list[TraceSink] = []
        self._pending: list[Event] = []
        """Events not yet handed to the sinks (all of them until :meth:`start`)."""
        self._batch = _FOREVER
        self._flushed = 0
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._started = False
        self._closed = False
        self._detach: list[Callable[[], None]] = []
        self._emit: Callable[[int, Signal, object], None] = self._emit_active
        """Records one event (:meth:`stop` swaps in a no-op: handles still in flight and
        timers may call back after it)."""
        self._scheduler: Scheduler | None = None
        self._start_ns = 0
        self._last_ns = 0
        self._title_parts: list[str] = []
        self.clamped = 0
        """Events stamped earlier than the one before (recorded at the later time)."""
        self.undeclared = 0
        """Events for signals that were not declared."""
        # irq
        self._irq_lines: dict[int, _IrqSignals] = {}
        self._spurious: Signal | None = None
        self._spurious_count = 0
        # firmware
        self._printer: Printer | None = None
        self._state_signals: dict[str, Signal] = {}
        self._state_now: dict[str, str] = {}
        self._initial_states: dict[str, str] = {}
        self._status: Signal | None = None
        self._pages: Signal | None = None
        self._pages_count = 0
        self._boots: Signal | None = None
        self._boots_count = 0
        # io
        self._request: Signal | None = None
        self._in_flight: Signal | None = None
        self._io_error: Signal | None = None
        self._in_flight_count = 0
        # probe
        self._probe_initial: dict[tuple[str, str], object] | None = None
        self.declare("trace", "undeclared", "string", "")

    # -- declaring -----------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    @property
    def events(self) -> int:
        """Events recorded so far (initial values excluded)."""
        return self._flushed + len(self._pending)

    def declare(self, scope: str, name: str, kind: SignalKind, init: object = None) -> Signal:
        """Declare a signal (before :meth:`start`); declaring it again returns the same
        signal, with ``init`` if it had none."""
        if self.started:
            raise TraceError(f"cannot declare {scope}.{name}: the trace has started")
        if kind not in _VCD_TYPE:
            raise ValueError(f"unknown signal kind {kind!r}")
        key = (scope, name)
        signal = self._signals.get(key)
        if signal is None:
            signal = self._signals[key] = Signal(scope, name, kind, init)
        elif signal.init is None:
            signal.init = init
        return signal

    @property
    def signals(self) -> list[Signal]:
        """Every declared signal, sorted by ``(scope, name)``."""
        return sorted(self._signals.values(), key=lambda s: (s.scope, s.name))

    def add_sink(self, sink: TraceSink) -> None:
        if self.started:
            raise TraceError("add sinks before the trace starts")
        self._sinks.append(sink)

    def _bind(self, scheduler: Scheduler) -> None:
        if self.started:
            raise TraceError("attach before the trace starts")
        if self._scheduler is None:
            self._scheduler = scheduler
            self._start_ns = self._last_ns = scheduler.now_ns
        elif self._scheduler is not scheduler:
            raise TraceError("a recorder follows one scheduler")

    # -- attaching -----------------------------------------------------------------

    def attach_run(self, run: PrintRun) -> None:
        """Watch everything a :class:`PrintRun` does: its board, its printer and the
        scenario actions it applies."""
        self.attach_board(run.board)
        self.attach_printer(run.printer)
        self.declare("trace", "board", "string", _text(run.board_name))
        self.declare("trace", "seed", "integer", run.seed)
        self._title_parts.append(f"board {run.board_name}, seed {run.seed}")
        signal = self.declare("scenario", "action", "string", "")
        original = run.apply

        def apply(action: Action) -> None:
            self._emit(self._now(), signal, _action_text(action))
            original(action)

        self._wrap(run, "apply", apply)

    def attach_board(self, board: Board) -> None:
        """Watch a board: its interrupt lines, its probe (emulated boards), and the
        imaging requests made of it."""
        self._bind(board.scheduler)
        self._attach_irq(board)
        self._attach_probe(board)
        self._attach_imaging(board)

    def attach_printer(self, printer: Printer) -> None:
        """Watch the firmware: every active object's state and every status event."""
        self._bind(printer.board.scheduler)
        self._printer = printer
        states = printer.states()
        for ao in sorted(printer.firmware.kernel.objects, key=lambda a: a.NAME):
            self._state_signals[ao.NAME] = self.declare(
                f"firmware.{ao.NAME}", "state", "string", states[ao.NAME])
            self._state_now[ao.NAME] = states[ao.NAME]
            self._initial_states[ao.NAME] = type(ao).INITIAL
        self._status = self.declare("firmware", "status", "string", "")
        self._pages = self.declare("firmware", "pages_delivered", "integer", 0)
        self._boots_count = printer.boots
        self._boots = self.declare("firmware", "boots", "integer", printer.boots)
        printer.subscribe(self._on_status)
        self._detach.append(lambda: printer.unsubscribe(self._on_status))

    def _attach_irq(self, board: Board) -> None:
        irq = board.irq
        for spec in sorted(irq.lines, key=lambda s: s.name):
            scope = f"irq.{spec.name}"
            digital = spec.name in _DIGITAL_LINES
            if digital:
                init: bool | None = board.read_input(DigitalInput(spec.name))
            else:
                init = True if spec.name == "link" else None
            self._irq_lines[spec.number] = _IrqSignals(
                self.declare(scope, "level", "wire", init),
                self.declare(scope, "raised", "integer", 0),
                self.declare(scope, "isr", "integer", 0),
                None if digital else self.declare(scope, "value", "string", ""),
            )
        self._spurious = self.declare("irq", "spurious", "integer", 0)
        irq.add_listener(self._on_irq)
        self._detach.append(lambda: irq.remove_listener(self._on_irq))

    def _attach_probe(self, board: Board) -> None:
        add_probe = getattr(board, "add_probe", None)
        remove_probe = getattr(board, "remove_probe", None)
        if add_probe is None or remove_probe is None:
            return
        initial: dict[tuple[str, str], object] = dict(_BOARD_INITIAL)
        self._probe_initial = initial
        add_probe(self._on_probe)  # calls back at once with every signal's value now
        self._probe_initial = None
        for scope, name, kind in _BOARD_SIGNALS:
            self.declare(scope, name, kind, initial.pop((scope, name), None))
        for (scope, name), value in sorted(initial.items()):
            self.declare(scope, name, _kind_of(value), value)
        self._detach.append(lambda: remove_probe(self._on_probe))

    def _attach_imaging(self, board: Board) -> None:
        original = board.submit

        def submit(request: Any) -> IoHandle:
            handle = original(request)
            self._on_submit(handle)
            return handle

        if not self._wrap(board, "submit", submit):
            return
        self._request = self.declare("io.imaging", "request", "string", "")
        self._in_flight = self.declare("io.imaging", "in_flight", "integer", 0)
        self._io_error = self.declare("io.imaging", "error", "string", "")

    def _wrap(self, target: object, name: str, wrapper: Callable[..., Any]) -> bool:
        """Put ``wrapper`` on ``target``'s instance for ``name`` until :meth:`stop`."""
        try:
            own = vars(target)
        except TypeError:
            return False
        had, before = name in own, own.get(name)
        setattr(target, name, wrapper)

        def restore() -> None:
            if had:
                setattr(target, name, before)
            else:
                delattr(target, name)

        self._detach.append(restore)
        return True

    # -- starting and stopping -------------------------------------------------------

    def start(self) -> None:
        """Open the sinks with every declared signal, write the initial values, then the
        events seen since attaching; from now on events reach the sinks in batches."""
        if self._started:
            raise TraceError("the trace has already started")
        if self._closed:
            raise TraceError("the trace has been stopped")
        self._started = True
        signals = self.signals
        for i, signal in enumerate(signals):
            signal.index = i
        title = "printer-emu trace" + (f": {'; '.join(self._title_parts)}"
                                      if self._title_parts else "")
        for sink in self._sinks:
            sink.open(signals, self._start_ns, title)
        self._batch = _BATCH
        self.flush()

    def flush(self) -> None:
        """Hand the events recorded so far to the sinks (done every :data:`_BATCH`
        events, and by :meth:`stop`)."""
        pending = self._pending
        if not pending or not self._started:
            return
        self._pending = []
        self._flushed += len(pending)
        self._ring.extend(pending)
        for sink in self._sinks:
            sink.write(pending)

    def stop(self) -> None:
        """Detach from everything, hand over the last events and close the sinks (the VCD
        ends at the last instant the scheduler reached). Idempotent."""
        if self._closed:
            return
        self._emit = self._emit_stopped
        for detach in reversed(self._detach):
            detach()
        self._detach.clear()
        self.flush()
        self._closed = True
        if self._started:
            end_ns = max(self._last_ns, self._now())
            for sink in self._sinks:
                sink.close(end_ns)

    close = stop

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- recording -------------------------------------------------------------------

    def _now(self) -> int:
        return self._scheduler.now_ns if self._scheduler is not None else self._last_ns

    def _emit_active(self, t_ns: int, signal: Signal, value: object) -> None:
        # The hot path: one append, a batch handed over now and then.
        if t_ns < self._last_ns:
            t_ns = self._last_ns
            self.clamped += 1
        else:
            self._last_ns = t_ns
        pending = self._pending
        pending.append((t_ns, signal, value))
        if len(pending) >= self._batch:
            self.flush()

    def _emit_stopped(self, t_ns: int, signal: Signal, value: object) -> None:
        return None

    def record(self, t_ns: int | None, scope: str, name: str, value: object) -> None:
        """Record ``value`` for a declared signal at ``t_ns`` (``None``: now). For the
        serial link's frames and other sources outside the board and the firmware."""
        if self._closed:
            return
        signal = self._signals.get((scope, name))
        t = self._now() if t_ns is None else t_ns
        if signal is None:
            self._record_undeclared(t, scope, name, value)
        else:
            self._emit(t, signal, value)

    def _record_undeclared(self, t_ns: int, scope: str, name: str, value: object) -> None:
        if self._closed:
            return
        self.undeclared += 1
        self._emit(t_ns, Signal(scope, name, _kind_of(value), None), value)  # index -1

    # -- what the listeners see --------------------------------------------------------

    def _on_irq(self, kind: str, event: IrqEvent) -> None:
        line = self._irq_lines.get(event.line)
        if line is None:
            return
        t_ns, emit = event.t_ns, self._emit
        if kind == "isr":
            line.isr_count += 1
            emit(t_ns, line.isr, line.isr_count)
        elif kind == "raise":
            value = event.value
            level = value if value.__class__ is bool else _irq_level(value)
            if level is not None:
                emit(t_ns, line.level, level)
            line.raised_count += 1
            emit(t_ns, line.raised, line.raised_count)
            if line.value is not None:
                emit(t_ns, line.value, _irq_value(value))
        elif self._spurious is not None:
            self._spurious_count += 1
            emit(t_ns, self._spurious, self._spurious_count)

    def _on_probe(self, t_ns: int, scope: str, name: str, value: object) -> None:
        initial = self._probe_initial
        if initial is not None:
            initial[(scope, name)] = value
            return
        signal = self._signals.get((scope, name))
        if signal is None:
            self._record_undeclared(t_ns, scope, name, value)
        else:
            self._emit(t_ns, signal, value)

    def _on_status(self, event: StatusEvent) -> None:
        kind, t_ns = event.kind, event.t_ns
        if kind == "state":
            state = str(event.detail.get("state"))
            signal = self._state_signals.get(event.source)
            if signal is None:
                self._record_undeclared(t_ns, f"firmware.{event.source}", "state", state)
                return
            self._state_now[event.source] = state
            self._emit(t_ns, signal, state)
            return
        assert self._status is not None
        self._emit(t_ns, self._status, _status_text(kind, event.detail))
        if kind == "page_delivered":
            self._pages_count += 1
            self._emit(t_ns, self._pages, self._pages_count)  # type: ignore[arg-type]
        elif kind == "boot":
            # A new firmware after a reset: its objects start in their initial states
            # without publishing them, and its boot may set one directly (a sheet left
            # in the path): read them back once the instant is over.
            self._boots_count += 1
            self._emit(t_ns, self._boots, self._boots_count)  # type: ignore[arg-type]
            for name, initial in self._initial_states.items():
                if self._state_now.get(name) != initial:
                    self._state_now[name] = initial
                    self._emit(t_ns, self._state_signals[name], initial)
            if self._scheduler is not None:
                self._scheduler.call_soon(self._resync_states, PRIORITY_LATE)

    def _resync_states(self) -> None:
        if self._closed or self._printer is None:
            return
        t_ns = self._now()
        for name, state in self._printer.states().items():
            signal = self._state_signals.get(name)
            if signal is not None and self._state_now.get(name) != state:
                self._state_now[name] = state
                self._emit(t_ns, signal, state)

    def _on_submit(self, handle: IoHandle) -> None:
        request, in_flight = self._request, self._in_flight
        assert request is not None and in_flight is not None
        label = _request_label(handle.request)
        t_ns = self._now()
        self._emit(t_ns, request, f"{label}:submitted")
        self._in_flight_count += 1
        self._emit(t_ns, in_flight, self._in_flight_count)

        def on_event(_: IoHandle, event: IoEvent) -> None:
            self._emit(event.t_ns, request, f"{label}:{event.kind}")

        def on_done(done: IoHandle) -> None:
            now = self._now()
            self._emit(now, request, f"{label}:{done.state.value}")
            self._in_flight_count -= 1
            self._emit(now, in_flight, self._in_flight_count)
            if done.state is IoState.FAILED and self._io_error is not None:
                self._emit(now, self._io_error, f"{label}:{_text(done.error)}")

        handle.on_event(on_event)
        handle.on_done(on_done)

    # -- the ring ----------------------------------------------------------------------

    def tail(self, n: int | None = None) -> list[dict[str, Any]]:
        """The last ``n`` events (all those kept when ``None``), oldest first, as
        ``{"t_ns", "scope", "signal", "value"}`` dicts with JSON-able values."""
        events = [*self._ring, *self._pending]
        kept = self._ring.maxlen if self._ring.maxlen is not None else len(events)
        count = min(kept, len(events)) if n is None else max(0, min(n, kept, len(events)))
        return [
            {"t_ns": t, "scope": signal.scope, "signal": signal.name, "value": _plain(value)}
            for t, signal, value in events[len(events) - count:]
        ]

    def write_tail(self, file: IO[str], n: int | None = None) -> int:
        """Write :meth:`tail` as JSON Lines (a failure report's attachment); returns
        the number of lines written."""
        lines = self.tail(n)
        for event in lines:
            file.write(json.dumps(event) + "\n")
        return len(lines)


def _plain(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return _text(value)


# -- the command line -----------------------------------------------------------------


def trace_path(text: str) -> Path:
    """``--trace`` argument type: a path ending in .vcd or .jsonl in a directory that
    exists (argparse turns the error into one usage line)."""
    path = Path(text)
    if path.suffix.lower() not in TRACE_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"a trace file ends in .vcd or .jsonl, got {text!r}")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"no directory {str(parent)!r} for {text!r}")
    return path


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--trace FILE`` (``.vcd`` or ``.jsonl``) to a subcommand's parser."""
    parser.add_argument(
        "--trace", type=trace_path, metavar="FILE", default=None,
        help="record the run: FILE.vcd (waveforms for GTKWave/Surfer) or FILE.jsonl "
             "(one event a line)")


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
    however it ends."""
    if path is None:
        yield None
        return
    recorder = start_trace(run, path)
    try:
        yield recorder
    finally:
        recorder.stop()


# -- reading a trace back ---------------------------------------------------------------

TraceEvent = tuple[int, str, str, object]
"""``(t_ns, scope, signal, value)``, as recorded."""

_VCD_ESCAPE = re.compile(r"\\(\\|t|n|r|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")
_VCD_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def _vcd_unescape(text: str) -> str:
    return _VCD_ESCAPE.sub(
        lambda m: _VCD_UNESCAPE.get(m.group(1)) or chr(int(m.group(1)[1:], 16)), text)


def read_trace(path: str | Path) -> list[TraceEvent]:
    """The events of a ``.jsonl`` or ``.vcd`` trace, in file order. A VCD gives the
    initial values and then only the changes. Raises TraceError for an unreadable file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in TRACE_SUFFIXES:
        raise TraceError(f"a trace file ends in .vcd or .jsonl, got {str(path)!r}")
    try:
        if suffix == ".jsonl":
            return _read_jsonl(p)
        return _read_vcd(p)
    except OSError as e:
        raise TraceError(f"cannot read trace {path}: {e.strerror}") from None


def _read_jsonl(path: Path) -> list[TraceEvent]:
    events: list[TraceEvent] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                events.append((int(obj["t_ns"]), str(obj["scope"]), str(obj["signal"]),
                               obj["value"]))
            except (ValueError, KeyError, TypeError):
                raise TraceError(f"{path.name}:{number}: not a trace event") from None
    return events


def _read_vcd(path: Path) -> list[TraceEvent]:
    from vcd.reader import TokenKind, VCDParseError, tokenize

    names: dict[str, list[tuple[str, str]]] = {}
    scopes: list[str] = []
    events: list[TraceEvent] = []
    t_ns = 0
    with path.open("rb") as f:
        try:
            for token in tokenize(f):
                kind = token.kind
                if kind is TokenKind.CHANGE_TIME:
                    t_ns = token.data  # type: ignore[assignment]
                    continue
                if kind is TokenKind.SCOPE:
                    scopes.append(token.scope.ident)
                elif kind is TokenKind.UPSCOPE:
                    scopes.pop()
                elif kind is TokenKind.VAR:
                    var = token.var
                    names.setdefault(var.id_code, []).append((".".join(scopes), var.reference))
                value: object
                if kind is TokenKind.CHANGE_SCALAR:
                    ident, raw = token.scalar_change
                    value = {"1": True, "0": False}.get(raw)
                elif kind is TokenKind.CHANGE_VECTOR:
                    ident, vector = token.vector_change
                    value = vector if isinstance(vector, int) else None
                elif kind is TokenKind.CHANGE_REAL:
                    ident, value = token.real_change
                elif kind is TokenKind.CHANGE_STRING:
                    ident, text = token.string_change
                    value = _vcd_unescape(text)
                else:
                    continue
                for scope, name in names.get(ident, ()):
                    events.append((t_ns, scope, name, value))
        except VCDParseError as e:
            raise TraceError(f"{path.name}: not a VCD file: {e}") from None
    return events
