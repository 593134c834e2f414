"""The serial-attached board: :class:`hal.Board` over the wire protocol, on any pyserial URL.

``SerialBoard(url, config)`` opens ``url`` with :func:`serial.serial_for_url` (a device
path, ``socket://host:port``, ``rfc2217://host:port``, ``spy://...``), brings the link up
(HELLO), reads everything the board holds (``board.snapshot``) and returns a board the
firmware runs on exactly as it runs on the emulated one. The command and event
vocabulary is docs/board-commands.md; the link is docs/protocol.md. The line, the link
and the requests are :class:`~hal.serial._host_link.HostLink`'s (a reader thread, and
everything else on the scheduler's thread, which runs on a :class:`WallClock`, made for
you when no scheduler is given).

The Board contract over a line
------------------------------
* Inputs and analog readings are **cached**: from ``board.snapshot`` (at every
  (re)connection), from ``input`` and ``window`` events, and from an ``analog.read``
  poll (one channel every ``analog_poll_s``, in turn; both at once after a simulation
  command that changes a reading). Reads never touch the line.
* ``set_output``, ``pulse_pickup``, ``set_window``, ``show`` and ``kick_watchdog`` are
  fire-and-forget requests. A device's refusal of one of them is a bug (the firmware
  sent something the vocabulary does not allow): it is logged at ERROR, counted in
  :attr:`SerialBoard.stats` and kept in :attr:`SerialBoard.last_error`; with
  ``strict=True`` it is raised out of the scheduler's run.
* The board's clock is the device's as its events and ``board.clock`` answers tell it
  (:mod:`hal.serial._device_clock`); edges and crossings carry its stamps. Commands
  cross the line, so ``"remote"`` is always in ``capabilities``.
* ``submit`` returns an :class:`IoHandle` at once; ``imaging`` events (matched by the
  host-chosen ``handle``) post ``imaging_started``, complete or fail it
  (:mod:`hal.serial._remote_imaging`).
* ``regulate`` sends ``output.regulate`` to a device that announces ``"regulator"``
  (then it is in ``capabilities``); the regulation is part of the firmware's state, sent
  again after a resync (the device's safe state ended it), and ended by ``set_output``
  of its output, which then always goes out. While it holds, :meth:`output` is the
  state the last snapshot reported.
* ``faults`` sends ``sim.*`` commands (:mod:`hal.serial._sim_faults`), only when the
  device's HELLO announces ``"sim"`` (then ``"faults"`` is in ``capabilities``); while
  the link is down they wait for it.
* :meth:`query` is a blocking request for tools and tests (it runs the scheduler until
  the answer comes); :meth:`observe` reads ``sim.observe``; :meth:`power_cycle` gives a
  test a fresh device.

Link loss, reconnection and device reset
----------------------------------------
While the link is down, requests in flight fail, the firmware's commands are not sent
(their state is kept) and the ``link`` line is raised with ``LinkChange(up=False)``.
When it comes back the board is synchronised as :mod:`hal.serial._resync` says (a
resync, then ``LinkChange(up=True)``; or a board reset, as the emulated board's watchdog
does: handles fail, outputs read off, windows disarmed, ``irq.reset()``, ``reset_cause``
set, then the reset handler runs and the firmware boots again).

Errors (all :class:`~hal.serial.PrinterLinkError`): :class:`PortUnavailable`,
:class:`NoDeviceAnswer`, :class:`BoardMismatch` (the device is another board than the
board file), the :class:`IncompatiblePeer` family for a HELLO we cannot talk to, and the
:class:`DeviceRejected` family for ERROR answers.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from boards import BoardConfig, BoardFileError, load_board
from hal import (
    ANALOG_IRQ_LINE,
    DISPLAY_COLUMNS,
    AnalogChannel,
    BoardBase,
    Crossing,
    DigitalInput,
    FaultInjector,
    ImagePage,
    InterruptController,
    IoHandle,
    LinkChange,
    Output,
    ResetCause,
    ResetHandler,
    Scheduler,
    Timer,
    WallClock,
    WindowCrossing,
    irq_lines_of,
)
from hal.serial._analog_poll import AnalogPoll
from hal.serial._device_clock import DeviceClock
from hal.serial._errors import (
    BoardMismatch,
    DeviceRejected,
    LinkFailure,
    LinkTimeout,
    MalformedPayload,
    NotSupported,
    PrinterLinkError,
    UnknownCommand,
)
from hal.serial._frames import Role
from hal.serial._host_link import HostLink, TraceHook, ignore_error
from hal.serial._link import LinkEndpoint, LinkEstablished, LinkLost, LinkState
from hal.serial._payloads import Event, Hello
from hal.serial._remote_imaging import RemoteImaging
from hal.serial._resync import (
    Snapshot,
    SyncKind,
    parse_snapshot,
    plan_resync,
    reboot_cause,
    regulate_args,
    reset_cause_of,
    settle_imaging,
    sync_kind,
)
from hal.serial._sim_faults import SIM_CHANGES_READINGS, SimFaults
from hal.serial._timings import host_link_options
from hal.serial._transport import PortTransport, Transport

__all__ = ["EventListener", "SerialBoard"]

log = logging.getLogger("printer_emu.serial_board")

_MS = 1_000_000
_S = 1_000_000_000

EventListener = Callable[[Event, int], None]
"""``listener(event, host_t_ns)`` for every device EVENT, as it arrives."""

_SNAPSHOT_RETRY_NS = 100 * _MS
"""After a refused ``board.snapshot``, how long until it is asked again."""

# Not DigitalInput(name): ~20 us less an input edge after idle (benchmarks serial, releases).
_INPUT_BY_NAME: dict[object, DigitalInput] = {str(pin): pin for pin in DigitalInput}


class SerialBoard(HostLink, BoardBase):
    """A printer engine board on the other end of a serial line; see the module
    docstring. Make it, use it as a :class:`hal.Board`, :meth:`close` it (or use it as a
    context manager)."""

    def __init__(
        self,
        url: str,
        config: BoardConfig | None,
        scheduler: Scheduler | None = None,
        *,
        baud: int | None = None,
        pace: bool = False,
        open_timeout_s: float = 5.0,
        trace: TraceHook | None = None,
        strict: bool = False,
        analog_poll_s: float | None = 0.25,
        transport: Transport | None = None,
        link_options: dict[str, Any] | None = None,
    ) -> None:
        """Open ``url`` and connect; returns once the board is synchronised.

        ``config`` may be ``None``: the board file is then the one the device names in
        its HELLO. ``baud`` is the line rate (for a real UART; it also sizes the
        retransmission timeout); ``pace`` emulates it on a pty or socket. ``transport``
        replaces the pyserial port (tests); ``link_options`` override
        :class:`~hal.serial.LinkEndpoint` parameters.

        Raises :class:`PortUnavailable`, :class:`NoDeviceAnswer`, :class:`BoardMismatch`
        or another :class:`~hal.serial.IncompatiblePeer`; never hangs longer than
        ``open_timeout_s`` (plus the port's own open time).
        """
        if scheduler is None:
            scheduler = Scheduler(WallClock())
        if transport is None and scheduler.is_virtual:
            raise ValueError("a serial board runs in wall time: give it a "
                             "Scheduler(WallClock()) (or no scheduler)")
        self._config: BoardConfig | None = config
        self._strict = strict
        self._irq: InterruptController | None = None
        if config is not None:
            self._irq = InterruptController(scheduler, irq_lines_of(config))
        params: dict[str, Any] = host_link_options(config, baud)
        params.update(link_options or {})
        link = LinkEndpoint(Role.HOST, board=config.name if config is not None else "", **params)
        self.hello: Hello | None = None
        """The device's HELLO of the current (or last) session."""

        # The board as we know it.
        self._inputs: dict[DigitalInput, bool] = dict.fromkeys(DigitalInput, False)
        self._analog: dict[AnalogChannel, float] = dict.fromkeys(AnalogChannel, 0.0)
        self._outputs: dict[Output, bool] = dict.fromkeys(Output, False)
        self._display: tuple[str, str] = ("", "")
        self._windows: dict[AnalogChannel, tuple[float, float]] = {}
        self._regulations: dict[Output, tuple[AnalogChannel, float, float]] = {}
        self._reset_cause = ResetCause.POWER_ON
        self._reset_handler: ResetHandler | None = None
        self._sim_backlog: deque[tuple[str, dict[str, Any]]] = deque()
        self._event_listeners: list[EventListener] = []
        self.resets = 0
        """Board resets seen (reboots and device-side resets)."""

        # The session.
        self._sync_kind: SyncKind | None = None
        self._boot_nonce: int | None = None
        self._known_resets: int | None = None
        """The device's board resets as its last snapshot counted them (or ``None``)."""
        self._announced_cause: ResetCause | None = None
        """The cause a new boot's ``reset`` event gave, until its snapshot arrives."""
        self._capabilities: frozenset[str] = frozenset()
        self._power_cycling = False
        self._device_clock = DeviceClock(scheduler, self._send, lambda: self._synced)
        self._analog_poll = AnalogPoll(
            scheduler, None if not analog_poll_s else round(analog_poll_s * _S), self._analog,
            self._send, lambda: self._synced and not self._closed,
        )
        self._imaging = RemoteImaging(scheduler, self._send, lambda: self._synced,
                                      self._firmware_command_refused, self._count_not_sent)

        if transport is None:
            transport = PortTransport(url, scheduler, baud=baud, pace=pace)
        super().__init__(url, scheduler, link, transport, trace)
        self._connect(open_timeout_s)

    def __repr__(self) -> str:
        state = "synced" if self._synced else self._link.state.value
        name = self._config.name if self._config is not None else "?"
        return f"<SerialBoard {name} on {self._url} {state}>"

    def __enter__(self) -> SerialBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the threads and close the port. Pending requests are dropped. The
        device sees silence and makes itself safe. Idempotent."""
        self._analog_poll.stop()
        super().close()

    # -- hal.Board: identity -------------------------------------------------------

    @property
    def config(self) -> BoardConfig:
        assert self._config is not None, "the board is not connected"
        return self._config

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    @property
    def irq(self) -> InterruptController:
        assert self._irq is not None, "the board is not connected"
        return self._irq

    @property
    def capabilities(self) -> frozenset[str]:
        device = self._capabilities
        return frozenset({"remote"}
                         | ({"faults"} if "sim" in device else set())
                         | ({"regulator"} if "regulator" in device else set()))

    @property
    def faults(self) -> FaultInjector | None:
        return SimFaults(self._sim) if "sim" in self._capabilities else None

    @property
    def reset_cause(self) -> ResetCause:
        return self._reset_cause

    # -- hal.Board: the device's clock (hal.serial._device_clock) -------------------------

    @property
    def device_now_ns(self) -> int:
        return self._device_clock.now_ns

    def call_at_device(self, t_ns: int, callback: Callable[[], object]) -> Timer:
        return self._device_clock.call_at(t_ns, callback)

    def call_after_commands(self, delay_ns: int, callback: Callable[[], object]) -> Timer:
        return self._device_clock.call_after_commands(delay_ns, callback)

    def call_when_commands_reach(self, t_ns: int, callback: Callable[[], object]) -> Timer:
        return self._device_clock.call_when_commands_reach(t_ns, callback)

    # -- beyond the contract ---------------------------------------------------------

    @property
    def device_capabilities(self) -> frozenset[str]:
        """The capabilities of the device's HELLO (``"sim"``, ``"smp"``, ...)."""
        return self._capabilities

    @property
    def display(self) -> tuple[str, str]:
        """The rows last shown (as the firmware commanded them)."""
        return self._display

    @property
    def outputs(self) -> dict[Output, bool]:
        return dict(self._outputs)

    def add_event_listener(self, listener: EventListener) -> None:
        """Call ``listener(event, host_t_ns)`` for every device EVENT (benchmarks, tracing)."""
        self._event_listeners.append(listener)

    def remove_event_listener(self, listener: EventListener) -> None:
        """Stop calling ``listener`` (ValueError if it was never added)."""
        self._event_listeners.remove(listener)

    # -- hal.Board: pins -----------------------------------------------------------

    def read_input(self, pin: DigitalInput) -> bool:
        return self._inputs[DigitalInput(pin)]

    def read_analog(self, channel: AnalogChannel) -> float:
        try:
            return self._analog[AnalogChannel(channel)]
        except ValueError:
            raise ValueError(f"no analog channel {channel!r}") from None

    def set_window(self, channel: AnalogChannel, low_bound: float, high_bound: float) -> None:
        if not low_bound <= high_bound:
            raise ValueError(f"window [{low_bound}, {high_bound}] is empty")
        try:
            channel = AnalogChannel(channel)
        except ValueError:
            raise ValueError(f"no analog channel {channel!r}") from None
        self._windows[channel] = (float(low_bound), float(high_bound))
        self._command("window.set", {"channel": str(channel), "low": float(low_bound),
                                     "high": float(high_bound)})

    def set_output(self, output: Output, on: bool) -> None:
        output = Output(output)
        if self._regulations.pop(output, None) is None and self._outputs[output] == on:
            return
        self._outputs[output] = bool(on)
        self._command("output.set", {"output": str(output), "on": bool(on)})

    def output(self, output: Output) -> bool:
        return self._outputs[Output(output)]

    def regulate(
        self, output: Output, channel: AnalogChannel, low_bound: float, high_bound: float
    ) -> None:
        if "regulator" not in self._capabilities:
            raise ValueError(f"the device on {self._url} has no regulator")
        if not low_bound <= high_bound:
            raise ValueError(f"band [{low_bound}, {high_bound}] is empty")
        output, channel = Output(output), AnalogChannel(channel)
        self._regulations[output] = (channel, float(low_bound), float(high_bound))
        self._command("output.regulate", regulate_args(output, *self._regulations[output]))

    def pulse_pickup(self) -> None:
        self._command("pickup.pulse", None)

    def show(self, row0: str, row1: str) -> None:
        rows = (row0[:DISPLAY_COLUMNS], row1[:DISPLAY_COLUMNS])
        if rows == self._display:
            return
        self._display = rows
        self._command("display.show", {"rows": list(rows)})

    def kick_watchdog(self) -> None:
        self._command("watchdog.kick", None)

    def set_reset_handler(self, handler: ResetHandler) -> None:
        self._reset_handler = handler

    # -- hal.Board: imaging --------------------------------------------------------

    def _submit(self, page: ImagePage) -> IoHandle:
        return self._imaging.submit(page)

    # -- requests ------------------------------------------------------------------------

    def observe(self, timeout_s: float = 1.0) -> dict[str, Any] | None:
        """The device's ``sim.observe`` (the true state of its models), or ``None`` for
        a device without ``"sim"`` or when it cannot be had now."""
        if "sim" not in self._capabilities:
            return None
        try:
            result = self.query("sim.observe", None, timeout_s)
        except PrinterLinkError as exc:
            log.debug("sim.observe failed: %s", exc)
            return None
        return result if isinstance(result, dict) else None

    def power_cycle(self, timeout_s: float = 5.0) -> None:
        """Bring the device to its power-on state and wait until it is synchronised
        again (test fixtures; call it between runs, like :meth:`query`).

        With ``"sim"``: ``sim.power_cycle`` (every model back to the board file's
        power-on state, then a reboot). Otherwise, or when the device lacks that
        command: ``board.reset`` (a reboot). The reset handler runs as after any reset,
        with ``reset_cause`` ``power_on``. A device with neither command is tidied up
        instead (with ``"sim"``: heater repaired, cover opened and closed, which pulls
        every sheet out, toner replaced, tray refilled) and a warning logged.
        Raises :class:`LinkTimeout` if the device does not come back in time."""
        commands = (["sim.power_cycle"] if "sim" in self._capabilities else []) + ["board.reset"]
        for cmd in commands:
            old_nonce = self._boot_nonce
            self._power_cycling = True
            try:
                self.query(cmd, None, timeout_s)
            except (UnknownCommand, NotSupported):
                self._power_cycling = False
                continue
            except LinkFailure:
                pass  # it may reboot before its answer gets out
            except BaseException:
                self._power_cycling = False
                raise
            back = self._scheduler.run_until(
                lambda old=old_nonce: self._synced and self._boot_nonce != old,  # type: ignore[misc]
                timeout_ns=round(timeout_s * _S),
            )
            self._power_cycling = False
            if not back:
                raise LinkTimeout(f"{cmd}: the device on {self._url} did not come back "
                                  f"within {timeout_s:g} s")
            return
        log.warning("%s: the device can be neither power-cycled nor reset: tidying up", self._url)
        faults = self.faults
        if faults is not None:
            faults.set_heater_failed(False)
            faults.set_cover(True)
            faults.set_cover(False)
            faults.replace_toner()
            faults.set_tray(self.config.tray.loaded_sheets)
            self.query("sim.observe", None, timeout_s)  # all of the above has been done

    def _command(self, cmd: str, args: dict[str, Any] | None) -> None:
        """A fire-and-forget command of the firmware."""
        if not self._synced:
            self._count_not_sent()
            return
        self._send_state(cmd, args)

    def _count_not_sent(self) -> None:
        self.stats.not_sent += 1

    def _send_state(self, cmd: str, args: dict[str, Any] | None) -> None:
        """Send a command of the firmware's; a refusal is the firmware's bug."""

        def refused(error: PrinterLinkError) -> None:
            if isinstance(error, DeviceRejected):
                self._firmware_command_refused(cmd, args, error)

        self._send(cmd, args, None, refused)

    def _firmware_command_refused(self, cmd: str, args: dict[str, Any] | None,
                                  error: DeviceRejected) -> None:
        self._note_error(error, f"the device refused the firmware's {cmd} {args or {}}: {error}")
        if self._strict:
            raise error

    # -- simulation commands (the FaultInjector) ---------------------------------------

    def _sim(self, cmd: str, args: dict[str, Any] | None) -> None:
        if "sim" not in self._capabilities:
            raise RuntimeError(f"the device on {self._url} offers no simulation commands")
        if not self._synced:
            self._sim_backlog.append((cmd, args or {}))
            return
        self._send_sim(cmd, args or {})

    def _send_sim(self, cmd: str, args: dict[str, Any]) -> None:
        def done(_: Any) -> None:
            if cmd in SIM_CHANGES_READINGS:
                self._analog_poll.read_all()  # the fault changed a reading

        def refused(error: PrinterLinkError) -> None:
            if isinstance(error, DeviceRejected):
                self._note_error(error, f"the device refused {cmd} {args}: {error}")
            else:
                log.warning("%s: %s lost with the link", self._url, cmd)

        self._send(cmd, args, done, refused)

    # -- the session ---------------------------------------------------------------------

    def _on_session_up(self, event: LinkEstablished) -> None:
        hello = event.peer
        self.hello = hello
        if self._config is None:
            try:
                self._config = load_board(hello.board) if hello.board else None
            except BoardFileError as exc:
                self._fail_identity(BoardMismatch(
                    f"the device on {self._url} is a {hello.board!r} board, which no board "
                    f"file describes ({exc})"))
                return
            if self._config is None:
                self._fail_identity(BoardMismatch(
                    f"the device on {self._url} does not name its board: give a board file"))
                return
            self._irq = InterruptController(self._scheduler, irq_lines_of(self._config))
        if hello.board and hello.board != self._config.name:
            self._fail_identity(BoardMismatch(
                f"the device on {self._url} is a {hello.board!r} board, but the board file "
                f"is {self._config.name!r}"))
            return
        self._capabilities = hello.capabilities
        self._sync_kind = sync_kind(self._boot_nonce, hello.boot_nonce)
        if self._sync_kind is not SyncKind.REBOOT:
            self._announced_cause = None
        self._boot_nonce = hello.boot_nonce
        self._send("board.snapshot", None, self._on_snapshot, self._on_snapshot_error)

    def _fail_identity(self, error: BoardMismatch) -> None:
        if self._opening:
            self._open_error = error
        else:
            self._note_error(error, str(error))

    def _on_session_down(self, event: LinkLost) -> None:
        self._analog_poll.stop()
        if self._synced:
            self._synced = False
            self.irq.raise_line("link", LinkChange(False, event.reason.value),
                                self._device_clock.now_ns)

    # -- synchronising (hal.serial._resync) ----------------------------------------------

    def _on_snapshot(self, result: Any) -> None:
        try:
            snap = parse_snapshot(result)
        except MalformedPayload as exc:
            self._note_error(exc, str(exc))
            if self._opening:
                self._open_error = exc
            return
        kind = self._sync_kind
        self._sync_kind = None
        if kind is not SyncKind.REBOOT:
            self._announced_cause = None
        if kind is SyncKind.OPEN:
            self._apply_snapshot(snap)
            self._reset_cause = snap.reset_cause
            self._known_resets = snap.resets
            self._synced = True
        elif kind is SyncKind.REBOOT:
            self._board_reset(reboot_cause(self._announced_cause, self._power_cycling), snap)
        elif (snap.resets is not None and self._known_resets is not None
              and snap.resets > self._known_resets):
            self._board_reset(snap.reset_cause, snap)  # it reset while we were away
        else:
            self._resync(snap)
        self._device_clock.synced(snap.t_ns)
        self._after_sync()

    def _on_snapshot_error(self, error: PrinterLinkError) -> None:
        if isinstance(error, LinkFailure):
            return  # the session ended; the next one reads the snapshot again
        self._note_error(error, f"board.snapshot failed: {error}")
        if self._opening:
            self._open_error = error
            return
        # Ask again a little later, in this session: the firmware waits for the link.
        session = self._link.session
        kind = self._sync_kind

        def again() -> None:
            if (not self._closed and not self._synced and self._link.session == session
                    and self._link.state is LinkState.UP):
                self._sync_kind = kind
                self._send("board.snapshot", None, self._on_snapshot, self._on_snapshot_error)

        self._scheduler.call_later(_SNAPSHOT_RETRY_NS, again)

    def _apply_snapshot(self, snap: Snapshot) -> None:
        self._inputs.update(snap.inputs)
        self._analog.update(snap.analog)
        self._outputs.update(snap.outputs)
        if snap.display is not None:
            self._display = snap.display

    def _resync(self, snap: Snapshot) -> None:
        imaging = self._imaging
        plan = plan_resync(snap, inputs=self._inputs, outputs=self._outputs,
                           display=self._display, windows=self._windows,
                           regulations=self._regulations,
                           handles=list(imaging.pending), cancel_later=imaging.cancel_later)
        self._inputs.update(snap.inputs)
        self._analog.update(snap.analog)
        settle_imaging(plan, imaging.pending)
        imaging.cancel_later.clear()
        self._synced = True
        self.stats.resyncs += 1
        for number in plan.cancels:
            self._send("imaging.cancel", {"handle": number}, None, ignore_error)
        for cmd, args in plan.commands:
            self._send_state(cmd, args)
        self._device_clock.heard(snap.t_ns)
        for pin in plan.edges:
            self.irq.raise_line(str(pin), self._inputs[pin], snap.t_ns)
        self.irq.raise_line("link", LinkChange(True), snap.t_ns)

    def _board_reset(self, cause: ResetCause, snap: Snapshot | None) -> None:
        """The device's board reset (a reboot, or its own watchdog): what the emulated
        board does on a watchdog reset, on this side of the line."""
        self._synced = False  # nothing a dying firmware commands from an upcall goes out
        self._imaging.fail_all("board reset")
        self._outputs = dict.fromkeys(Output, False)
        self._windows.clear()
        self._regulations.clear()
        if snap is not None:
            self._apply_snapshot(snap)
            self._known_resets = snap.resets
        elif self._known_resets is not None:
            self._known_resets += 1
        self._device_clock.restart(None if snap is None else snap.t_ns)
        self.irq.reset()
        self._reset_cause = cause
        self._announced_cause = None
        self.resets += 1
        self.stats.device_resets += 1
        log.warning("%s: the board reset (%s)", self._url, cause.value)
        self._synced = self._link.state is LinkState.UP
        if self._reset_handler is not None:
            self._reset_handler(cause)

    def _after_sync(self) -> None:
        while self._sim_backlog and self._synced:
            cmd, args = self._sim_backlog.popleft()
            self._send_sim(cmd, args)
        self._analog_poll.start()

    # -- device events -----------------------------------------------------------------

    def _on_device_event(self, event: Event) -> None:
        self.stats.events += 1
        for listener in self._event_listeners:
            listener(event, self._scheduler.now_ns)
        kind, data = event.kind, event.data
        try:
            match kind:
                case "input":
                    name = data["name"]
                    pin = _INPUT_BY_NAME.get(name)
                    if pin is None:
                        raise ValueError(f"{name!r} is not a valid DigitalInput")
                    self._on_input(pin, bool(data["level"]), event.t_ns)
                case "window":
                    self._on_window(AnalogChannel(data["channel"]), float(data["reading"]),
                                    Crossing(data["crossing"]), event.t_ns)
                case "imaging":
                    self._imaging.on_event(int(data["handle"]), str(data["state"]),
                                           str(data.get("error") or ""))
                case "reset":
                    cause = reset_cause_of(data.get("cause"))
                    if self._synced:
                        self._board_reset(cause, None)  # a reset inside a live session
                    else:
                        self._announced_cause = cause  # a new boot's first words
                case _:
                    self.stats.unknown_events += 1
                    log.debug("%s: unknown event kind %r", self._url, kind)
        except (KeyError, TypeError, ValueError) as exc:
            error = MalformedPayload(f"{kind} event: {exc!r} in {data!r}")
            self._note_error(error, str(error))
        # After the event's interrupt: a device timer it makes due runs after the ISR.
        self._device_clock.heard(event.t_ns)

    def _on_input(self, pin: DigitalInput, level: bool, t_ns: int) -> None:
        if not self._synced:
            # Before a sync the snapshot that follows this event tells the net change.
            return
        if self._inputs[pin] == level:
            self.stats.stale_edges += 1
            return
        self._inputs[pin] = level
        self.irq.raise_line(str(pin), level, t_ns)

    def _on_window(self, channel: AnalogChannel, reading: float, crossing: Crossing,
                   t_ns: int) -> None:
        self._analog[channel] = reading
        if self._windows.pop(channel, None) is None and not self._synced:
            return  # a crossing of a window armed before a reset: nobody asked for it
        if self._irq is not None and not self._opening:
            self.irq.raise_line(ANALOG_IRQ_LINE[channel],
                                WindowCrossing(channel, reading, crossing), t_ns)
