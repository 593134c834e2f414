"""A host's end of the board protocol: the line (a :class:`Transport`), the link run by a
:class:`LinkPump`, and requests matched to their answers.

:class:`HostLink` knows no printer: :class:`~hal.serial.SerialBoard` is the board over it
and fills in what a session coming up, a session ending and a device's EVENT mean
(:meth:`HostLink._on_session_up`, :meth:`HostLink._on_session_down`,
:meth:`HostLink._on_device_event`). Everything runs on the scheduler's thread.

Requests: :meth:`HostLink.request` sends at once (a request goes to the line as soon as
it is made); ``on_result(result)`` or ``on_error(exc)`` runs when the answer comes
(ERROR answers become the :class:`DeviceRejected` subclass of their code). When a session
ends every request in flight fails with :class:`LinkDown`: it will never be answered.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hal import Scheduler
from hal.serial._errors import (
    ErrorCode,
    LinkDown,
    LinkDownReason,
    LinkTimeout,
    MalformedPayload,
    NoDeviceAnswer,
    PortUnavailable,
    PrinterLinkError,
)
from hal.serial._frames import CorruptFrame, Frame, FrameDecoder, FrameType, Noise
from hal.serial._link import (
    HandshakeFailed,
    LinkEndpoint,
    LinkEstablished,
    LinkEvent,
    LinkLost,
    LinkState,
)
from hal.serial._payloads import ErrorReply, Event, parse_response, request_payload
from hal.serial._pump import LinkPump
from hal.serial._transport import Transport

log = logging.getLogger("printer_emu.serial_board")

_S = 1_000_000_000

TraceHook = Callable[[int, str, str, int, int], None]
"""``trace(t_ns, direction, frame_type, seq, request_id)`` for every frame on the line:
``direction`` is ``"tx"`` or ``"rx"``, ``frame_type`` the :class:`FrameType` name."""

ResultCallback = Callable[[Any], None]
ErrorCallback = Callable[[PrinterLinkError], None]


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


@dataclass(slots=True)
class _Pending:
    cmd: str
    on_result: ResultCallback | None
    on_error: ErrorCallback | None


def ignore_error(error: PrinterLinkError) -> None:
    """An ``on_error`` for requests whose failure needs nothing done."""
    log.debug("ignored: %s", error)


class HostLink:
    """The host's end of the link to the device on ``url``; see the module docstring.

    Made by its subclass's constructor, which then calls :meth:`_connect`."""

    def __init__(
        self,
        url: str,
        scheduler: Scheduler,
        link: LinkEndpoint,
        transport: Transport,
        trace: TraceHook | None,
    ) -> None:
        self._url = url
        self._scheduler = scheduler
        self._link = link
        self._transport = transport
        self._pump = LinkPump(scheduler, link, write=self._write, on_events=self._on_link_events)
        self._frame_handlers: dict[FrameType, Callable[[Frame], None]] = {
            FrameType.RESPONSE: self._on_response,
            FrameType.EVENT: self._on_event_frame,
            FrameType.ERROR: self._on_error,
            FrameType.REQUEST: self._on_request,
        }
        self.stats = SerialBoardStats()
        self.last_error: PrinterLinkError | None = None
        """The last refusal or protocol error (also logged)."""
        self.errors: deque[str] = deque(maxlen=50)
        """The last errors, as one-line texts."""
        self._pending: dict[int, _Pending] = {}
        self._next_rid = 0
        self._synced = False
        """True between a session coming up and the subclass having synchronised with it
        (the board's state read), and the session's end."""
        self._opening = True
        self._open_error: PrinterLinkError | None = None
        self._closed = False
        self._trace: TraceHook | None = None
        self._tx_decoder: FrameDecoder | None = None
        self._rx_decoder: FrameDecoder | None = None
        self.set_trace(trace)

    def _connect(self, open_timeout_s: float) -> None:
        """Start the line and run the scheduler until :attr:`synced` (or an error that
        makes opening fail, raised); close and raise :class:`NoDeviceAnswer` after
        ``open_timeout_s``."""
        self._transport.start(self._on_bytes, self._on_transport_lost, self._on_transport_back)
        try:
            self._pump.pump()
            reached = self._scheduler.run_until(
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
                raise NoDeviceAnswer(self._url, open_timeout_s, detail)
        except BaseException:
            self.close()
            raise
        self._opening = False

    def close(self) -> None:
        """Stop the threads and close the port. Pending requests are dropped. The
        device sees silence and makes itself safe. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pump.close()
        self._transport.close()

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

    def set_trace(self, trace: TraceHook | None) -> None:
        """Call ``trace(t_ns, direction, frame_type, seq, request_id)`` for every frame
        from now on (``None``: stop). Costs nothing while unset."""
        self._trace = trace
        fresh = trace is not None
        self._tx_decoder = FrameDecoder(0xFFFF) if fresh else None
        self._rx_decoder = FrameDecoder(0xFFFF) if fresh else None

    # -- requests ------------------------------------------------------------------------

    def request(
        self,
        cmd: str,
        args: dict[str, Any] | None = None,
        *,
        on_result: ResultCallback | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        """Send ``cmd`` now; ``on_result(result)`` or ``on_error(exc)`` runs on the
        scheduler's thread when it is answered (``on_error(LinkDown)`` if the session
        ends first). Raises :class:`LinkDown` when the link is not up."""
        if self._link.state is not LinkState.UP:
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

    def _send(
        self,
        cmd: str,
        args: dict[str, Any] | None,
        on_result: ResultCallback | None,
        on_error: ErrorCallback | None,
    ) -> None:
        """:meth:`request`, with ``on_error(LinkDown)`` at once when the link is down."""
        rid = self._new_request_id()
        try:
            self._link.send(FrameType.REQUEST, request_payload(cmd, args), rid)
        except LinkDown as exc:
            if on_error is not None:
                on_error(exc)
            return
        self._pending[rid] = _Pending(cmd, on_result, on_error)
        self.stats.requests += 1
        self._pump.pump()  # at once (inside a pump: before it returns)

    def _new_request_id(self) -> int:
        rid = self._next_rid
        while True:
            rid = rid % 0xFFFF + 1
            if rid not in self._pending:
                self._next_rid = rid
                return rid

    def _note_error(self, error: PrinterLinkError, text: str) -> None:
        repeated = bool(self.errors) and self.errors[-1] == text
        self.last_error = error
        self.errors.append(text)
        if not repeated:  # a peer we cannot talk to says so at every HELLO
            log.error("%s: %s", self._url, text)

    # -- what the subclass fills in ------------------------------------------------------

    def _on_session_up(self, event: LinkEstablished) -> None:
        """A session came up (the device's HELLO is ``event.peer``)."""
        raise NotImplementedError

    def _on_session_down(self, event: LinkLost) -> None:
        """A session ended; its requests have failed already."""
        raise NotImplementedError

    def _on_device_event(self, event: Event) -> None:
        """The device sent an EVENT."""
        raise NotImplementedError

    # -- the line ------------------------------------------------------------------------

    def _on_bytes(self, data: bytes) -> None:
        if self._closed:
            return
        if self._rx_decoder is not None:
            self._trace_frames(self._rx_decoder, data, "rx")
        self._pump.receive(data)
        self._pump.pump_late()  # acks after the instant's ISRs and firmware have run

    def _write(self, data: bytes) -> None:
        if self._tx_decoder is not None:
            self._trace_frames(self._tx_decoder, data, "tx")
        self._transport.write(data)

    def _trace_frames(self, decoder: FrameDecoder, data: bytes, direction: str) -> None:
        trace = self._trace
        assert trace is not None
        now = self._scheduler.now_ns
        for item in decoder.feed(data):
            if isinstance(item, Frame):
                trace(now, direction, item.type.name, item.seq, item.request_id)

    def _on_transport_lost(self, error: Exception) -> None:
        if self._closed:
            return
        self.stats.port_losses += 1
        if self._opening and self._open_error is None:
            # The open fails with it, and its caller reports it: once.
            self._open_error = PortUnavailable(self._url, f"the line failed: {error}")
        else:
            log.warning("%s: the line failed (%s); reopening", self._url, error)
        self._pump.restart()

    def _on_transport_back(self) -> None:
        if self._closed:
            return
        log.info("%s: the line is back", self._url)
        self._pump.restart()

    # -- the link's events -------------------------------------------------------------

    def _on_link_events(self, events: list[LinkEvent]) -> None:
        for event in events:
            match event:
                case Frame():
                    self._on_frame(event)
                case LinkEstablished():
                    self._on_session_up(event)
                case LinkLost():
                    self._on_lost(event)
                case HandshakeFailed():
                    if self._opening:
                        self._open_error = event.error
                    else:
                        self._note_error(event.error, f"handshake failed: {event.error}")
                case Noise():
                    self.stats.noise_bytes += len(event.data)
                    log.debug("%s: noise on the line: %r", self._url, event.data[:80])
                case CorruptFrame():
                    self.stats.corrupt_frames += 1
                    log.debug("%s: corrupt frame (%s)", self._url, event.kind.value)

    def _on_frame(self, frame: Frame) -> None:
        handler = self._frame_handlers.get(frame.type)
        if handler is None:
            return
        try:
            handler(frame)
        except MalformedPayload as exc:
            self._note_error(exc, f"malformed {frame.type.name} payload: {exc}")

    def _on_response(self, frame: Frame) -> None:
        pending = self._pending.pop(frame.request_id, None)
        result = parse_response(frame.payload)
        self.stats.answered += 1
        if pending is None:
            log.warning("%s: a response to no request (id %d)", self._url, frame.request_id)
        elif pending.on_result is not None:
            pending.on_result(result)

    def _on_error(self, frame: Frame) -> None:
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

    def _on_event_frame(self, frame: Frame) -> None:
        self._on_device_event(Event.from_payload(frame.payload))

    def _on_request(self, frame: Frame) -> None:
        reply = ErrorReply(ErrorCode.UNKNOWN_COMMAND, "the host serves no commands")
        self._link.send(FrameType.ERROR, reply.to_payload(), frame.request_id)

    def _on_lost(self, event: LinkLost) -> None:
        self.stats.link_losses += 1
        log.warning("%s: link down (%s)", self._url, event.reason.value)
        pending, self._pending = self._pending, {}
        error = event.error()
        for request in pending.values():
            if request.on_error is not None:
                request.on_error(error)
        self._on_session_down(event)
