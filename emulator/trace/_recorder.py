"""The trace recorder: every interrupt, ISR, state change, I/O request and fault, in ns.

A :class:`TraceRecorder` watches a board and the firmware on it and turns what it sees
into *events* ``(t_ns, scope, signal, value)``; each ``(scope, signal)`` pair is one
declared :class:`Signal` (a variable of the waveform). Sinks (``_sinks.py``) write the
events out; an in-memory ring of the last ``ring_size`` events is always kept, for the
HIL harness's failure report (:meth:`TraceRecorder.tail`).

What is watched, and how — through the hooks each part offers; nothing in ``hal``,
``firmware``, the physics or the run is replaced or changed:

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
``io.imaging``              ``board.add_imaging_listener``: every ``board.submit`` and
                            the handle it returns: ``request`` (``job.page:submitted``,
                            ``...:imaging_started``, ``...:done|failed|cancelled``),
                            ``in_flight``, ``error``.
``scenario``                ``run.on_action``: ``action``, each scenario action a
                            :class:`PrintRun` applies.
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

import contextlib
import json
import math
from collections import deque
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Final

from emulator.trace._signals import (
    SIGNAL_KINDS,
    Event,
    Signal,
    SignalKind,
    TraceError,
    TraceSink,
    kind_of,
    trace_text,
)
from hal import (
    PRIORITY_LATE,
    Board,
    Crossing,
    DigitalInput,
    ImagePage,
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
    from emulator.run import Action, PrintRun
    from firmware import Printer, StatusEvent

DEFAULT_RING_SIZE: Final = 10_000
"""Events the recorder keeps in memory for :meth:`TraceRecorder.tail`."""

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
    return trace_text(value)


def _status_text(kind: str, detail: dict[str, Any]) -> str:
    if not detail:
        return kind
    return kind + "(" + ",".join(f"{k}={trace_text(v)}" for k, v in sorted(detail.items())) + ")"


def _action_text(action: Action) -> str:
    value = action.value
    if action.kind == "submit":
        pages, coverage = getattr(value, "pages", 0), getattr(value, "coverage_pct", 0.0)
        return f"submit:{pages}x{coverage:g}%"
    if value is True:
        return action.kind
    return f"{action.kind}:{trace_text(value)}"


class TraceRecorder:
    """See the module docstring. Attach, add sinks, :meth:`start`, run, :meth:`stop`."""

    def __init__(self, *, ring_size: int = DEFAULT_RING_SIZE) -> None:
        if ring_size < 0:
            raise ValueError(f"ring_size must be >= 0, got {ring_size}")
        self._signals: dict[tuple[str, str], Signal] = {}
        self._sinks: list[TraceSink] = []
        self._failed: list[TraceSink] = []
        self._write_error: str | None = None
        self._pending: list[Event] = []
        """Events not yet handed to the sinks (all of them until :meth:`start`)."""
        self._batch = _FOREVER
        self._flushed = 0
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._started = False
        self._closed = False
        """Stopped: nothing more is recorded (handles still in flight may call back)."""
        self._detach: list[Callable[[], None]] = []
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
        # the run
        self._action: Signal | None = None
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
        if kind not in SIGNAL_KINDS:
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
        self.declare("trace", "board", "string", trace_text(run.board_name))
        self.declare("trace", "seed", "integer", run.seed)
        self._title_parts.append(f"board {run.board_name}, seed {run.seed}")
        self._action = self.declare("scenario", "action", "string", "")
        run.on_action(self._on_action)
        self._detach.append(lambda: run.remove_action_listener(self._on_action))

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
            self.declare(scope, name, kind_of(value), value)
        self._detach.append(lambda: remove_probe(self._on_probe))

    def _attach_imaging(self, board: Board) -> None:
        self._request = self.declare("io.imaging", "request", "string", "")
        self._in_flight = self.declare("io.imaging", "in_flight", "integer", 0)
        self._io_error = self.declare("io.imaging", "error", "string", "")
        board.add_imaging_listener(self._on_submit)
        self._detach.append(lambda: board.remove_imaging_listener(self._on_submit))

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
            self._guarded(sink, sink.open, signals, self._start_ns, title)
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
            self._guarded(sink, sink.write, pending)

    def stop(self) -> None:
        """Detach from everything, hand over the last events and close the sinks (the VCD
        ends at the last instant the scheduler reached). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for detach in reversed(self._detach):
            detach()
        self._detach.clear()
        self.flush()
        if self._started:
            end_ns = max(self._last_ns, self._now())
            for sink in self._sinks:
                self._guarded(sink, sink.close, end_ns)
            for sink in self._failed:  # release the file; what it holds is lost anyway
                with contextlib.suppress(OSError):
                    sink.close(end_ns)
        if self._write_error is not None:
            raise TraceError(f"cannot write the trace: {self._write_error}")

    def _guarded(self, sink: TraceSink, use: Callable[..., None], *args: Any) -> None:
        # A full disk (or any write error) must not stop the traced run with a traceback
        # in the middle of a status listener: the sink is dropped, the run goes on, and
        # stop() reports the error as one line.
        if sink in self._failed:
            return
        try:
            use(*args)
        except OSError as e:
            self._failed.append(sink)
            self._write_error = self._write_error or (e.strerror or str(e))

    close = stop

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- recording -------------------------------------------------------------------

    def _now(self) -> int:
        return self._scheduler.now_ns if self._scheduler is not None else self._last_ns

    def _emit(self, t_ns: int, signal: Signal, value: object) -> None:
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
        self._emit(t_ns, Signal(scope, name, kind_of(value), None), value)  # index -1

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

    def _on_action(self, action: Action) -> None:
        assert self._action is not None
        self._emit(self._now(), self._action, _action_text(action))

    def _on_submit(self, page: ImagePage, handle: IoHandle) -> None:
        request, in_flight = self._request, self._in_flight
        assert request is not None and in_flight is not None
        label = f"{page.job}.{page.page}"
        t_ns = self._now()
        self._emit(t_ns, request, f"{label}:submitted")
        self._in_flight_count += 1
        self._emit(t_ns, in_flight, self._in_flight_count)

        # The handle outlives the trace when the run goes on after stop(): both callbacks
        # then record nothing.
        def on_event(_: IoHandle, event: IoEvent) -> None:
            if not self._closed:
                self._emit(event.t_ns, request, f"{label}:{event.kind}")

        def on_done(done: IoHandle) -> None:
            if self._closed:
                return
            now = self._now()
            self._emit(now, request, f"{label}:{done.state.value}")
            self._in_flight_count -= 1
            self._emit(now, in_flight, self._in_flight_count)
            if done.state is IoState.FAILED and self._io_error is not None:
                self._emit(now, self._io_error, f"{label}:{trace_text(done.error)}")

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
    return trace_text(value)


