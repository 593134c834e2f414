"""The virtual device: an :class:`EmulatedBoard` behind the device end of the serial link.

This is the firmware a real engine controller would run under the host's ``SerialBoard``,
written against the emulated board: it answers the requests of docs/board-commands.md,
turns the board's interrupts into EVENT frames, and keeps the link of docs/protocol.md.
It is transport-agnostic and has no threads: ``emulator.device._serve`` feeds it bytes from a
pty or a socket, and tests drive it in virtual time with a host-role ``LinkEndpoint``.

Call pattern (everything on the scheduler's thread)::

    device = VirtualDevice(board)                   # power-on: boots, first HELLO due
    device.connection_made(write)                   # a client is there: fresh session
    device.receive(data)                            # bytes read from the line
    device.connection_lost()                        # the client went away: safe state
    device.close()

``write(data)`` is called with whole batches of frames (and SMP replies); the device
arms its own timers on the board's scheduler for retransmission, heartbeats and HELLOs.
The device owns the board's reset handler (it reboots on every board reset), and a
:class:`~emulator.flash._device.FlashDevice` given to it must not have booted yet.

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
* **SMP** (with a :class:`~emulator.flash._device.FlashDevice`): SMP lines share the
  line (docs/protocol.md, "The byte stream") and are served by the flash device; the
  HELLO then announces ``"smp"`` and the running image's version. A flash with no
  bootable image is MCUboot's serial recovery: SMP only, no link, until an image is
  flashed and the device reset.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from emulator.board import EmulatedBoard
from hal import (
    ANALOG_IRQ_LINE,
    PRIORITY_LATE,
    AnalogChannel,
    Button,
    DigitalInput,
    ImagePage,
    IoEvent,
    IoHandle,
    IoState,
    IrqEvent,
    JamPoint,
    Output,
    ResetCause,
    Timer,
    WindowCrossing,
    timer_when_ns,
)
from hal.serial._errors import ErrorCode, LinkDown, MalformedPayload, PayloadTooLarge
from hal.serial._link import (
    HandshakeFailed,
    LinkEndpoint,
    LinkEstablished,
    LinkEvent,
    LinkLost,
    LinkState,
)
from hal.serial._wire import (
    MIN_MAX_PAYLOAD,
    CorruptFrame,
    ErrorReply,
    Event,
    Frame,
    FrameType,
    Noise,
    Role,
    encode_payload,
    input_event_payload,
    parse_request,
)

if TYPE_CHECKING:
    from emulator.flash._device import FlashDevice

_log = logging.getLogger(__name__)
_E = TypeVar("_E")

MS = 1_000_000

SAFE_OUTPUTS = (Output.HEATER, Output.LASER, Output.MOTOR)
"""What the device turns off when its link goes down."""

_SMP_MARKERS = (b"\x06\x09", b"\x04\x14")
_MAX_SMP_LINE_BYTES = 4096
_MARKER = 0xA5
# Enum members as globals for the per-request path (a class attribute of an Enum is
# several times dearer to look up in Python 3.11).
_UP = LinkState.UP
_REQUEST = FrameType.REQUEST
_RESPONSE = FrameType.RESPONSE

Writer = Callable[[bytes], object]


class _Refused(Exception):
    """A request the device answers with ERROR ``code``."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bad(message: str) -> _Refused:
    return _Refused(ErrorCode.BAD_ARGUMENT, message)


# -- argument checks ---------------------------------------------------------------------


def _arg(args: dict[str, Any], key: str) -> Any:
    try:
        return args[key]
    except KeyError:
        raise _bad(f"argument {key!r} missing") from None


def _bool(args: dict[str, Any], key: str) -> bool:
    value = _arg(args, key)
    if not isinstance(value, bool):
        raise _bad(f"{key!r} must be a boolean, got {type(value).__name__}")
    return value


def _number(args: dict[str, Any], key: str) -> float:
    value = _arg(args, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{key!r} must be a number, got {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise _bad(f"{key!r} must be finite, got {value}")
    return float(value)


def _uint(args: dict[str, Any], key: str) -> int:
    value = _arg(args, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"{key!r} must be an unsigned integer, got {value!r}")
    return value


def _text(args: dict[str, Any], key: str) -> str:
    value = _arg(args, key)
    if not isinstance(value, str):
        raise _bad(f"{key!r} must be a text string, got {type(value).__name__}")
    return value


_MEMBERS: dict[Any, dict[str, Any]] = {}
"""``kind(text)`` of :func:`_enum_arg` that succeeded, by kind and text (a dict lookup
costs a fraction of an Enum call)."""


def _enum_arg(args: dict[str, Any], key: str, kind: Callable[[str], _E]) -> _E:
    # The usual case first, in two lookups: a name seen before.
    text = args.get(key)
    members = _MEMBERS.get(kind)
    if members is not None and type(text) is str:
        member: _E | None = members.get(text)
        if member is not None:
            return member
    text = _text(args, key)
    if members is None:
        members = _MEMBERS[kind] = {}
    try:
        member = kind(text)
    except ValueError:
        raise _bad(f"{key!r}: no such name {text!r}") from None
    members[text] = member
    return member


# -- the byte stream: frames and SMP lines ---------------------------------------------

_BOUNDARY, _IN_FRAME, _IN_SMP, _IN_NOISE = range(4)


class LineDemux:
    """Splits the received byte stream into bytes for the frame decoder and SMP lines,
    by the rule of docs/protocol.md ("The byte stream"): at the start, after a 0x00 and
    after the ``\\n`` ending an SMP line or a line of noise, ``06 09`` / ``04 14`` starts
    an SMP line (up to its ``\\n``), ``c A5`` (c >= 2) a frame (up to its 0x00; a ``\\n``
    inside means nothing), anything else noise (up to ``\\n`` or 0x00).

    :meth:`feed` returns ``(is_smp, data)`` pieces in stream order; consecutive bytes for
    the decoder come as one piece. A line of noise ended by ``\\n`` is followed by a 0x00
    of our own, so the decoder reports it at once and does not glue it onto the next
    frame.
    """

    __slots__ = ("_held", "_smp", "_state")

    def __init__(self) -> None:
        self._state = _BOUNDARY
        self._held = b""
        self._smp = bytearray()

    def reset(self) -> None:
        self._state = _BOUNDARY
        self._held = b""
        self._smp.clear()

    def feed(self, data: bytes) -> list[tuple[bool, bytes]]:
        out: list[tuple[bool, bytes]] = []
        if self._held:
            data = self._held + data
            self._held = b""
        n = len(data)
        pos = 0
        start = 0  # first byte of the run of decoder bytes not yet emitted
        state = self._state
        smp = self._smp
        while pos < n:
            if state == _BOUNDARY:
                b0 = data[pos]
                if b0 == 0:
                    pos += 1
                    continue
                if pos + 1 == n:
                    # One byte cannot tell a frame from an SMP line: wait for the next.
                    if start < pos:
                        out.append((False, data[start:pos]))
                    self._held = data[pos:]
                    start = pos = n
                    break
                pair = data[pos : pos + 2]
                if pair in _SMP_MARKERS:
                    if start < pos:
                        out.append((False, data[start:pos]))
                    state = _IN_SMP
                    start = pos
                elif b0 >= 2 and data[pos + 1] == _MARKER:
                    state = _IN_FRAME
                else:
                    state = _IN_NOISE
            elif state == _IN_FRAME:
                end = data.find(0, pos)
                if end < 0:
                    pos = n
                else:
                    pos = end + 1
                    state = _BOUNDARY
            elif state == _IN_NOISE:
                zero = data.find(0, pos)
                newline = data.find(10, pos, zero if zero >= 0 else n)
                if newline >= 0:
                    pos = newline + 1
                    out.append((False, data[start:pos] + b"\x00"))
                    start = pos
                    state = _BOUNDARY
                elif zero >= 0:
                    pos = zero + 1
                    state = _BOUNDARY
                else:
                    pos = n
            else:  # _IN_SMP
                end = data.find(10, pos)
                stop = n if end < 0 else end + 1
                smp += data[pos:stop]
                pos = stop
                start = pos
                if end >= 0:
                    out.append((True, bytes(smp)))
                    smp.clear()
                    state = _BOUNDARY
                elif len(smp) > _MAX_SMP_LINE_BYTES:
                    # Not a line after all: hand it to the decoder, which calls it noise.
                    out.append((False, bytes(smp)))
                    smp.clear()
                    state = _IN_NOISE
        if start < n and state != _IN_SMP:
            out.append((False, data[start:n]))
        self._state = state
        return out


# -- the device --------------------------------------------------------------------------


class _Imaging:
    """One host handle bound to a board request, in the session that submitted it."""

    __slots__ = ("handle", "host_handle", "request_id")

    def __init__(self, host_handle: int, request_id: int, handle: IoHandle) -> None:
        self.host_handle = host_handle
        self.request_id = request_id
        self.handle = handle


def link_timings(board: EmulatedBoard, baud: int | None = None) -> dict[str, int]:
    """The device's link parameters from the board file's ``[serial]`` table, made safe
    for a line paced at ``baud`` (a full window of the largest frames must fit in the
    retransmission timeout, see ``hal.serial._link.suggested_rto_ns``)."""
    from hal.serial._link import suggested_rto_ns

    serial = board.config.serial
    window = max(1, serial.window)
    max_payload = min(max(MIN_MAX_PAYLOAD, serial.max_payload), 0xFFFF)
    rto_ns = round(serial.retransmit_ms * MS)
    if baud:
        rto_ns = max(rto_ns, suggested_rto_ns(baud, window, max_payload))
    dead_after_ns = max(round(serial.link_dead_ms * MS), 3 * rto_ns)
    heartbeat_ns = min(round(serial.heartbeat_ms * MS), dead_after_ns // 3)
    ack_delay_ns = min(2 * MS, rto_ns // 4)
    return {
        "window": window,
        "max_payload": max_payload,
        "rto_ns": rto_ns,
        "heartbeat_ns": max(1, heartbeat_ns),
        "dead_after_ns": dead_after_ns,
        "ack_delay_ns": ack_delay_ns,
    }


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
        if flash is not None:
            caps.add("smp")
        self.capabilities = frozenset(caps)
        self.device_id = (
            device_id if device_id is not None else f"printer-emu-{board.config.board.name}"
        )
        self._writer: Writer | None = None
        self._demux = LineDemux() if flash is not None else None
        self._timer: Timer | None = None
        self._flush_scheduled = False
        self._handles: dict[int, _Imaging] = {}
        self._pending_windows: dict[str, dict[str, Any]] = {}
        self._announce_reset = True
        self._last_heard_ns = self._sched.now_ns
        self._closed = False
        self._commands: dict[str, Callable[[dict[str, Any], int], Any]] = {
            "board.snapshot": self._cmd_snapshot,
            "output.set": self._cmd_output_set,
            "pickup.pulse": self._cmd_pickup_pulse,
            "window.set": self._cmd_window_set,
            "analog.read": self._cmd_analog_read,
            "display.show": self._cmd_display_show,
            "imaging.submit": self._cmd_imaging_submit,
            "imaging.cancel": self._cmd_imaging_cancel,
            "watchdog.kick": self._cmd_watchdog_kick,
            "board.reset": self._cmd_board_reset,
        }
        self._sim_commands: dict[str, Callable[[dict[str, Any], int], Any]] = {
            "sim.toner": self._sim_toner,
            "sim.replace_toner": self._sim_replace_toner,
            "sim.tray": self._sim_tray,
            "sim.jam": self._sim_jam,
            "sim.misfeed": self._sim_misfeed,
            "sim.cover": self._sim_cover,
            "sim.press": self._sim_press,
            "sim.heater": self._sim_heater,
            "sim.observe": self._sim_observe,
            "sim.power_cycle": self._sim_power_cycle,
        }
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
        return sorted(self._handles)

    def connection_made(self, write: Writer) -> None:
        """A client is on the line: start a fresh session (the next HELLO goes now)."""
        self._writer = write
        if self._demux is not None:
            self._demux.reset()
        if self._link is not None:
            self._link.reset(self._sched.now_ns)
        self._pump()

    def connection_lost(self) -> None:
        """The client went away: end the session (the device makes itself safe)."""
        self._writer = None
        if self._demux is not None:
            self._demux.reset()
        if self._link is not None:
            self._link.reset(self._sched.now_ns)
        self._pump()

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
        if self._timer is not None:
            self._sched.cancel(self._timer)
            self._timer = None
        irq = self.board.irq
        for line in self._isr_lines():
            irq.detach(line)
        self._writer = None

    # -- boot and reset ----------------------------------------------------------------

    def _boot(self) -> None:
        self.boots += 1
        self._handles.clear()
        self._pending_windows.clear()
        self._announce_reset = True
        if self._timer is not None:
            self._sched.cancel(self._timer)
            self._timer = None
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
        self._last_heard_ns = self._sched.now_ns
        self._pump()

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

    def _event(self, kind: str, t_ns: int, data: dict[str, Any], request_id: int = 0) -> bool:
        return self._send_event(kind, Event(kind, t_ns, data).to_payload(), request_id)

    def _send_event(self, kind: str, payload: bytes, request_id: int = 0) -> bool:
        link = self._link
        if link is None or link.state is not _UP:
            self.events_dropped += 1
            return False
        try:
            link.send(FrameType.EVENT, payload, request_id)
        except (LinkDown, PayloadTooLarge) as exc:
            _log.warning("event %s not sent: %s", kind, exc)
            self.events_dropped += 1
            return False
        self.events_sent += 1
        self._flush_soon()
        return True

    # -- the link ----------------------------------------------------------------------

    def _receive_frames(self, data: bytes) -> None:
        link = self._link
        if link is None:
            return  # serial recovery: nobody speaks the link protocol
        stats = link.stats
        heard = stats.frames_received
        now = self._sched.now_ns
        link.receive(data, now)
        if stats.frames_received != heard:
            self._last_heard_ns = now
        self._pump()

    def _flush_soon(self) -> None:
        # Events raised in one instant go out in one write, after the instant's ISRs.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._sched.call_soon(self._flush_now, PRIORITY_LATE)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _pump(self) -> None:
        """Deliver what the link has for us, write what it has to send, and arm the next
        timer; repeat until the link has nothing more."""
        if self._closed:
            return
        sched = self._sched
        link = self._link
        while link is not None:
            now = sched.now_ns
            events = link.events()
            if events:
                self._on_link_events(events)
                if self._link is not link:  # the device rebooted while handling them
                    link = self._link
                    continue
            out = link.outgoing(now)
            if out:
                self._write(out)
            events = link.events()  # outgoing() polls: the session may have ended
            if not events:
                break
            self._on_link_events(events)
            link = self._link
        if link is None:
            return
        deadline = link.next_deadline_ns()
        watchdog = self.board.watchdog
        if watchdog.counting:
            quiet_at = self._last_heard_ns + self._quiet_ns
            if quiet_at <= now:
                _log.info("host silent for %d ms: watchdog stopped", self._quiet_ns // MS)
                watchdog.stop()
            else:
                deadline = min(deadline, quiet_at)
        self._arm(deadline)

    def _arm(self, deadline_ns: int) -> None:
        timer = self._timer
        if timer is not None:
            if timer_when_ns(timer) <= deadline_ns:
                return  # fires first; it re-arms for whatever is due then
            self._sched.cancel(timer)
        self._timer = self._sched.call_at(deadline_ns, self._on_timer)

    def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None:
            return
        self.bytes_sent += len(data)
        writer(data)

    def _on_link_events(self, events: list[LinkEvent]) -> None:
        if len(events) == 1 and type(events[0]) is Frame:
            self._on_frame(events[0], answer=True)  # the usual case: one request
            return
        # Frames before a LinkLost in this batch belong to a session that has ended: carry
        # them out, but never answer them (a later session must not see the answer).
        ended = -1
        for i, event in enumerate(events):
            if type(event) is LinkLost:
                ended = i
        for i, event in enumerate(events):
            kind = type(event)
            if kind is Frame:
                assert isinstance(event, Frame)
                self._on_frame(event, answer=i > ended)
            elif kind is LinkEstablished:
                assert isinstance(event, LinkEstablished)
                self._on_session_up(event)
            elif kind is LinkLost:
                assert isinstance(event, LinkLost)
                self._on_session_lost(event)
            elif kind is HandshakeFailed:
                assert isinstance(event, HandshakeFailed)
                _log.warning("handshake failed: %s", event.error)
            elif kind is Noise:
                assert isinstance(event, Noise)
                _log.debug("noise on the line: %r", event.data[:80])
            elif kind is CorruptFrame:
                assert isinstance(event, CorruptFrame)
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
        handles, self._handles = self._handles, {}
        for entry in handles.values():
            entry.handle.cancel()
        board.watchdog.stop()

    # -- requests ----------------------------------------------------------------------

    def _on_frame(self, frame: Frame, *, answer: bool) -> None:
        if frame.type is not _REQUEST:
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
        except _Refused as exc:
            if answer:
                self._refuse(rid, exc.code, exc.message)
            return
        except Exception as exc:  # the device's own bug: report it, keep serving
            _log.exception("request %s failed", cmd)
            if answer:
                self._refuse(rid, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            return
        if answer:
            # Response(result).to_payload(), without the dataclass in between.
            self._reply(rid, b"" if result is None else encode_payload({"result": result}))
            if cmd == "imaging.submit":
                self._watch_imaging(int(args["handle"]))

    def _execute(self, cmd: str, args: dict[str, Any], rid: int) -> Any:
        handler = self._commands.get(cmd)
        if handler is None:
            if cmd.startswith("sim."):
                if not self.sim:
                    raise _Refused(
                        ErrorCode.NOT_SUPPORTED, f"{cmd}: this device has no simulation commands"
                    )
                handler = self._sim_commands.get(cmd)
            if handler is None:
                raise _Refused(ErrorCode.UNKNOWN_COMMAND, f"no command {cmd!r}")
        return handler(args, rid)

    def _reply(self, rid: int, payload: bytes) -> None:
        link = self._link
        if link is None:
            return
        try:
            link.send(_RESPONSE, payload, rid)
        except LinkDown:
            return
        except PayloadTooLarge as exc:
            self._refuse(rid, ErrorCode.TOO_LARGE, str(exc))

    def _refuse(self, rid: int, code: ErrorCode, message: str) -> None:
        link = self._link
        if link is None:
            return
        try:
            link.send(FrameType.ERROR, ErrorReply(code, message[:200]).to_payload(), rid)
        except LinkDown:
            return

    # -- board commands ----------------------------------------------------------------

    def _cmd_snapshot(self, args: dict[str, Any], rid: int) -> Any:
        board = self.board
        return {
            "t_ns": self._sched.now_ns,
            "inputs": {str(pin): board.read_input(pin) for pin in DigitalInput},
            "analog": {str(ch): float(board.read_analog(ch)) for ch in AnalogChannel},
            "outputs": {str(out): on for out, on in board.outputs.items()},
            "reset_cause": str(board.reset_cause),
            "display": list(board.display),
            "imaging": self.pending_handles,
            "resets": board.resets,
        }

    def _cmd_output_set(self, args: dict[str, Any], rid: int) -> Any:
        output = _enum_arg(args, "output", Output)
        self.board.set_output(output, _bool(args, "on"))
        return None

    def _cmd_pickup_pulse(self, args: dict[str, Any], rid: int) -> Any:
        self.board.pulse_pickup()
        return None

    def _cmd_window_set(self, args: dict[str, Any], rid: int) -> Any:
        channel = _enum_arg(args, "channel", AnalogChannel)
        low, high = _number(args, "low"), _number(args, "high")
        if not low <= high:
            raise _bad(f"window [{low}, {high}] is empty")
        self._pending_windows.pop(str(channel), None)  # re-armed: an old crossing is moot
        self.board.set_window(channel, low, high)
        return None

    def _cmd_analog_read(self, args: dict[str, Any], rid: int) -> Any:
        channel = _enum_arg(args, "channel", AnalogChannel)
        return {"value": float(self.board.read_analog(channel))}

    def _cmd_display_show(self, args: dict[str, Any], rid: int) -> Any:
        rows = _arg(args, "rows")
        if (
            not isinstance(rows, list)
            or len(rows) != 2
            or not all(isinstance(r, str) for r in rows)
        ):
            raise _bad("'rows' must be a list of two text strings")
        self.board.show(rows[0], rows[1])
        return None

    def _cmd_imaging_submit(self, args: dict[str, Any], rid: int) -> Any:
        host_handle = _uint(args, "handle")
        job, page = _uint(args, "job"), _uint(args, "page")
        coverage = _number(args, "coverage_pct")
        if not 0.0 <= coverage <= 100.0:
            raise _bad(f"'coverage_pct' must be in [0, 100], got {coverage}")
        if host_handle in self._handles:
            raise _bad(f"handle {host_handle} is already pending")
        handle = self.board.submit(ImagePage(job, page, coverage))
        self._handles[host_handle] = _Imaging(host_handle, rid, handle)
        return None

    def _watch_imaging(self, host_handle: int) -> None:
        """After the submit's RESPONSE: report what the handle did so far, then follow it."""
        entry = self._handles.get(host_handle)
        if entry is None:
            return
        handle = entry.handle
        for event in list(handle.events):
            self._imaging_event(entry, event)
        handle.on_event(lambda _h, event: self._imaging_event(entry, event))
        handle.on_done(lambda _h: self._imaging_done(entry))

    def _imaging_event(self, entry: _Imaging, event: IoEvent) -> None:
        if self._handles.get(entry.host_handle) is not entry:
            return
        if event.kind == "imaging_started":
            self._event(
                "imaging",
                event.t_ns,
                {"handle": entry.host_handle, "state": "started"},
                entry.request_id,
            )

    def _imaging_done(self, entry: _Imaging) -> None:
        if self._handles.get(entry.host_handle) is not entry:
            return  # cancelled with its session, or the board reset
        del self._handles[entry.host_handle]
        handle = entry.handle
        data: dict[str, Any] = {"handle": entry.host_handle}
        if handle.state is IoState.DONE:
            data["state"] = "done"
        elif handle.state is IoState.FAILED:
            data["state"] = "failed"
            data["error"] = str(handle.error)
        else:
            return  # cancelled by the host: the cancel's RESPONSE said so
        self._event("imaging", self._sched.now_ns, data, entry.request_id)

    def _cmd_imaging_cancel(self, args: dict[str, Any], rid: int) -> Any:
        host_handle = _uint(args, "handle")
        entry = self._handles.pop(host_handle, None)
        cancelled = entry is not None and entry.handle.cancel()
        return {"cancelled": cancelled}

    def _cmd_watchdog_kick(self, args: dict[str, Any], rid: int) -> Any:
        self.board.kick_watchdog()
        return None

    def _cmd_board_reset(self, args: dict[str, Any], rid: int) -> Any:
        self._when_answered(lambda: self.board.reset(ResetCause.SOFTWARE))
        return None

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

    # -- simulation commands -----------------------------------------------------------

    def _sim_toner(self, args: dict[str, Any], rid: int) -> Any:
        pct = _number(args, "pct")
        if not 0.0 <= pct <= 100.0:
            raise _bad(f"'pct' must be in [0, 100], got {pct}")
        self.board.faults.set_toner_pct(pct)
        return None

    def _sim_replace_toner(self, args: dict[str, Any], rid: int) -> Any:
        self.board.faults.replace_toner()
        return None

    def _sim_tray(self, args: dict[str, Any], rid: int) -> Any:
        sheets = _uint(args, "sheets")
        capacity = self.board.config.tray.capacity_sheets
        if sheets > capacity:
            raise _bad(f"the tray holds at most {capacity} sheets, got {sheets}")
        self.board.faults.set_tray(sheets)
        return None

    def _sim_jam(self, args: dict[str, Any], rid: int) -> Any:
        self.board.faults.jam(_enum_arg(args, "at", JamPoint))
        return None

    def _sim_misfeed(self, args: dict[str, Any], rid: int) -> Any:
        self.board.faults.misfeed()
        return None

    def _sim_cover(self, args: dict[str, Any], rid: int) -> Any:
        self.board.faults.set_cover(_bool(args, "open"))
        return None

    def _sim_press(self, args: dict[str, Any], rid: int) -> Any:
        self.board.faults.press(_enum_arg(args, "button", Button))
        return None

    def _sim_heater(self, args: dict[str, Any], rid: int) -> Any:
        self.board.faults.set_heater_failed(_bool(args, "failed"))
        return None

    def _sim_observe(self, args: dict[str, Any], rid: int) -> Any:
        board = self.board
        return {
            "toner_pct": float(board.toner_level_pct),
            "tray_sheets": board.tray_sheets,
            "sheets_picked": board.sheets_picked,
            "sheets_delivered": board.sheets_delivered,
            "sheets_removed": board.sheets_removed,
            "fuser_c": float(board.fuser_temp_c),
        }

    def _sim_power_cycle(self, args: dict[str, Any], rid: int) -> Any:
        self._when_answered(self.board.power_cycle)
        return None

    # -- SMP ---------------------------------------------------------------------------

    def _on_smp_line(self, line: bytes) -> None:
        flash = self.flash
        if flash is None:
            return
        self.smp_lines += 1
        reply = flash.handle_smp_line(line)
        if reply:
            self._write(reply)
        if flash.reset_requested:
            _log.info("SMP reset: rebooting")
            # A software reset of the whole device: the board resets (outputs off,
            # requests failed, ISRs detached) and its reset handler reboots us.
            self.board.reset(ResetCause.SOFTWARE)


__all__ = ["SAFE_OUTPUTS", "LineDemux", "VirtualDevice", "link_timings"]
