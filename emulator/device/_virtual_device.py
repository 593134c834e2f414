"""The virtual device: an :class:`EmulatedBoard` behind the device end of the serial link.

This is the firmware a real engine controller would run under the host's ``SerialBoard``,
written against the emulated board: it answers the requests of docs/board-commands.md,
turns the board's interrupts into EVENT frames, and keeps the link of docs/protocol.md.
It is transport-agnostic and has no threads: ``printer-emu serve``
(:func:`emulator.device.serve`) feeds it bytes from a pty or a socket, and tests drive it
in virtual time with a host-role ``LinkEndpoint``. The commands it answers are
:mod:`emulator.device._commands`; its link runs on the same :class:`~hal.serial.LinkPump`
as the host's.

Call pattern (everything on the scheduler's thread)::

    device = VirtualDevice(board)                   # power-on: boots, first HELLO due
    device.connection_made(write)                   # a client is there: fresh session
    device.receive(data)                            # bytes read from the line
    device.connection_lost()                        # the client went away: safe state
    device.close()

``write(data)`` is called with whole batches of frames (and SMP replies); the device
arms its own timers on the board's scheduler for retransmission, heartbeats and HELLOs.
The device owns the board's reset handler (it reboots on every board reset), and a
:class:`~emulator.flash.FlashDevice` given to it must not have booted yet.

Behaviour (the contract with the host; docs/board-commands.md is the normative text):

* **Requests.** Every ``cmd`` of docs/board-commands.md is answered with one RESPONSE or
  ERROR in the session it came in. Requests delivered in a session that has ended by the
  time they are handled are carried out but not answered (protocol: a request of an
  ended session is never answered in a later one).
* **Events.** An ISR is attached on the board's own interrupt controller for every
  digital input's line and both comparator lines (``toner``, ``fuser``): on the device,
  those interrupts *are* the events. Each becomes an ``input`` or ``window`` EVENT
  (``request_id`` 0, ``t_ns`` the instant the line was raised). Events of one instant go
  out in one write. While the link is down, input edges are dropped (the host reads
  ``board.snapshot`` on reconnect and raises what changed) and a comparator crossing is
  kept (the comparator is one-shot, so at most one per channel) and sent as soon as the
  next session of the same boot is up.
* **Imaging.** ``imaging.submit`` binds the host's ``handle`` to a board request; its
  progress comes back as ``imaging`` events (``started``, then ``done`` or ``failed``)
  with the submit's ``request_id``, after the submit's RESPONSE. Handles belong to a
  session: when it ends, every pending one is cancelled on the board.
* **Simulation.** ``sim.*`` are answered only by a device made with ``sim=True`` (it
  announces ``"sim"`` in HELLO); otherwise any ``sim.*`` gets ``NOT_SUPPORTED``.
* **Link loss** (any end of a session: silence, no progress, the host restarted, the
  transport closed): heater, laser and motor off, imaging handles cancelled, and the
  watchdog stopped (idle until the next ``watchdog.kick``), so a host that reconnects
  finds the same boot.
* **Watchdog.** ``watchdog.kick`` kicks the board's watchdog; it starts counting at the
  first kick after boot. It guards the host *firmware*, not the cable: while the host is
  heard (any valid frame, heartbeats included) it counts, and when nothing has been heard
  for half the device's ``dead_after`` it is stopped, since a silent line is link trouble
  and ends in link loss instead.
* **Reset** (the board's watchdog expired, ``board.reset``, an SMP reset, or
  ``sim.power_cycle``, which first puts every model back to its power-on state): the
  board fails its requests, cuts its outputs and detaches every ISR (``irq.reset()``);
  the device then reboots: the flash (if any) boots again, ISRs are attached again, and a new
  ``LinkEndpoint`` with a **new boot nonce** replaces the old one (whatever the old one
  had not sent is lost, as on a real reboot). The host sees a HELLO with a new nonce
  (``LinkLost(PEER_RESET)``, ``LinkEstablished(peer_reset=True)``). The first session of
  every boot starts with a ``reset`` event carrying the cause (informational: the boot
  nonce is what tells a reset). ``board.reset`` and ``sim.power_cycle`` are answered
  first: the reboot waits until the link has the answer acknowledged (two ``rto`` at
  most).
* **SMP** (with a :class:`~emulator.flash.FlashDevice`): SMP lines share the
  line (docs/protocol.md, "The byte stream") and are served by the flash device; the
  HELLO then announces ``"smp"`` and the running image's version. A flash with no
  bootable image is MCUboot's serial recovery: SMP only, no link, until an image is
  flashed and the device reset.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulator.board import EmulatedBoard
from emulator.device._commands import BoardCommands, Handler
from hal import (
    ANALOG_IRQ_LINE,
    PRIORITY_LATE,
    DigitalInput,
    IrqEvent,
    Output,
    ResetCause,
    WindowCrossing,
)
from hal.serial import (
    CorruptFrame,
    DeviceRejected,
    ErrorCode,
    ErrorReply,
    Event,
    Frame,
    FrameDecoder,
    FrameType,
    HandshakeFailed,
    LineDemux,
    LinkDown,
    LinkEndpoint,
    LinkEstablished,
    LinkEvent,
    LinkLost,
    LinkPump,
    LinkState,
    MalformedPayload,
    Noise,
    PayloadTooLarge,
    Role,
    device_link_options,
    input_event_payload,
    parse_request,
    rejection_for,
    response_payload,
)

if TYPE_CHECKING:
    from emulator.flash import FlashDevice

_log = logging.getLogger(__name__)

MS = 1_000_000

SAFE_OUTPUTS = (Output.HEATER, Output.LASER, Output.MOTOR)
"""What the device turns off when its link goes down."""

Writer = Callable[[bytes], object]


def link_timings(board: EmulatedBoard, baud: int | None = None) -> dict[str, int]:
    """The device's link parameters from the board file's ``[serial]`` table, made safe
    for a line paced at ``baud`` (see :func:`hal.serial.device_link_options`)."""
    return device_link_options(board.config, baud)


class VirtualDevice:
    """The device end of the serial board; see the module docstring.

    ``sim`` announces (and serves) the simulation commands. ``flash`` adds SMP and
    MCUboot boots. ``baud`` sizes the link timers for a paced line. ``timings``
    overrides the link parameters of :func:`link_timings` (``window``, ``max_payload``,
    ``rto_ns``, ``heartbeat_ns``, ``dead_after_ns``, ``ack_delay_ns``). ``rng`` draws boot
    nonces and session ids (seed it for reproducible tests).
    """

    def __init__(
        self,
        board: EmulatedBoard,
        *,
        sim: bool = True,
        flash: FlashDevice | None = None,
        baud: int | None = None,
        timings: dict[str, int] | None = None,
        device_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.board = board
        self._sched = board.scheduler
        self.sim = sim
        self.flash = flash
        self._rng = rng if rng is not None else random.SystemRandom()
        self._timings = {**link_timings(board, baud), **(timings or {})}
        self._quiet_ns = self._timings["dead_after_ns"] // 2
        caps = {"sim"} if sim else set()
        if "regulator" in board.capabilities:
            caps.add("regulator")
        if flash is not None:
            caps.add("smp")
        self.capabilities = frozenset(caps)
        self.device_id = (
            device_id if device_id is not None else f"printer-emu-{board.config.board.name}"
        )
        self._writer: Writer | None = None
        self._demux = LineDemux() if flash is not None else None
        self._recovery_frames = FrameDecoder()
        self._pump = LinkPump(self._sched, None, write=self._write,
                              on_events=self._on_link_events, deadline=self._watchdog_deadline)
        self._board_commands = BoardCommands(board, sim=sim, send_event=self._event,
                                             when_answered=self._when_answered,
                                             window_armed=self._window_armed)
        self._pending_windows: dict[str, dict[str, Any]] = {}
        self._announce_reset = True
        self._last_heard_ns = self._sched.now_ns
        self._valid_heard_ns = self._sched.now_ns
        self._closed = False
        # Counters, for logs, tests and benchmarks.
        self.boots = 0
        self.requests = 0
        self.events_sent = 0
        self.events_dropped = 0
        self.smp_lines = 0
        self.bytes_received = 0
        self.bytes_sent = 0

        board.set_reset_handler(self._on_board_reset)
        self._link: LinkEndpoint | None = None
        self._boot()

    # -- public ------------------------------------------------------------------------

    @property
    def link(self) -> LinkEndpoint | None:
        """This boot's link endpoint; ``None`` in serial recovery (no bootable image)."""
        return self._link

    @property
    def boot_nonce(self) -> int | None:
        return None if self._link is None else self._link.boot_nonce

    @property
    def connected(self) -> bool:
        """Whether a transport is attached (bytes written go somewhere)."""
        return self._writer is not None

    @property
    def pending_handles(self) -> list[int]:
        """Host handles of imaging requests still pending on the board."""
        return self._board_commands.pending_handles

    @property
    def commands(self) -> dict[str, Handler]:
        """The command table, ``cmd -> handler(args, request_id)``: a handler returns
        the result or raises the :class:`~hal.serial.DeviceRejected` answered. Tests
        replace entries to make a device that misbehaves."""
        return self._board_commands.table

    @property
    def dead_after_ns(self) -> int:
        """The link's dead time: a host silent this long is gone."""
        return int(self._timings["dead_after_ns"])

    @property
    def valid_heard_ns(self) -> int:
        """When the client last said something valid (a frame of the link, or an SMP
        line), or connected; a server drops a client silent for :attr:`dead_after_ns`."""
        return self._valid_heard_ns

    def connection_made(self, write: Writer) -> None:
        """A client is on the line: start a fresh session (the next HELLO goes now)."""
        self._writer = write
        self._valid_heard_ns = self._sched.now_ns
        self._recovery_frames = FrameDecoder()  # no bytes of the last client's
        if self._demux is not None:
            self._demux.reset()
        self._pump.restart()

    def connection_lost(self) -> None:
        """The client went away: end the session (the device makes itself safe)."""
        self._writer = None
        if self._demux is not None:
            self._demux.reset()
        self._pump.restart()

    def receive(self, data: bytes) -> None:
        """Bytes read from the line."""
        if self._closed or not data:
            return
        self.bytes_received += len(data)
        demux = self._demux
        if demux is None:
            self._receive_frames(data)
            return
        for is_smp, piece in demux.feed(data):
            if is_smp:
                self._on_smp_line(piece)
            else:
                self._receive_frames(piece)

    def close(self) -> None:
        """Stop: detach from the board and cancel the timers (the transport is closed
        by its owner)."""
        if self._closed:
            return
        self._closed = True
        self._pump.close()
        irq = self.board.irq
        for line in self._isr_lines():
            irq.detach(line)
        self._writer = None

    # -- boot and reset ----------------------------------------------------------------

    def _boot(self) -> None:
        self.boots += 1
        self._board_commands.forget()
        self._pending_windows.clear()
        self._announce_reset = True
        self._pump.link = None
        if self._demux is not None:
            self._demux.reset()
        image_version, image_sha256, image_confirmed = "", "", None
        if self.flash is not None:
            result = self.flash.boot()
            if result.image is None:
                _log.warning("no bootable image: serial recovery (SMP only) until flashed")
                self._link = None
                return
            image_version = str(result.image.version)
            image_sha256 = result.image.sha256.hex()
            image_confirmed = result.image.confirmed
        self._attach_isrs()
        self._link = LinkEndpoint(
            Role.DEVICE,
            capabilities=self.capabilities,
            device_id=self.device_id,
            board=self.board.config.board.name,
            image_version=image_version,
            image_sha256=image_sha256,
            image_confirmed=image_confirmed,
            boot_nonce=self._rng.getrandbits(64),
            rng=self._rng,
            **self._timings,
        )
        self._pump.link = self._link
        self._last_heard_ns = self._sched.now_ns
        self._pump.pump()

    def _on_board_reset(self, cause: ResetCause) -> None:
        # The board has failed its requests, cut its outputs and detached every ISR.
        _log.info("board reset (%s): rebooting the device", cause)
        if not self._closed:
            self._boot()

    def _isr_lines(self) -> list[str]:
        return [str(pin) for pin in DigitalInput] + list(ANALOG_IRQ_LINE.values())

    def _attach_isrs(self) -> None:
        irq = self.board.irq
        for pin in DigitalInput:
            irq.attach(str(pin), self._input_isr)
        for line in ANALOG_IRQ_LINE.values():
            irq.attach(line, self._window_isr)

    # -- interrupts -> events ----------------------------------------------------------

    def _input_isr(self, event: IrqEvent) -> None:
        self._send_event("input", input_event_payload(event.t_ns, event.name, bool(event.value)))

    def _window_isr(self, event: IrqEvent) -> None:
        crossing = event.value
        if not isinstance(crossing, WindowCrossing):
            _log.warning("comparator line %s raised without a crossing: %r", event.name, crossing)
            return
        channel = str(crossing.channel)
        data: dict[str, Any] = {
            "channel": channel,
            "reading": float(crossing.reading),
            "crossing": str(crossing.crossing),
        }
        link = self._link
        if link is None or link.state is not LinkState.UP:
            # One-shot comparator: keep its crossing for the next session of this boot.
            self._pending_windows[channel] = {"t_ns": event.t_ns, **data}
            return
        self._event("window", event.t_ns, data)

    def _window_armed(self, channel: str) -> None:
        self._pending_windows.pop(channel, None)  # re-armed: an old crossing is moot

    def _event(self, kind: str, t_ns: int, data: dict[str, Any], request_id: int = 0) -> bool:
        return self._send_event(kind, Event(kind, t_ns, data).to_payload(), request_id)

    def _send_event(self, kind: str, payload: bytes, request_id: int = 0) -> bool:
        link = self._link
        if link is None or link.state is not LinkState.UP:
            self.events_dropped += 1
            return False
        try:
            link.send(FrameType.EVENT, payload, request_id)
        except (LinkDown, PayloadTooLarge) as exc:
            _log.warning("event %s not sent: %s", kind, exc)
            self.events_dropped += 1
            return False
        self.events_sent += 1
        self._pump.pump_late()  # the events of one instant go out in one write
        return True

    # -- the link ----------------------------------------------------------------------

    def _receive_frames(self, data: bytes) -> None:
        link = self._link
        if link is None:
            # Serial recovery: nobody speaks the link protocol, but a host's valid frames
            # (its HELLOs) still count as heard, so the server does not drop it as idle
            # (a host would read that close as "busy") before it gives up and asks why.
            if any(isinstance(item, Frame) for item in self._recovery_frames.feed(data)):
                self._valid_heard_ns = self._sched.now_ns
            return
        heard = link.stats.frames_received
        self._pump.receive(data)
        if link.stats.frames_received != heard:
            self._last_heard_ns = self._valid_heard_ns = self._sched.now_ns
        self._pump.pump()  # the answers go at once

    def _watchdog_deadline(self, now_ns: int) -> int | None:
        """While the watchdog counts: when the host counts as silent. It guards the
        host's firmware, not the cable, so then it stops (see the module docstring)."""
        watchdog = self.board.watchdog
        if not watchdog.counting:
            return None
        quiet_at = self._last_heard_ns + self._quiet_ns
        if quiet_at <= now_ns:
            _log.info("host silent for %d ms: watchdog stopped", self._quiet_ns // MS)
            watchdog.stop()
            return None
        return quiet_at

    def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None:
            return
        self.bytes_sent += len(data)
        writer(data)

    def _on_link_events(self, events: list[LinkEvent]) -> None:
        # Frames before a LinkLost in this batch belong to a session that has ended: carry
        # them out, but never answer them (a later session must not see the answer).
        ended = -1
        for i, event in enumerate(events):
            if isinstance(event, LinkLost):
                ended = i
        for i, event in enumerate(events):
            match event:
                case Frame():
                    self._on_frame(event, answer=i > ended)
                case LinkEstablished():
                    self._on_session_up(event)
                case LinkLost():
                    self._on_session_lost(event)
                case HandshakeFailed():
                    _log.warning("handshake failed: %s", event.error)
                case Noise():
                    _log.debug("noise on the line: %r", event.data[:80])
                case CorruptFrame():
                    _log.debug("corrupt frame: %s %s", event.kind.value, event.detail)

    def _on_session_up(self, event: LinkEstablished) -> None:
        _log.info("link up: host session %#010x", event.peer.session)
        if self._announce_reset:
            self._announce_reset = False
            self._event("reset", self._sched.now_ns, {"cause": str(self.board.reset_cause)})
        pending, self._pending_windows = self._pending_windows, {}
        for data in pending.values():
            t_ns = data.pop("t_ns")
            self._event("window", t_ns, data)

    def _on_session_lost(self, event: LinkLost) -> None:
        _log.info("link down (%s): safe state", event.reason.value)
        board = self.board
        for output in SAFE_OUTPUTS:
            board.set_output(output, False)
        self._board_commands.end_session()
        board.watchdog.stop()

    # -- requests ----------------------------------------------------------------------

    def _on_frame(self, frame: Frame, *, answer: bool) -> None:
        if frame.type is not FrameType.REQUEST:
            _log.debug("ignored %s frame from the host", frame.type.name)
            return
        self.requests += 1
        rid = frame.request_id
        try:
            cmd, args = parse_request(frame.payload)
        except MalformedPayload as exc:
            if answer:
                self._refuse(rid, ErrorCode.BAD_ARGUMENT, str(exc))
            return
        try:
            result = self._execute(cmd, args, rid)
        except DeviceRejected as exc:
            if answer:
                self._refuse(rid, exc.code, exc.message)
            return
        except Exception as exc:  # the device's own bug: report it, keep serving
            _log.exception("request %s failed", cmd)
            if answer:
                self._refuse(rid, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            return
        if answer:
            self._reply(rid, response_payload(result))
            self._board_commands.answered(cmd, args)

    def _execute(self, cmd: str, args: dict[str, Any], rid: int) -> Any:
        handler = self.commands.get(cmd)
        if handler is None:
            if cmd.startswith("sim.") and not self.sim:
                raise rejection_for(
                    ErrorCode.NOT_SUPPORTED, f"{cmd}: this device has no simulation commands"
                )
            raise rejection_for(ErrorCode.UNKNOWN_COMMAND, f"no command {cmd!r}")
        return handler(args, rid)

    def _reply(self, rid: int, payload: bytes) -> None:
        link = self._link
        if link is None:
            return
        try:
            link.send(FrameType.RESPONSE, payload, rid)
        except LinkDown:
            return
        except PayloadTooLarge as exc:
            self._refuse(rid, ErrorCode.TOO_LARGE, str(exc))

    def _refuse(self, rid: int, code: int, message: str) -> None:
        link = self._link
        if link is None:
            return
        try:
            link.send(FrameType.ERROR, ErrorReply(code, message[:200]).to_payload(), rid)
        except LinkDown:
            return

    def _when_answered(self, action: Callable[[], None]) -> None:
        """Run ``action`` once what the link has sent (the answer to this request above
        all) is acknowledged, or after two retransmission timeouts at most: a device that
        reboots answers first, as MCUboot and mcumgr do."""
        link = self._link
        sched = self._sched
        give_up_ns = sched.now_ns + 2 * self._timings["rto_ns"]

        def check() -> None:
            if self._closed or self._link is not link or link is None:
                return  # rebooted meanwhile: nothing left to do
            if (
                (link.in_flight == 0 and link.queued == 0)
                or link.state is not LinkState.UP
                or sched.now_ns >= give_up_ns
            ):
                action()
            else:
                sched.call_later(MS, check)

        sched.call_soon(check, PRIORITY_LATE)

    # -- SMP ---------------------------------------------------------------------------

    def _on_smp_line(self, line: bytes) -> None:
        flash = self.flash
        if flash is None:
            return
        self.smp_lines += 1
        self._valid_heard_ns = self._sched.now_ns
        reply = flash.handle_smp_line(line)
        if reply:
            self._write(reply)
        if flash.reset_requested:
            _log.info("SMP reset: rebooting")
            # A software reset of the whole device: the board resets (outputs off,
            # requests failed, ISRs detached) and its reset handler reboots us.
            self.board.reset(ResetCause.SOFTWARE)


__all__ = ["SAFE_OUTPUTS", "VirtualDevice", "link_timings"]
