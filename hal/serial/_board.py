"""The serial-attached board: :class:`hal.Board` over the wire protocol, on any pyserial URL.

``SerialBoard(url, config)`` opens ``url`` with :func:`serial.serial_for_url` (a device
path, ``socket://host:port``, ``rfc2217://host:port``, ``spy://...``), brings the link up
(HELLO), reads everything the board holds (``board.snapshot``) and returns a board the
firmware runs on exactly as it runs on the emulated one. The command and event
vocabulary is docs/board-commands.md; the link is docs/protocol.md (:mod:`hal.serial._link`).

Threads and time
----------------
* One **reader thread** reads the port and hands every chunk to the scheduler's thread
  with :meth:`Scheduler.post_threadsafe`; nothing else crosses threads on the way in.
* The :class:`~hal.serial._link.LinkEndpoint` lives on the **scheduler's thread**: bytes in,
  timers (one scheduler timer at :meth:`~hal.serial._link.LinkEndpoint.next_deadline_ns`),
  requests out. The scheduler runs on a :class:`WallClock` (made for you when no
  scheduler is given).
* Writes never block the scheduler: on a plain serial device or pty the bytes go out
  with one non-blocking ``write(2)`` when the line is idle (on a Linux pty followed by
  one ``sched_yield`` while that is cheap, see :mod:`hal.serial._pty_yield`); whatever does
  not fit, and
  everything on other kinds of port (sockets, RFC 2217) or on a *paced* line, goes to
  a **writer thread** (which coalesces what a slow line has not taken yet). ``pace=True``
  makes the writer emulate a UART at ``baud`` (a pty or a socket ignores the baud rate).
  A request goes to the line as soon as it is made. ``socket://`` ports get
  ``TCP_NODELAY`` (pyserial leaves Nagle's algorithm on, which delays small frames by
  tens of milliseconds).

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
* ``submit`` returns an :class:`IoHandle` at once; ``imaging`` events (matched by the
  host-chosen ``handle``) post ``imaging_started``, complete or fail it.
* ``faults`` is a :class:`FaultInjector` sending ``sim.*`` commands, only when the
  device's HELLO announces ``"sim"`` (then ``"faults"`` is in ``capabilities``).
* :meth:`query` is a blocking request for tools and tests (it runs the scheduler until
  the answer comes); :meth:`observe` reads ``sim.observe``; :meth:`power_cycle` gives a
  test a fresh device.

Link loss, reconnection and device reset (docs/board-commands.md, last section)
------------------------------------------------------------------------------
* **Down** (silence, no progress, the port lost, the peer restarting): every request in
  flight is dropped (it will never be answered), commands are no longer sent (their
  state is kept), and the ``link`` line is raised with ``LinkChange(up=False)``. The
  reader thread tries to reopen a port that failed.
* **Up with the same boot nonce** (a *resync*): ``board.snapshot`` is read; an edge is
  raised for every input whose level changed meanwhile; imaging handles the device no
  longer holds fail; the commanded outputs, display and armed windows are applied again
  where the device differs; simulation commands queued meanwhile go out; then ``link``
  is raised with ``LinkChange(up=True)``.
* **A new boot nonce** (the device rebooted), a ``reset`` event inside a synchronised
  session, or a snapshot counting more ``resets`` than we knew of (a board reset while
  we were away, without a reboot): a board reset, as the emulated board's watchdog does:
  pending handles fail, outputs read off, windows disarmed, ``irq.reset()``,
  ``reset_cause`` set (the cause the new boot's ``reset`` event names when it is
  ``watchdog`` or ``software``, else ``device_reset``; ``power_on`` after
  :meth:`power_cycle`), then the reset handler runs (the firmware boots again).

Errors (all under :class:`hal.serial._errors.PrinterLinkError`): :class:`PortUnavailable`
(the port cannot be opened; also a :class:`ConnectionError`), :class:`NoDeviceAnswer`
(nothing completed the handshake within ``open_timeout_s``; a :class:`LinkTimeout`),
:class:`BoardMismatch` (the device is another board than the board file), the
:class:`~hal.serial._errors.IncompatiblePeer` family for a HELLO we cannot talk to, and
the :class:`~hal.serial._errors.DeviceRejected` family for ERROR answers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import serial

from boards import BoardConfig, BoardFileError, load_board
from hal._board import (
    ANALOG_IRQ_LINE,
    DISPLAY_COLUMNS,
    AnalogChannel,
    Crossing,
    DigitalInput,
    ImagePage,
    LinkChange,
    Output,
    ResetCause,
    ResetHandler,
    WindowCrossing,
)
from hal._clock import WallClock
from hal._faults import Button, FaultInjector, JamPoint
from hal._io import IoError, IoEvent, IoHandle
from hal._irq import InterruptController, IrqLineSpec
from hal._scheduler import PRIORITY_LATE, Scheduler, Timer, timer_when_ns
from hal.serial._errors import (
    DeviceRejected,
    ErrorCode,
    IncompatiblePeer,
    LinkDown,
    LinkDownReason,
    LinkFailure,
    LinkTimeout,
    MalformedPayload,
    NotSupported,
    PrinterLinkError,
    UnknownCommand,
)
from hal.serial._link import HandshakeFailed, LinkEndpoint, LinkEstablished, LinkLost, LinkState
from hal.serial._pty_yield import PtyYield
from hal.serial._wire import (
    CorruptFrame,
    ErrorReply,
    Event,
    Frame,
    FrameDecoder,
    FrameType,
    Hello,
    Noise,
    Role,
    encode_payload,
    parse_response,
)

__all__ = [
    "BoardMismatch",
    "NoDeviceAnswer",
    "PortTransport",
    "PortUnavailable",
    "SerialBoard",
    "SerialBoardStats",
    "TraceHook",
    "Transport",
]

log = logging.getLogger("printer_emu.serial_board")

_MS = 1_000_000
_S = 1_000_000_000

TraceHook = Callable[[int, str, str, int, int], None]
"""``trace(t_ns, direction, frame_type, seq, request_id)`` for every frame on the line:
``direction`` is ``"tx"`` or ``"rx"``, ``frame_type`` the :class:`FrameType` name."""

EventListener = Callable[[Event, int], None]
"""``listener(event, host_t_ns)`` for every device EVENT, as it arrives."""


# --- errors ------------------------------------------------------------------------------


class PortUnavailable(LinkFailure, ConnectionError):
    """The port cannot be opened: no such device, no permission, connection refused."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot open port {url}: {reason}")
        self.url = url


class NoDeviceAnswer(LinkTimeout):
    """The port opened, but no device completed the handshake (and the first
    ``board.snapshot``) within the time allowed."""

    def __init__(self, url: str, timeout_s: float, detail: str = "") -> None:
        more = f" ({detail})" if detail else ""
        super().__init__(
            f"no printer board answered on {url} within {timeout_s:g} s{more}: is a device "
            "there, running the serial protocol?"
        )
        self.url = url


class BoardMismatch(IncompatiblePeer):
    """The device says it is another board than the board file describes (or one that
    no board file describes)."""


# --- transports --------------------------------------------------------------------------


class Transport(Protocol):
    """Bytes to and from the device. ``start`` hands it three callbacks that it must
    call **on the scheduler's thread** (a threaded transport posts them with
    :meth:`Scheduler.post_threadsafe`): ``on_bytes(data)`` for what arrived,
    ``on_lost(error)`` when the line failed, ``on_reopened()`` when it works again.
    ``write`` is called on the scheduler's thread and must not block it."""

    @property
    def name(self) -> str: ...

    def start(
        self,
        on_bytes: Callable[[bytes], None],
        on_lost: Callable[[Exception], None],
        on_reopened: Callable[[], None],
    ) -> None: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


def _is_linux_pty(fd: int | None) -> bool:
    """Whether ``fd`` is a Linux pty (whose bytes reach the reader via a kernel worker)."""
    if fd is None or not sys.platform.startswith("linux"):
        return False
    try:
        return os.ttyname(fd).startswith("/dev/pts/")
    except OSError:
        return False


def _open_port(url: str, baud: int | None, timeout_s: float) -> Any:
    kwargs: dict[str, Any] = {"timeout": timeout_s}
    if baud is not None:
        kwargs["baudrate"] = baud
    try:
        port = serial.serial_for_url(url, **kwargs)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortUnavailable(url, str(exc) or type(exc).__name__) from exc
    # pyserial's socket:// leaves Nagle's algorithm on: a small frame would wait for the
    # peer's delayed ack (tens of ms), far beyond the firmware's edge margins.
    sock = getattr(port, "_socket", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return port


class PortTransport:
    """A pyserial port with a reader thread and, where needed, a writer thread.

    Raises :class:`PortUnavailable` when the port cannot be opened. After the line fails
    it is reopened every ``reopen_interval_s`` until :meth:`close` (``reopen=False``:
    never).

    On a Linux pty the scheduler's thread yields the CPU once after each direct
    ``write(2)``, while yields are cheap (:class:`hal.serial._pty_yield.PtyYield`: the kernel
    moves a pty's bytes from a worker that otherwise waits for our bookkeeping after the
    write)."""

    _READ_TIMEOUT_S = 0.05
    _PACE_CHUNK = 16

    def __init__(
        self,
        url: str,
        scheduler: Scheduler,
        *,
        baud: int | None = None,
        pace: bool = False,
        reopen: bool = True,
        reopen_interval_s: float = 0.25,
    ) -> None:
        if pace and not baud:
            raise ValueError("pace=True needs a baud rate")
        self._url = url
        self._scheduler = scheduler
        self._baud = baud
        self._pace = pace
        self._reopen = reopen
        self._reopen_interval_s = reopen_interval_s
        self._port: Any
        self._write_fd: int | None
        """The descriptor :meth:`write` writes to directly, or ``None`` (writer thread)."""
        self._yield_after_write: PtyYield
        self._adopt(_open_port(url, baud, self._READ_TIMEOUT_S))
        # The condition's plain lock is taken directly on the per-write path (a C call; a
        # Condition's own __enter__ is Python).
        self._mutex = threading.Lock()
        self._lock = threading.Condition(self._mutex)
        self._queue: deque[bytes] = deque()
        self._writing = False
        self._line_ok = True
        self._closing = threading.Event()
        self._abort_r, self._abort_w = os.pipe()
        self._line_free_s = 0.0
        self._reader: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self.bytes_written = 0
        self.bytes_read = 0
        self.bytes_dropped = 0
        """Written while the line was down (lost, as they would be on a cut cable)."""

    @property
    def name(self) -> str:
        return self._url

    @property
    def port(self) -> Any:
        """The pyserial object in use (it changes when the line is reopened)."""
        return self._port

    def _adopt(self, port: Any) -> None:
        """Make ``port`` the line, with what the write path derives from it."""
        self._port = port
        fd = self._fd()
        self._write_fd = None if self._pace else fd
        self._yield_after_write = PtyYield(_is_linux_pty(fd))

    def _fd(self) -> int | None:
        """The file descriptor to read and write directly: plain posix serial ports and
        ptys only (``spy://`` and the rest keep their own logic in read/write)."""
        port = self._port
        if type(port) is serial.Serial and getattr(port, "fd", None) is not None:
            return int(port.fd)
        return None

    def start(
        self,
        on_bytes: Callable[[bytes], None],
        on_lost: Callable[[Exception], None],
        on_reopened: Callable[[], None],
    ) -> None:
        self._on_bytes = on_bytes
        self._on_lost = on_lost
        self._on_reopened = on_reopened
        self._reader = threading.Thread(
            target=self._read_loop, name=f"serial-reader {self._url}", daemon=True
        )
        self._writer = threading.Thread(
            target=self._write_loop, name=f"serial-writer {self._url}", daemon=True
        )
        self._reader.start()
        self._writer.start()

    # -- writing (scheduler thread in, writer thread out) -----------------------------

    def write(self, data: bytes) -> None:
        with self._mutex:
            if not self._line_ok:  # the line failed, or close() began
                self.bytes_dropped += len(data)
                return
            fd = self._write_fd
            written = False
            if fd is not None and not self._queue and not self._writing:
                try:
                    n = os.write(fd, data)
                except BlockingIOError:
                    n = 0
                except OSError:
                    self.bytes_dropped += len(data)
                    return  # the line is gone; the reader reports it
                self.bytes_written += n
                written = n >= len(data)
                if not written:
                    data = data[n:]
            if not written:
                self._queue.append(data)
                self._lock.notify()
                return
        self._yield_after_write()  # let the pty's worker move the bytes now

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing.is_set():
                    self._lock.wait()
                if self._closing.is_set():
                    return
                data = b"".join(self._queue)
                self._queue.clear()
                self._writing = True
                port = self._port
            try:
                if self._pace:
                    self._paced_write(port, data)
                else:
                    port.write(data)
                self.bytes_written += len(data)
            except Exception as exc:  # the line failed: the reader reports it
                log.debug("write to %s failed: %s", self._url, exc)
            finally:
                with self._lock:
                    self._writing = False

    def _paced_write(self, port: Any, data: bytes) -> None:
        """Emulate a UART: each piece is written when its last byte would have arrived
        at ``baud`` (10 bits a byte)."""
        assert self._baud
        byte_s = 10.0 / self._baud
        for i in range(0, len(data), self._PACE_CHUNK):
            piece = data[i : i + self._PACE_CHUNK]
            now = time.monotonic()
            self._line_free_s = max(now, self._line_free_s) + len(piece) * byte_s
            delay = self._line_free_s - now
            if delay > 0 and self._closing.wait(delay):
                return
            port.write(piece)

    # -- reading (reader thread) --------------------------------------------------------

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            try:
                fd = self._fd()
                if fd is not None:
                    self._read_fd(fd)
                    continue
                data = self._read_port()
            except Exception as exc:
                if self._closing.is_set():
                    return
                self._line_lost(exc)
                if not self._reopen or not self._reopen_line():
                    return
                continue
            if data:
                self.bytes_read += len(data)
                self._scheduler.post_threadsafe(functools.partial(self._on_bytes, data))

    def _read_fd(self, fd: int) -> None:
        """Read a plain serial device or pty: returns when :meth:`close` aborts the
        wait, raises when the line fails. Kept tight on purpose: after handing bytes to
        the scheduler it goes straight back to ``select(2)``, which releases the GIL the
        woken scheduler thread needs next."""
        abort = self._abort_r
        fds = [fd, abort]
        wait = select.select
        read = os.read
        post = self._scheduler.post_threadsafe
        partial = functools.partial
        on_bytes = self._on_bytes
        while True:
            ready, _, _ = wait(fds, (), ())
            if abort in ready:
                return
            try:
                data = read(fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                raise serial.SerialException("device disconnected (end of file)")
            self.bytes_read += len(data)
            post(partial(on_bytes, data))

    def _read_port(self) -> bytes:
        """Read any other pyserial port (its own timeout bounds the wait)."""
        port = self._port
        data = bytes(port.read(1))
        if data:
            waiting = port.in_waiting
            if waiting:
                data += bytes(port.read(waiting))
        return data

    def _line_lost(self, exc: Exception) -> None:
        with self._lock:
            self._line_ok = False
            self._queue.clear()
        # Tell the scheduler first: closing can take a while (pyserial's socket:// close
        # sleeps 0.3 s "for quick reconnects"), and the firmware must know at once.
        self._scheduler.post_threadsafe(functools.partial(self._on_lost, exc))
        with contextlib.suppress(Exception):
            self._port.close()

    def _reopen_line(self) -> bool:
        while not self._closing.wait(self._reopen_interval_s):
            try:
                port = _open_port(self._url, self._baud, self._READ_TIMEOUT_S)
            except PortUnavailable:
                continue
            with self._lock:
                if self._closing.is_set():
                    with contextlib.suppress(Exception):
                        port.close()
                    return False
                self._adopt(port)
                self._line_ok = True
            self._scheduler.post_threadsafe(self._on_reopened)
            return True
        return False

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop both threads and close the port. Idempotent."""
        if self._closing.is_set():
            return
        with self._lock:
            self._closing.set()
            self._line_ok = False
            self._lock.notify_all()
        with contextlib.suppress(OSError):
            os.write(self._abort_w, b"x")
        port = self._port
        cancel = getattr(port, "cancel_read", None)
        if cancel is not None:
            with contextlib.suppress(Exception):
                cancel()
        for thread in (self._reader, self._writer):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=2.0)
        with contextlib.suppress(Exception):
            self._port.close()
        for fd in (self._abort_r, self._abort_w):
            with contextlib.suppress(OSError):
                os.close(fd)


# --- the board -----------------------------------------------------------------------------


@dataclass(slots=True)
class SerialBoardStats:
    """Counters since the board was opened (for logs, tests and benchmarks)."""

    requests: int = 0
    answered: int = 0
    rejected: int = 0
    """ERROR answers (each is also logged)."""
    events: int = 0
    unknown_events: int = 0
    stale_edges: int = 0
    """``input`` events that repeated the level already known (dropped)."""
    not_sent: int = 0
    """Firmware commands not sent because the link was down (state is applied again at
    the resync)."""
    link_losses: int = 0
    resyncs: int = 0
    device_resets: int = 0
    port_losses: int = 0
    noise_bytes: int = 0
    corrupt_frames: int = 0


# Enum members as globals for the per-frame path (a class attribute of an Enum is several
# times dearer to look up in Python 3.11).
_UP = LinkState.UP
_REQUEST = FrameType.REQUEST
_RESPONSE = FrameType.RESPONSE
_ERROR = FrameType.ERROR
_EVENT = FrameType.EVENT
_INPUT_BY_NAME: dict[object, DigitalInput] = {str(pin): pin for pin in DigitalInput}


@dataclass(slots=True)
class _Pending:
    cmd: str
    on_result: Callable[[Any], None] | None
    on_error: Callable[[PrinterLinkError], None] | None


@dataclass(slots=True)
class _Snapshot:
    t_ns: int
    inputs: dict[DigitalInput, bool]
    analog: dict[AnalogChannel, float]
    outputs: dict[Output, bool]
    reset_cause: ResetCause
    display: tuple[str, str] | None
    imaging: frozenset[int] | None
    resets: int | None


class _Sync:
    """How a session that came up is synchronised."""

    OPEN = "open"
    RESYNC = "resync"
    REBOOT = "reboot"


_LINK_DEFAULTS: dict[str, int] = {
    "window": 8,
    "rto_ns": 60 * _MS,
    "heartbeat_ns": 200 * _MS,
    "dead_after_ns": 1 * _S,
    "max_payload": 1024,
}
"""Link timings when no board file is given yet (those of the shipped boards)."""

_SNAPSHOT_RETRY_NS = 100 * _MS
"""After a refused ``board.snapshot``, how long until it is asked again."""

_TYPICAL_PAYLOAD = 256
"""Frames of the board vocabulary are far below this; the retransmission timeout on a
slow line is sized for a window of them."""


def _link_params(config: BoardConfig | None, baud: int | None) -> dict[str, int]:
    if config is None:
        params = dict(_LINK_DEFAULTS)
    else:
        s = config.serial
        params = {
            "window": s.window,
            "rto_ns": round(s.retransmit_ms * _MS),
            "heartbeat_ns": round(s.heartbeat_ms * _MS),
            "dead_after_ns": round(s.link_dead_ms * _MS),
            "max_payload": max(512, s.max_payload),
        }
    if baud:
        # A real (or paced) UART: a window of frames takes time on the wire each way.
        wire_bytes = params["window"] * (_TYPICAL_PAYLOAD + 24)
        line_rto = 2 * wire_bytes * 10 * _S // baud + 20 * _MS
        params["rto_ns"] = max(params["rto_ns"], line_rto)
        params["dead_after_ns"] = max(params["dead_after_ns"], 4 * params["rto_ns"])
    return params


def _irq_lines(config: BoardConfig) -> list[IrqLineSpec]:
    return [IrqLineSpec(c.line, name, c.priority) for name, c in config.irq.items()]


def _reset_cause(text: object) -> ResetCause:
    try:
        return ResetCause(str(text))
    except ValueError:
        return ResetCause.DEVICE_RESET


class SerialBoard:
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
        :class:`~hal.serial._link.LinkEndpoint` parameters.

        Raises :class:`PortUnavailable`, :class:`NoDeviceAnswer`, :class:`BoardMismatch`
        or another :class:`~hal.serial._errors.IncompatiblePeer`; never hangs longer than
        ``open_timeout_s`` (plus the port's own open time).
        """
        if scheduler is None:
            scheduler = Scheduler(WallClock())
        if transport is None and scheduler.is_virtual:
            raise ValueError(
                "a serial board runs in wall time: give it a Scheduler(WallClock()) "
                "(or no scheduler)"
            )
        self._url = url
        self._config: BoardConfig | None = config
        self._scheduler = scheduler
        self._baud = baud
        self._trace = trace
        self._strict = strict
        self._analog_poll_ns = None if not analog_poll_s else round(analog_poll_s * _S)
        self._irq: InterruptController | None = None
        if config is not None:
            self._irq = InterruptController(scheduler, _irq_lines(config))
        params: dict[str, Any] = _link_params(config, baud)
        params.update(link_options or {})
        self._link = LinkEndpoint(
            Role.HOST, board=config.name if config is not None else "", **params
        )
        self.stats = SerialBoardStats()
        self.last_error: PrinterLinkError | None = None
        """The last refusal or protocol error (also logged)."""
        self.errors: deque[str] = deque(maxlen=50)
        """The last errors, as one-line texts."""
        self.hello: Hello | None = None
        """The device's HELLO of the current (or last) session."""

        # The board as we know it.
        self._inputs: dict[DigitalInput, bool] = dict.fromkeys(DigitalInput, False)
        self._analog: dict[AnalogChannel, float] = dict.fromkeys(AnalogChannel, 0.0)
        self._outputs: dict[Output, bool] = dict.fromkeys(Output, False)
        self._display: tuple[str, str] = ("", "")
        self._windows: dict[AnalogChannel, tuple[float, float]] = {}
        self._reset_cause = ResetCause.POWER_ON
        self._reset_handler: ResetHandler | None = None
        self._handles: dict[int, IoHandle] = {}
        self._cancel_later: set[int] = set()
        self._next_handle = 0
        self._sim_backlog: deque[tuple[str, dict[str, Any]]] = deque()
        self._event_listeners: list[EventListener] = []
        self.resets = 0
        """Board resets seen (reboots and device-side resets)."""

        # Link and session.
        self._pending: dict[int, _Pending] = {}
        self._next_rid = 0
        self._synced = False
        """The firmware's view: True between a completed sync and the next link loss."""
        self._sync_kind: str | None = None
        self._boot_nonce: int | None = None
        self._known_resets: int | None = None
        """The device's board resets as its last snapshot counted them (or ``None``)."""
        self._announced_cause: ResetCause | None = None
        """The cause a new boot's ``reset`` event gave, until its snapshot arrives."""
        self._capabilities: frozenset[str] = frozenset()
        self._open_error: PrinterLinkError | None = None
        self._power_cycling = False
        self._opening = True
        self._closed = False
        self._timer: Timer | None = None
        self._pumping = False
        self._late_pump: Timer | None = None
        """The pump that sends what received bytes called for (acks), once the
        instant's interrupts and firmware have run."""
        self._poll_timer: Timer | None = None
        self._poll_turn = 0
        self._tx_decoder = FrameDecoder(0xFFFF) if trace is not None else None
        self._rx_decoder = FrameDecoder(0xFFFF) if trace is not None else None

        self._transport: Transport = (
            transport
            if transport is not None
            else PortTransport(url, scheduler, baud=baud, pace=pace)
        )
        self._transport.start(self._on_bytes, self._on_transport_lost, self._on_transport_back)
        try:
            self._pump()
            reached = scheduler.run_until(
                lambda: self._synced or self._open_error is not None,
                timeout_ns=round(open_timeout_s * _S),
            )
            if self._open_error is not None:
                raise self._open_error
            if not reached:
                detail = ""
                if self._link.state is LinkState.UP:
                    detail = "the link came up but board.snapshot was not answered"
                elif self._link.stats.noise_bytes:
                    detail = f"{self._link.stats.noise_bytes} bytes of noise, no frame"
                raise NoDeviceAnswer(url, open_timeout_s, detail)
        except BaseException:
            self.close()
            raise
        self._opening = False

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
        if self._closed:
            return
        self._closed = True
        for timer in (self._timer, self._poll_timer):
            if timer is not None:
                Scheduler.cancel(timer)
        self._transport.close()

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
        return frozenset({"faults"}) if "sim" in self._capabilities else frozenset()

    @property
    def faults(self) -> FaultInjector | None:
        return _SimFaults(self) if "sim" in self._capabilities else None

    @property
    def reset_cause(self) -> ResetCause:
        return self._reset_cause

    # -- beyond the contract ---------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    @property
    def link(self) -> LinkEndpoint:
        """The link endpoint (its ``stats`` and ``state``); scheduler thread only."""
        return self._link

    @property
    def transport(self) -> Transport:
        return self._transport

    @property
    def synced(self) -> bool:
        """True while the link is up and the board's state has been read."""
        return self._synced

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

    def set_trace(self, trace: TraceHook | None) -> None:
        """Call ``trace(t_ns, direction, frame_type, seq, request_id)`` for every frame
        from now on (``None``: stop). Costs nothing while unset."""
        self._trace = trace
        fresh = trace is not None
        self._tx_decoder = FrameDecoder(0xFFFF) if fresh else None
        self._rx_decoder = FrameDecoder(0xFFFF) if fresh else None

    def add_event_listener(self, listener: EventListener) -> None:
        """Call ``listener(event, host_t_ns)`` for every device EVENT (benchmarks,
        tracing)."""
        self._event_listeners.append(listener)

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
        self._command(
            "window.set",
            {"channel": str(channel), "low": float(low_bound), "high": float(high_bound)},
        )

    def set_output(self, output: Output, on: bool) -> None:
        output = Output(output)
        if self._outputs[output] == on:
            return
        self._outputs[output] = bool(on)
        self._command("output.set", {"output": str(output), "on": bool(on)})

    def output(self, output: Output) -> bool:
        return self._outputs[Output(output)]

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

    def submit(self, page: ImagePage) -> IoHandle:
        handle = IoHandle(page, self._cancel_imaging)
        self._next_handle += 1
        number = self._next_handle
        if not self._synced:
            self.stats.not_sent += 1
            self._scheduler.call_soon(
                lambda: handle.fail(IoError("the link to the board is down"))
            )
            return handle
        self._handles[number] = handle
        args = {
            "handle": number,
            "job": int(page.job),
            "page": int(page.page),
            "coverage_pct": float(page.coverage_pct),
        }

        def refused(error: PrinterLinkError) -> None:
            if self._handles.pop(number, None) is handle:
                handle.fail(IoError(f"imaging.submit refused: {error}"))
            if isinstance(error, DeviceRejected):
                self._firmware_command_refused("imaging.submit", args, error)

        self._send("imaging.submit", args, None, refused)
        return handle

    def _cancel_imaging(self, handle: IoHandle) -> None:
        number = next((n for n, h in self._handles.items() if h is handle), None)
        if number is None:
            return
        del self._handles[number]
        if self._synced:
            self._send("imaging.cancel", {"handle": number}, None, _ignore_error)
        else:
            self._cancel_later.add(number)

    # -- requests ------------------------------------------------------------------------

    def request(
        self,
        cmd: str,
        args: dict[str, Any] | None = None,
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[PrinterLinkError], None] | None = None,
    ) -> None:
        """Send ``cmd`` now; ``on_result(result)`` or ``on_error(exc)`` runs on the
        scheduler's thread when it is answered (``on_error(LinkDown)`` if the session
        ends first). Raises :class:`LinkDown` when the link is not up."""
        if self._link.state is not _UP:
            raise LinkDown(LinkDownReason.NOT_CONNECTED, f"{self._url}: the link is down")
        self._send(cmd, args, on_result, on_error)

    def query(self, cmd: str, args: dict[str, Any] | None = None, timeout_s: float = 2.0) -> Any:
        """Send ``cmd`` and run the scheduler until it is answered; return the result.

        For tools and tests: call it from the scheduler's thread *between* runs, never
        from a callback. Waits for the board to be synchronised first. Raises the
        :class:`DeviceRejected` subclass of an ERROR answer, :class:`LinkDown`, or
        :class:`LinkTimeout` after ``timeout_s``."""
        deadline_ns = self._scheduler.now_ns + round(timeout_s * _S)
        if not self._synced:
            self._scheduler.run_until(
                lambda: self._synced, timeout_ns=max(0, deadline_ns - self._scheduler.now_ns)
            )
            if not self._synced:
                raise LinkTimeout(f"{cmd}: the board on {self._url} is not connected")
        answer: list[tuple[bool, Any]] = []
        self._send(cmd, args, lambda r: answer.append((True, r)),
                   lambda e: answer.append((False, e)))
        self._scheduler.run_until(
            lambda: bool(answer), timeout_ns=max(0, deadline_ns - self._scheduler.now_ns)
        )
        if not answer:
            raise LinkTimeout(f"{cmd}: no answer from {self._url} within {timeout_s:g} s")
        ok, value = answer[0]
        if not ok:
            raise value
        return value

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
        log.warning("%s: the device can be neither power-cycled nor reset: tidying up",
                    self._url)
        faults = self.faults
        if faults is not None:
            faults.set_heater_failed(False)
            faults.set_cover(True)
            faults.set_cover(False)
            faults.replace_toner()
            faults.set_tray(self.config.tray.loaded_sheets)
            self.query("sim.observe", None, timeout_s)  # all of the above has been done

    def _send(
        self,
        cmd: str,
        args: dict[str, Any] | None,
        on_result: Callable[[Any], None] | None,
        on_error: Callable[[PrinterLinkError], None] | None,
    ) -> None:
        rid = self._new_request_id()
        # Request(cmd, args or {}).to_payload(), without the dataclass in between.
        payload = encode_payload({"cmd": cmd, "args": args} if args else {"cmd": cmd})
        try:
            self._link.send(_REQUEST, payload, rid)
        except LinkDown as exc:
            if on_error is not None:
                on_error(exc)
            return
        self._pending[rid] = _Pending(cmd, on_result, on_error)
        self.stats.requests += 1
        self._want_flush()

    def _new_request_id(self) -> int:
        rid = self._next_rid
        while True:
            rid = rid % 0xFFFF + 1
            if rid not in self._pending:
                self._next_rid = rid
                return rid

    def _command(self, cmd: str, args: dict[str, Any] | None) -> None:
        """A fire-and-forget command of the firmware."""
        if not self._synced:
            self.stats.not_sent += 1
            return

        def refused(error: PrinterLinkError) -> None:
            if isinstance(error, DeviceRejected):
                self._firmware_command_refused(cmd, args, error)

        self._send(cmd, args, None, refused)

    def _firmware_command_refused(
        self, cmd: str, args: dict[str, Any] | None, error: DeviceRejected
    ) -> None:
        self._note_error(error, f"the device refused the firmware's {cmd} {args or {}}: {error}")
        if self._strict:
            raise error

    def _note_error(self, error: PrinterLinkError, text: str) -> None:
        repeated = bool(self.errors) and self.errors[-1] == text
        self.last_error = error
        self.errors.append(text)
        if not repeated:  # a peer we cannot talk to says so at every HELLO
            log.error("%s: %s", self._url, text)

    # -- simulation commands (the FaultInjector) ---------------------------------------

    def _sim(self, cmd: str, args: dict[str, Any] | None = None) -> None:
        if "sim" not in self._capabilities:
            raise RuntimeError(f"the device on {self._url} offers no simulation commands")
        if not self._synced:
            self._sim_backlog.append((cmd, args or {}))
            return
        self._send_sim(cmd, args or {})

    def _send_sim(self, cmd: str, args: dict[str, Any]) -> None:
        def done(_: Any) -> None:
            if cmd in _SIM_CHANGES_READINGS:
                self._poll_analog()  # the fault changed a reading: read it at once

        def refused(error: PrinterLinkError) -> None:
            if isinstance(error, DeviceRejected):
                self._note_error(error, f"the device refused {cmd} {args}: {error}")
            else:
                log.warning("%s: %s lost with the link", self._url, cmd)

        self._send(cmd, args, done, refused)

    # -- the link: bytes in, bytes out, timers -----------------------------------------

    def _on_bytes(self, data: bytes) -> None:
        if self._closed:
            return
        if self._rx_decoder is not None:
            self._trace_frames(self._rx_decoder, data, "rx")
        link = self._link
        link.receive(data, self._scheduler.now_ns)
        # Deliver now; send (the acks) after this instant's ISRs and firmware have run:
        # a write here would put a syscall — and on a pty a CPU yield — between a device
        # event and its ISR. Whatever the firmware sends meanwhile goes in the same write.
        events = link.events()
        if events:
            self._pumping = True
            try:
                for event in events:
                    self._on_link_event(event)
            finally:
                self._pumping = False
        if self._late_pump is None and not self._closed:
            # Only when there is something to send, or a deadline before the timer's
            # (a late pump would do nothing else): usually a RESPONSE's delayed ack
            # falls after the timer that runs already.
            timer = self._timer
            if timer is None or link.next_deadline_ns() < timer_when_ns(timer):
                self._late_pump = self._scheduler.call_soon(self._pump_late, PRIORITY_LATE)

    def _pump_late(self) -> None:
        self._late_pump = None
        self._pump()

    def _want_flush(self) -> None:
        """A frame was queued: send it now (no waiting for a later turn of the loop;
        the transport coalesces what a slow line has not taken yet). Inside
        :meth:`_pump` the loop sends it once the delivered frames are handled."""
        if not self._pumping:
            self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _pump(self) -> None:
        """Handle what the link delivered, write what it has to send, until both are
        empty; then make sure a timer runs by the link's next deadline."""
        if self._closed or self._pumping:
            return
        link = self._link
        scheduler = self._scheduler
        self._pumping = True
        try:
            events = link.events()
            while True:
                for event in events:
                    self._on_link_event(event)
                if self._closed:
                    return
                out = link.outgoing(scheduler.now_ns)
                if out:
                    if self._tx_decoder is not None:
                        self._trace_frames(self._tx_decoder, out, "tx")
                    self._transport.write(out)
                events = link.events()  # outgoing() polls: a session may have ended
                if not events:
                    break
        finally:
            self._pumping = False
        deadline = link.next_deadline_ns()
        timer = self._timer
        if timer is not None:
            if timer_when_ns(timer) <= deadline:
                return  # it fires first, and arms the next one then
            Scheduler.cancel(timer)
        self._timer = scheduler.call_at(deadline, self._on_timer)

    def _trace_frames(self, decoder: FrameDecoder, data: bytes, direction: str) -> None:
        trace = self._trace
        assert trace is not None
        now = self._scheduler.now_ns
        for item in decoder.feed(data):
            if type(item) is Frame:
                trace(now, direction, item.type.name, item.seq, item.request_id)

    def _on_transport_lost(self, error: Exception) -> None:
        if self._closed:
            return
        self.stats.port_losses += 1
        log.warning("%s: the line failed (%s); reopening", self._url, error)
        if self._opening and self._open_error is None:
            self._open_error = PortUnavailable(self._url, f"the line failed: {error}")
        self._link.reset(self._scheduler.now_ns)
        self._pump()

    def _on_transport_back(self) -> None:
        if self._closed:
            return
        log.info("%s: the line is back", self._url)
        self._link.reset(self._scheduler.now_ns)
        self._pump()

    def _on_link_event(self, event: object) -> None:
        kind = type(event)
        if kind is Frame:
            assert isinstance(event, Frame)
            self._on_frame(event)
        elif kind is LinkEstablished:
            assert isinstance(event, LinkEstablished)
            self._on_established(event)
        elif kind is LinkLost:
            assert isinstance(event, LinkLost)
            self._on_lost(event)
        elif kind is HandshakeFailed:
            assert isinstance(event, HandshakeFailed)
            if self._opening:
                self._open_error = event.error
            else:
                self._note_error(event.error, f"handshake failed: {event.error}")
        elif kind is Noise:
            assert isinstance(event, Noise)
            self.stats.noise_bytes += len(event.data)
            log.debug("%s: noise on the line: %r", self._url, event.data[:80])
        elif kind is CorruptFrame:
            assert isinstance(event, CorruptFrame)
            self.stats.corrupt_frames += 1
            log.debug("%s: corrupt frame (%s)", self._url, event.kind.value)

    def _on_frame(self, frame: Frame) -> None:
        frame_type = frame.type
        try:
            if frame_type is _RESPONSE:
                pending = self._pending.pop(frame.request_id, None)
                result = parse_response(frame.payload)
                self.stats.answered += 1
                if pending is None:
                    log.warning("%s: a response to no request (id %d)", self._url,
                                frame.request_id)
                elif pending.on_result is not None:
                    pending.on_result(result)
            elif frame_type is _EVENT:
                self._on_device_event(Event.from_payload(frame.payload))
            elif frame_type is _ERROR:
                pending = self._pending.pop(frame.request_id, None)
                error = ErrorReply.from_payload(frame.payload).to_exception()
                self.stats.answered += 1
                self.stats.rejected += 1
                if pending is None:
                    log.warning("%s: an error for no request (id %d): %s", self._url,
                                frame.request_id, error)
                elif pending.on_error is not None:
                    pending.on_error(error)
                else:
                    self._note_error(error, f"{pending.cmd}: {error}")
            elif frame_type is _REQUEST:
                # A host serves no commands.
                reply = ErrorReply(ErrorCode.UNKNOWN_COMMAND, "the host serves no commands")
                self._link.send(FrameType.ERROR, reply.to_payload(), frame.request_id)
        except MalformedPayload as exc:
            self._note_error(exc, f"malformed {frame.type.name} payload: {exc}")

    def _on_established(self, event: LinkEstablished) -> None:
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
            self._irq = InterruptController(self._scheduler, _irq_lines(self._config))
        if hello.board and hello.board != self._config.name:
            self._fail_identity(BoardMismatch(
                f"the device on {self._url} is a {hello.board!r} board, but the board file "
                f"is {self._config.name!r}"))
            return
        self._capabilities = hello.capabilities
        if self._boot_nonce is None:
            self._sync_kind = _Sync.OPEN
        elif hello.boot_nonce != self._boot_nonce:
            self._sync_kind = _Sync.REBOOT
        else:
            self._sync_kind = _Sync.RESYNC
        if self._sync_kind != _Sync.REBOOT:
            self._announced_cause = None
        self._boot_nonce = hello.boot_nonce
        self._send("board.snapshot", None, self._on_snapshot, self._on_snapshot_error)

    def _fail_identity(self, error: BoardMismatch) -> None:
        if self._opening:
            self._open_error = error
        else:
            self._note_error(error, str(error))

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
                self._send("board.snapshot", None, self._on_snapshot,
                           self._on_snapshot_error)

        self._scheduler.call_later(_SNAPSHOT_RETRY_NS, again)

    def _on_lost(self, event: LinkLost) -> None:
        self.stats.link_losses += 1
        log.warning("%s: link down (%s)", self._url, event.reason.value)
        pending, self._pending = self._pending, {}
        error = event.error()
        for request in pending.values():
            if request.on_error is not None:
                request.on_error(error)
        if self._poll_timer is not None:
            Scheduler.cancel(self._poll_timer)
            self._poll_timer = None
        if self._synced:
            self._synced = False
            self.irq.raise_line("link", LinkChange(False, event.reason.value))

    # -- synchronising -----------------------------------------------------------------

    def _parse_snapshot(self, result: Any) -> _Snapshot:
        if not isinstance(result, dict):
            raise MalformedPayload(f"board.snapshot: expected a map, got {result!r}")
        try:
            inputs = {DigitalInput(k): bool(v) for k, v in result["inputs"].items()}
            analog = {AnalogChannel(k): float(v) for k, v in result["analog"].items()}
            outputs = {Output(k): bool(v) for k, v in result["outputs"].items()}
            display = result.get("display")
            rows = None if display is None else (str(display[0]), str(display[1]))
            imaging = result.get("imaging")
            resets = result.get("resets")
            return _Snapshot(
                t_ns=int(result.get("t_ns", 0)),
                inputs=inputs,
                analog=analog,
                outputs=outputs,
                reset_cause=_reset_cause(result.get("reset_cause", "power_on")),
                display=rows,
                imaging=None if imaging is None else frozenset(int(h) for h in imaging),
                resets=None if resets is None else int(resets),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise MalformedPayload(f"board.snapshot: {exc!r} in {result!r}") from None

    def _on_snapshot(self, result: Any) -> None:
        try:
            snap = self._parse_snapshot(result)
        except MalformedPayload as exc:
            self._note_error(exc, str(exc))
            if self._opening:
                self._open_error = exc
            return
        kind = self._sync_kind
        self._sync_kind = None
        if kind != _Sync.REBOOT:
            self._announced_cause = None
        if kind == _Sync.OPEN:
            self._apply_snapshot(snap)
            self._reset_cause = snap.reset_cause
            self._known_resets = snap.resets
            self._synced = True
        elif kind == _Sync.REBOOT:
            # The device names why it rebooted (its watchdog, a software reset); a power
            # cycle or a silent reboot is, for the firmware, the device resetting itself.
            cause = self._announced_cause
            if self._power_cycling:
                cause = ResetCause.POWER_ON  # we asked for it
            elif cause is None or cause in (ResetCause.POWER_ON, ResetCause.DEVICE_RESET):
                cause = ResetCause.DEVICE_RESET
            self._board_reset(cause, snap)
        elif (snap.resets is not None and self._known_resets is not None
              and snap.resets > self._known_resets):
            self._board_reset(snap.reset_cause, snap)  # it reset while we were away
        else:
            self._resync(snap)
        self._after_sync()

    def _apply_snapshot(self, snap: _Snapshot) -> None:
        self._inputs.update(snap.inputs)
        self._analog.update(snap.analog)
        self._outputs.update(snap.outputs)
        if snap.display is not None:
            self._display = snap.display

    def _resync(self, snap: _Snapshot) -> None:
        before = dict(self._inputs)
        self._inputs.update(snap.inputs)
        self._analog.update(snap.analog)
        for number, handle in list(self._handles.items()):
            if snap.imaging is None or number not in snap.imaging:
                del self._handles[number]
                handle.fail(IoError("imaging request lost while the link was down"))
        cancel_now = [n for n in sorted(self._cancel_later)
                      if snap.imaging is None or n in snap.imaging]
        self._cancel_later.clear()
        self._synced = True
        self.stats.resyncs += 1
        for number in cancel_now:
            self._send("imaging.cancel", {"handle": number}, None, _ignore_error)
        for output in Output:
            on = self._outputs[output]
            if snap.outputs.get(output) != on:
                self._send_state("output.set", {"output": str(output), "on": on})
        if snap.display is not None and snap.display != self._display:
            self._send_state("display.show", {"rows": list(self._display)})
        for channel, (low, high) in self._windows.items():
            self._send_state("window.set", {"channel": str(channel), "low": low, "high": high})
        irq = self.irq
        for pin in DigitalInput:
            if before[pin] != self._inputs[pin]:
                irq.raise_line(str(pin), self._inputs[pin])
        irq.raise_line("link", LinkChange(True))

    def _send_state(self, cmd: str, args: dict[str, Any]) -> None:
        def refused(error: PrinterLinkError) -> None:
            if isinstance(error, DeviceRejected):
                self._firmware_command_refused(cmd, args, error)

        self._send(cmd, args, None, refused)

    def _board_reset(self, cause: ResetCause, snap: _Snapshot | None) -> None:
        """The device's board reset (a reboot, or its own watchdog): what the emulated
        board does on a watchdog reset, on this side of the line."""
        self._synced = False  # nothing a dying firmware commands from an upcall goes out
        handles = list(self._handles.values())
        self._handles.clear()
        self._cancel_later.clear()
        for handle in handles:
            handle.fail(IoError("board reset"))
        self._outputs = dict.fromkeys(Output, False)
        self._windows.clear()
        if snap is not None:
            self._apply_snapshot(snap)
            self._known_resets = snap.resets
        elif self._known_resets is not None:
            self._known_resets += 1
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
        self._schedule_poll()

    # -- analog readings ---------------------------------------------------------------

    def _schedule_poll(self) -> None:
        if self._analog_poll_ns is None or self._poll_timer is not None:
            return
        self._poll_timer = self._scheduler.call_later(self._analog_poll_ns, self._on_poll)

    def _on_poll(self) -> None:
        self._poll_timer = None
        if self._synced and not self._closed:
            # One channel a tick, in turn: on a slow line a burst of requests would hold
            # up the firmware's commands behind it.
            channels = list(AnalogChannel)
            self._poll_turn = (self._poll_turn + 1) % len(channels)
            channel = channels[self._poll_turn]
            self._send("analog.read", {"channel": str(channel)},
                       functools.partial(self._on_analog, channel), _ignore_error)
            self._schedule_poll()

    def _poll_analog(self) -> None:
        if not self._synced:
            return
        for channel in AnalogChannel:
            self._send("analog.read", {"channel": str(channel)},
                       functools.partial(self._on_analog, channel), _ignore_error)

    def _on_analog(self, channel: AnalogChannel, result: Any) -> None:
        value = result.get("value") if isinstance(result, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            self._analog[channel] = float(value)

    # -- device events -----------------------------------------------------------------

    def _on_device_event(self, event: Event) -> None:
        self.stats.events += 1
        for listener in self._event_listeners:
            listener(event, self._scheduler.now_ns)
        kind, data = event.kind, event.data
        try:
            if kind == "input":
                # A dict, not DigitalInput(name): enum's lookup is Python code, and on
                # an idle machine every module an edge passes through costs its cache
                # misses again (see hal.serial._wire on input edges).
                name = data["name"]
                pin = _INPUT_BY_NAME.get(name)
                if pin is None:
                    raise ValueError(f"{name!r} is not a valid DigitalInput")
                self._on_input(pin, bool(data["level"]))
            elif kind == "window":
                self._on_window(AnalogChannel(data["channel"]), float(data["reading"]),
                                Crossing(data["crossing"]))
            elif kind == "imaging":
                self._on_imaging(int(data["handle"]), str(data["state"]),
                                 str(data.get("error") or ""), event.t_ns)
            elif kind == "reset":
                cause = _reset_cause(data.get("cause"))
                if self._synced:
                    self._board_reset(cause, None)  # a reset inside a live session
                else:
                    self._announced_cause = cause  # a new boot's first words
            else:
                self.stats.unknown_events += 1
                log.debug("%s: unknown event kind %r", self._url, kind)
        except (KeyError, TypeError, ValueError) as exc:
            error = MalformedPayload(f"{kind} event: {exc!r} in {data!r}")
            self._note_error(error, str(error))

    def _on_input(self, pin: DigitalInput, level: bool) -> None:
        if not self._synced:
            # Before a sync the snapshot that follows this event tells the net change.
            return
        if self._inputs[pin] == level:
            self.stats.stale_edges += 1
            return
        self._inputs[pin] = level
        self.irq.raise_line(str(pin), level)

    def _on_window(self, channel: AnalogChannel, reading: float, crossing: Crossing) -> None:
        self._analog[channel] = reading
        if self._windows.pop(channel, None) is None and not self._synced:
            return  # a crossing of a window armed before a reset: nobody asked for it
        if self._irq is not None and not self._opening:
            self.irq.raise_line(ANALOG_IRQ_LINE[channel],
                                WindowCrossing(channel, reading, crossing))

    def _on_imaging(self, number: int, state: str, error: str, t_ns: int) -> None:
        handle = self._handles.get(number)
        if handle is None:
            return  # cancelled, failed at a reset, or of an earlier boot
        if state == "started":
            handle.post(IoEvent(self._scheduler.now_ns, "imaging_started"))
        elif state == "done":
            del self._handles[number]
            handle.complete(handle.request)
        elif state == "failed":
            del self._handles[number]
            handle.fail(IoError(error or "imaging failed"))
        else:
            raise ValueError(f"unknown imaging state {state!r}")


_SIM_CHANGES_READINGS = frozenset({"sim.toner", "sim.replace_toner", "sim.heater"})
"""Simulation commands after which the analog readings are read again at once."""


def _ignore_error(error: PrinterLinkError) -> None:
    log.debug("ignored: %s", error)


class _SimFaults:
    """:class:`hal.FaultInjector` over the ``sim.*`` commands. Each method sends its
    command at once (queued while the link is down) and returns; the effect follows a
    round trip later."""

    def __init__(self, board: SerialBoard) -> None:
        self._board = board

    def set_toner_pct(self, level_pct: float) -> None:
        if not 0.0 <= level_pct <= 100.0:
            raise ValueError(f"a toner level is in [0, 100] %, got {level_pct}")
        self._board._sim("sim.toner", {"pct": float(level_pct)})

    def replace_toner(self) -> None:
        self._board._sim("sim.replace_toner")

    def set_tray(self, sheets: int) -> None:
        if sheets < 0:
            raise ValueError(f"a tray holds 0 sheets or more, got {sheets}")
        self._board._sim("sim.tray", {"sheets": int(sheets)})

    def jam(self, point: JamPoint) -> None:
        self._board._sim("sim.jam", {"at": str(JamPoint(point))})

    def misfeed(self) -> None:
        self._board._sim("sim.misfeed")

    def set_cover(self, is_open: bool) -> None:
        self._board._sim("sim.cover", {"open": bool(is_open)})

    def press(self, button: Button) -> None:
        self._board._sim("sim.press", {"button": str(Button(button))})

    def set_heater_failed(self, failed: bool) -> None:
        self._board._sim("sim.heater", {"failed": bool(failed)})

