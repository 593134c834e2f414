"""The reliable link of the serial-attached board: one sans-IO endpoint, the same on both
ends (host and device), over the frames of :mod:`hal.serial._frames`.

Sans-IO means the endpoint never touches a port, a thread or a clock. The caller feeds it
the bytes it read and the time, and writes the bytes it is given::

    link = LinkEndpoint(Role.HOST)
    while True:
        data = port.read(timeout=...)            # until link.next_deadline_ns() at most
        now = clock.now_ns()
        if data:
            link.receive(data, now)
        port.write(link.outgoing(now))           # also runs the timers (poll)
        for event in link.events():              # Frame, LinkEstablished, LinkLost, ...
            ...

What the link does (docs/protocol.md, "The link", is the normative text):

* **Handshake.** Each end sends HELLO until it hears a HELLO or HELLO_ACK naming its own
  session; the session is then up (:class:`LinkEstablished`). HELLO carries the boot
  nonce (new only when the sender rebooted) and the session id (new whenever the sender
  starts its sequence numbers over).
* **Reliable data.** REQUEST, RESPONSE, ERROR and EVENT frames take sequence numbers and
  are delivered in order, exactly once; duplicates are dropped. At most ``window``
  frames (the smaller of the two ends' windows) are unacknowledged at a time; more wait
  in a queue. **Go-back-N**: the receiver keeps no frame that arrives out of order, and
  the sender, on a timeout or a NAK, sends every unacknowledged frame again, oldest
  first. (Serial lines lose little and in bursts; go-back-N keeps a microcontroller's
  side free of a reorder buffer.)
* **Acks** are cumulative and ride on every frame. When there is nothing to carry them, a
  pure ACK goes out ``ack_delay_ns`` after the first unacknowledged frame arrived, at
  once when half a window is unacknowledged, for a duplicate, or when the peer asks
  (``Flag.ACK_NOW``, set on retransmissions).
* **Loss.** A damaged frame (bad CRC/COBS, truncated), a gap in the sequence, or a control
  frame announcing frames we never got triggers a NAK (at most one per ``rto_ns`` for
  the same missing frame); the sender retransmits at once. Otherwise the retransmission
  timer fires ``rto_ns`` after the oldest unacknowledged frame was sent, doubling on
  each consecutive timeout up to ``min(8 * rto_ns, dead_after_ns / 2)``.
* **Liveness.** An idle end sends HEARTBEAT every ``heartbeat_ns`` (or a third of the
  peer's ``dead_after_ns`` if that is shorter, but not below
  :data:`MIN_HEARTBEAT_INTERVAL_NS` for the peer's sake). The session ends
  (:class:`LinkLost`, state DOWN) when nothing valid is heard for ``dead_after_ns``
  (``SILENCE``), or when frames stay unacknowledged that long (``NO_PROGRESS``). The
  endpoint then handshakes again by itself.

Guarantees across a session's end (link down, peer restart or reboot, :meth:`reset`):

* Within a session, the peer's application receives the frames sent in it in order, each
  exactly once. No frame of an ended session is ever delivered after a frame of a later
  one, and the link never sends a frame of an ended session again.
* :class:`LinkLost` lists in ``undelivered``, in order, every frame sent in that session
  that the peer had not acknowledged. ``transmitted=False`` frames never reached the
  wire. ``transmitted=True`` frames *may* have been delivered (the peer got them, the ack
  was lost): the layer above decides whether to send them again in the new session.
* :meth:`events` is one ordered stream: frames received in a session come before that
  session's :class:`LinkLost`. So a caller that fails its outstanding requests on
  ``LinkLost`` never matches a response of a dead session to a request of the next one,
  even when request ids are reused. (That is why there is no separate ``incoming()``
  list: two lists would lose this order.)
* Frames are delivered with their ``type``, ``request_id`` and ``payload`` exactly as
  sent; the link does not look inside payloads. Matching responses to requests is the
  layer above's job.
* A new boot nonce in the peer's HELLO is reported as ``LinkLost(PEER_RESET)`` (if a
  session was up) and ``LinkEstablished(peer_reset=True)``: the peer's state is gone.

The endpoint is not thread-safe: one thread (the scheduler's) calls everything; on a
scheduler, :class:`hal.serial.LinkPump` makes those calls for both ends.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass

from hal.serial._errors import (
    DecodeErrorKind,
    IncompatiblePeer,
    LinkDown,
    LinkDownReason,
    MalformedPayload,
    PayloadTooLarge,
    PrinterLinkError,
    ProtocolVersionMismatch,
)
from hal.serial._frames import (
    DEFAULT_MAX_PAYLOAD,
    DELIMITER,
    MAX_PAYLOAD_LIMIT,
    MAX_WINDOW,
    MIN_MAX_PAYLOAD,
    CorruptFrame,
    Flag,
    Frame,
    FrameDecoder,
    FrameType,
    Noise,
    Role,
    encode_frame,
    max_encoded_size,
)
from hal.serial._payloads import Hello

MIN_HEARTBEAT_INTERVAL_NS = 10_000_000
"""The floor on a heartbeat interval a peer's ``dead_after_ns`` can ask for: a HELLO with
``dead_after_ns`` of a few ns must not make this end send a heartbeat every ns (a
peer that wants that little silence loses the session instead)."""

_SEQ_MASK = 0xFFFF
_HALF_SPACE = 0x8000
# Damage on the line, as opposed to a well-formed frame we dislike: only these can hide a
# data frame the peer wants acknowledged, so only these are worth a NAK.
_NAK_KINDS = frozenset(
    {
        DecodeErrorKind.BAD_COBS,
        DecodeErrorKind.TRUNCATED,
        DecodeErrorKind.BAD_CRC,
        DecodeErrorKind.TOO_LONG,
    }
)


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    """No session yet (or the peer restarted): handshaking."""
    UP = "up"
    """A session is up; data frames can be sent."""
    DOWN = "down"
    """The session died of silence or no progress; handshaking to get a new one."""


# Not LinkState.UP / IntFlag math (enum's Python): ~7 / ~35 us each after idle (benchmarks serial).
_UP = LinkState.UP
_HELLO = FrameType.HELLO
_HELLO_ACK = FrameType.HELLO_ACK
_NAK = FrameType.NAK
_ACK_NOW = int(Flag.ACK_NOW)
_RETRANSMIT_FLAGS = int(Flag.RETRANSMIT | Flag.ACK_NOW)


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A data frame the peer never acknowledged, handed back when its session ended.

    ``transmitted`` is False when it never left the queue (certainly not delivered), True
    when it was sent at least once (it may have been delivered).
    """

    seq: int
    type: FrameType
    payload: bytes
    request_id: int
    transmitted: bool


@dataclass(frozen=True, slots=True)
class LinkEstablished:
    """A session came up. ``peer`` is the peer's HELLO; ``peer_reset`` is True when its
    boot nonce differs from the previous session's (the peer rebooted in between). The
    first session of an endpoint always has ``peer_reset=False``."""

    peer: Hello
    peer_reset: bool


@dataclass(frozen=True, slots=True)
class LinkLost:
    """A session ended; see the module docstring for what ``undelivered`` means."""

    reason: LinkDownReason
    undelivered: tuple[Undelivered, ...]

    def error(self) -> LinkDown:
        """The exception to fail requests of the ended session with."""
        return LinkDown(self.reason)


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """The peer cannot be talked to: ``error`` is a :class:`ProtocolVersionMismatch`,
    :class:`MalformedPayload` (a HELLO we cannot parse) or :class:`IncompatiblePeer`
    (both ends have the same role, or the line echoes our own frames). ``hello`` is the
    peer's HELLO when it could be parsed. The link keeps trying; the same failure is
    reported again for each such HELLO."""

    error: PrinterLinkError
    hello: Hello | None = None


LinkEvent = Frame | LinkEstablished | LinkLost | HandshakeFailed | Noise | CorruptFrame
"""What :meth:`LinkEndpoint.events` returns. :class:`Frame` items are data frames
delivered by the link (REQUEST, RESPONSE, ERROR, EVENT); :class:`Noise` and
:class:`CorruptFrame` are reported for logging and need no action."""


@dataclass(slots=True)
class LinkStats:
    """Counters since the endpoint was made (never reset; for logs and tests)."""

    frames_sent: int = 0
    frames_received: int = 0
    data_sent: int = 0
    data_delivered: int = 0
    retransmitted: int = 0
    timeouts: int = 0
    naks_sent: int = 0
    naks_received: int = 0
    acks_sent: int = 0
    heartbeats_sent: int = 0
    hellos_sent: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    dropped_not_up: int = 0
    corrupt: int = 0
    noise_bytes: int = 0
    sessions: int = 0


class _Outbound:
    __slots__ = ("payload", "request_id", "seq", "transmitted", "type")

    def __init__(self, seq: int, frame_type: FrameType, payload: bytes, request_id: int) -> None:
        self.seq = seq
        self.type = frame_type
        self.payload = payload
        self.request_id = request_id
        self.transmitted = False

    def undelivered(self) -> Undelivered:
        return Undelivered(self.seq, self.type, self.payload, self.request_id, self.transmitted)


def suggested_rto_ns(
    baud: int, window: int, max_payload: int, *, turnaround_ns: int = 50_000_000
) -> int:
    """A retransmission timeout for a real UART: twice the time a full window of the
    largest frames takes on the wire (10 bits a byte), plus ``turnaround_ns`` for the far
    end to answer. At 115200 baud a window of 8 frames of 1 KiB needs about 1.5 s; the
    endpoint's default (200 ms) suits ptys, sockets and fast USB links."""
    if baud <= 0 or window <= 0 or max_payload < 0:
        raise ValueError("baud and window must be > 0, max_payload >= 0")
    wire_bytes = window * (max_encoded_size(max_payload) + 2)
    return 2 * wire_bytes * 10 * 1_000_000_000 // baud + turnaround_ns


class LinkEndpoint:
    """One end of the link. See the module docstring for the protocol and its guarantees.

    Call pattern (all times are integer nanoseconds of one monotonic clock; never
    decreasing):

    * :meth:`receive` whenever bytes arrive;
    * :meth:`outgoing` after any call that may have produced something to send (receive,
      send, a deadline) and write all of what it returns, in order;
    * :meth:`poll` (or :meth:`outgoing`, which polls first) no later than
      :meth:`next_deadline_ns`;
    * :meth:`events` to take what happened, in order.

    Parameters: ``window`` is both how many of our frames may be unacknowledged and what
    we advertise we accept; ``max_payload`` is the longest payload we accept (advertised;
    the peer's own limit bounds what :meth:`send` takes). ``boot_nonce`` (u64) must
    change on every reboot of this end; by default it is random. ``rng`` draws session
    ids (pass a seeded :class:`random.Random` for reproducible tests).

    Raises :class:`ValueError` for inconsistent parameters.
    """

    # Sequence state of the current session; _reset_sequences starts it over.
    _next_seq: int
    _in_flight: deque[_Outbound]
    _queue: deque[_Outbound]
    _retransmit: bool
    _rto_ns_now: int
    _rto_deadline_ns: int | None
    _progress_ns: int
    _rx_expected: int
    _rx_unacked: int
    _ack_due_ns: int | None
    _nak_pending: bool
    _nak_expected: int
    _nak_ns: int
    _last_rx_ns: int
    _last_tx_ns: int

    def __init__(
        self,
        role: Role,
        *,
        window: int = 8,
        rto_ns: int = 200_000_000,
        heartbeat_ns: int = 1_000_000_000,
        dead_after_ns: int = 3_000_000_000,
        ack_delay_ns: int = 2_000_000,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        capabilities: frozenset[str] | set[str] | tuple[str, ...] = frozenset(),
        device_id: str = "",
        board: str = "",
        image_version: str = "",
        image_sha256: str = "",
        image_confirmed: bool | None = None,
        boot_nonce: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"window must be in 1..{MAX_WINDOW}, got {window}")
        if not MIN_MAX_PAYLOAD <= max_payload <= MAX_PAYLOAD_LIMIT:
            raise ValueError(f"max_payload must be in {MIN_MAX_PAYLOAD}..{MAX_PAYLOAD_LIMIT}")
        if min(rto_ns, heartbeat_ns, dead_after_ns) <= 0 or ack_delay_ns < 0:
            raise ValueError("timings must be > 0 (ack_delay_ns >= 0)")
        if ack_delay_ns >= rto_ns:
            raise ValueError("ack_delay_ns must be below rto_ns, or every ack comes too late")
        if dead_after_ns <= rto_ns:
            raise ValueError("dead_after_ns must exceed rto_ns, or nothing is ever retried")
        self._rng = rng if rng is not None else random.SystemRandom()
        if boot_nonce is None:
            boot_nonce = self._rng.getrandbits(64)
        if not 0 <= boot_nonce < 1 << 64:
            raise ValueError("boot_nonce must be a u64")
        self._role = Role(role)
        self._window = window
        self._rto_ns = rto_ns
        self._rto_cap_ns = max(rto_ns, min(8 * rto_ns, dead_after_ns // 2))
        self._heartbeat_ns = heartbeat_ns
        self._dead_after_ns = dead_after_ns
        self._ack_delay_ns = ack_delay_ns
        self._max_payload = max_payload
        self._capabilities = frozenset(capabilities)
        self._device_id = device_id
        self._board = board
        self._image_version = image_version
        self._image_sha256 = image_sha256
        self._image_confirmed = image_confirmed
        self._boot_nonce = boot_nonce
        self._session = self._new_session_id(0)
        self._peer_session = 0
        # Validate the identity now rather than at the first HELLO, deep inside outgoing().
        self._hello_payload()

        self._decoder = FrameDecoder(max_payload)
        self._events: list[LinkEvent] = []
        self.stats = LinkStats()

        self._state = LinkState.CONNECTING
        self._down_reason = LinkDownReason.NOT_CONNECTED
        self._peer: Hello | None = None
        self._peer_boot: int | None = None
        # Handshake timers: HELLO goes out when due, then backs off up to a heartbeat.
        self._hello_due = 0
        self._hello_interval_ns = rto_ns
        self._last_hello_ns: int | None = None
        self._hello_pending = False
        self._hello_ack_pending = False
        # Per-session values, set when the session comes up.
        self._tx_window = 1
        self._peer_max_payload = MIN_MAX_PAYLOAD
        self._hb_interval_ns = heartbeat_ns
        self._ack_every = 1
        self._reset_sequences(0)

    def __repr__(self) -> str:
        return (
            f"<LinkEndpoint {self._role.value} {self._state.value} session={self._session:#010x}"
            f" in_flight={len(self._in_flight)} queued={len(self._queue)}>"
        )

    # --- public -----------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def boot_nonce(self) -> int:
        return self._boot_nonce

    @property
    def session(self) -> int:
        """Our current session id (changes whenever a session ends)."""
        return self._session

    @property
    def peer(self) -> Hello | None:
        """The peer's HELLO of the current session, or of the last one while down."""
        return self._peer

    @property
    def rto_ns(self) -> int:
        """The retransmission timeout this endpoint was made with (before any backoff)."""
        return self._rto_ns

    @property
    def send_window(self) -> int:
        """How many of our frames may be unacknowledged in this session."""
        return self._tx_window

    @property
    def peer_max_payload(self) -> int:
        """The longest payload :meth:`send` accepts in this session."""
        return self._peer_max_payload

    @property
    def in_flight(self) -> int:
        """Data frames sent and not yet acknowledged."""
        return len(self._in_flight)

    @property
    def queued(self) -> int:
        """Data frames waiting for room in the window."""
        return len(self._queue)

    def send(self, frame_type: FrameType, payload: bytes = b"", request_id: int = 0) -> int:
        """Queue a data frame for reliable, in-order delivery; return its sequence number.

        It goes on the wire at the next :meth:`outgoing` if the window has room, later
        otherwise. Raises :class:`LinkDown` unless the state is UP (frames belong to a
        session; wait for :class:`LinkEstablished`), :class:`PayloadTooLarge` above the
        peer's limit, :class:`ValueError` for a control frame type or a request id that is
        not a u16.
        """
        if self._state is not _UP:
            raise LinkDown(self._down_reason)
        if not isinstance(frame_type, FrameType) or not frame_type.sequenced:
            raise ValueError(f"{frame_type!r} is not a data frame type; the link sends those")
        if not 0 <= request_id <= _SEQ_MASK:
            raise ValueError(f"request_id must be a u16, got {request_id}")
        if len(payload) > self._peer_max_payload:
            raise PayloadTooLarge(len(payload), self._peer_max_payload)
        seq = self._next_seq
        self._next_seq = (seq + 1) & _SEQ_MASK
        # A copy of a bytearray or memoryview the caller may change (a bytes is kept).
        self._queue.append(_Outbound(seq, frame_type, bytes(payload), request_id))
        return seq

    def receive(self, data: bytes, now_ns: int) -> None:
        """Take bytes read from the line at ``now_ns``. Never raises on any input; what
        it makes of them is in :meth:`events` and :meth:`outgoing`."""
        for item in self._decoder.feed(data):
            match item:
                case Frame():
                    self.stats.frames_received += 1
                    self._on_frame(item, now_ns)
                case CorruptFrame():
                    self.stats.corrupt += 1
                    self._events.append(item)
                    if item.kind in _NAK_KINDS:
                        self._request_nak(now_ns)
                    elif (item.kind is DecodeErrorKind.BAD_VERSION
                          and self._state is not _UP):
                        self._events.append(HandshakeFailed(item.error()))
                case Noise():
                    self.stats.noise_bytes += len(item.data)
                    self._events.append(item)

    def poll(self, now_ns: int) -> None:
        """Run the timers due at ``now_ns``: session death, retransmission, HELLO.
        Idempotent for a given time. :meth:`outgoing` calls it first."""
        if self._state is _UP:
            if now_ns - self._last_rx_ns >= self._dead_after_ns:
                self._end_session(LinkDownReason.SILENCE, now_ns, LinkState.DOWN)
            elif self._in_flight and now_ns - self._progress_ns >= self._dead_after_ns:
                self._end_session(LinkDownReason.NO_PROGRESS, now_ns, LinkState.DOWN)
            elif (
                self._in_flight
                and not self._retransmit
                and self._rto_deadline_ns is not None
                and now_ns >= self._rto_deadline_ns
            ):
                self._retransmit = True
                self.stats.timeouts += 1
                self._rto_ns_now = min(2 * self._rto_ns_now, self._rto_cap_ns)
        if self._state is not _UP and now_ns >= self._hello_due:
            self._hello_pending = True

    def outgoing(self, now_ns: int) -> bytes:
        """Poll, then return every byte to write to the line now (possibly ``b""``).

        The bytes start with a 0x00 delimiter so that anything else written to the line
        before them cannot corrupt the first frame. Write all of them, in order, before
        the next call's bytes; timers count from ``now_ns``.
        """
        self.poll(now_ns)
        frames: list[bytes] = []
        if self._hello_ack_pending or self._hello_pending:
            self._send_hellos(now_ns, frames)
        if self._state is _UP:
            self._send_session_frames(now_ns, frames)
        if not frames:
            return b""
        self.stats.frames_sent += len(frames)
        self._last_tx_ns = now_ns
        return DELIMITER + b"".join(frames)

    def _send_hellos(self, now_ns: int, frames: list[bytes]) -> None:
        if self._hello_ack_pending:
            self._hello_ack_pending = False
            frames.append(encode_frame(_HELLO_ACK, self._hello_payload()))
        if self._hello_pending:
            self._hello_pending = False
            frames.append(encode_frame(_HELLO, self._hello_payload()))
            self.stats.hellos_sent += 1
            self._last_hello_ns = now_ns
            self._hello_due = now_ns + self._hello_interval_ns
            self._hello_interval_ns = min(
                2 * self._hello_interval_ns, max(self._rto_ns, self._heartbeat_ns)
            )

    def next_deadline_ns(self) -> int:
        """The latest time at which :meth:`poll`/:meth:`outgoing` must be called next.
        It may be in the past (or 0): then there is something to send now."""
        if self._hello_pending or self._hello_ack_pending or self._nak_pending or self._retransmit:
            return 0
        if self._state is not _UP:
            return self._hello_due
        if self._queue and len(self._in_flight) < self._tx_window:
            return 0
        deadlines = [
            self._last_rx_ns + self._dead_after_ns,  # silence
            self._last_tx_ns + self._hb_interval_ns,  # heartbeat
        ]
        if self._in_flight:
            deadlines.append(self._progress_ns + self._dead_after_ns)  # no progress
            if self._rto_deadline_ns is not None:
                deadlines.append(self._rto_deadline_ns)
        if self._ack_due_ns is not None:
            deadlines.append(self._ack_due_ns)
        return min(deadlines)

    def events(self) -> list[LinkEvent]:
        """Take everything that happened since the last call, in order (see
        :data:`LinkEvent`). The list grows until taken: call this after every
        :meth:`receive` and :meth:`outgoing`."""
        events, self._events = self._events, []
        return events

    def reset(self, now_ns: int) -> None:
        """Start over (the port was reopened, say): end the session if one is up
        (``LinkLost(LOCAL_RESET)``), forget any partial frame, and handshake anew."""
        self._decoder.reset()
        if self._state is _UP:
            self._end_session(LinkDownReason.LOCAL_RESET, now_ns, LinkState.CONNECTING)
        else:
            self._session = self._new_session_id(self._session)
            self._peer_session = 0
            self._state = LinkState.CONNECTING
            self._hello_due = now_ns
            self._hello_interval_ns = self._rto_ns

    # --- receiving --------------------------------------------------------------------

    def _on_frame(self, frame: Frame, now_ns: int) -> None:
        frame_type = frame.type
        if frame_type is _HELLO or frame_type is _HELLO_ACK:
            self._on_hello(frame, now_ns)
            return
        if self._state is not _UP:
            # The peer believes in a session we do not have: let it hear about ours soon.
            self.stats.dropped_not_up += 1
            self._hurry_hello(now_ns)
            return
        self._last_rx_ns = now_ns
        self._on_ack(frame.ack, now_ns)
        distance = (frame.seq - self._rx_expected) & _SEQ_MASK
        if frame_type.sequenced:
            if distance == 0:
                self._rx_expected = (self._rx_expected + 1) & _SEQ_MASK
                self._events.append(frame)
                self.stats.data_delivered += 1
                self._rx_unacked += 1
                if frame.flags & _ACK_NOW or self._rx_unacked >= self._ack_every:
                    self._ack_due_ns = now_ns
                elif self._ack_due_ns is None:
                    self._ack_due_ns = now_ns + self._ack_delay_ns
            elif distance & _HALF_SPACE:
                # Seen before: our ack was probably lost, so repeat it now.
                self.stats.duplicates += 1
                self._ack_due_ns = now_ns
            else:
                self.stats.out_of_order += 1
                self._request_nak(now_ns)
            return
        if frame_type is _NAK:
            self.stats.naks_received += 1
            if self._in_flight:
                self._retransmit = True
        # A control frame's seq is the next one its sender will use: if that is ahead of
        # what we expect, frames were lost at the tail, where no later frame shows a gap.
        if distance and not distance & _HALF_SPACE:
            self._request_nak(now_ns)
        if frame.flags & _ACK_NOW:
            self._ack_due_ns = now_ns

    def _on_ack(self, ack: int, now_ns: int) -> None:
        in_flight = self._in_flight
        if not in_flight:
            return
        acked = (ack - in_flight[0].seq + 1) & _SEQ_MASK
        if acked == 0 or acked > len(in_flight):
            return  # an old ack, or one for frames never sent: nothing new
        for _ in range(acked):
            in_flight.popleft()
        self._progress_ns = now_ns
        self._rto_ns_now = self._rto_ns
        if in_flight:
            self._rto_deadline_ns = now_ns + self._rto_ns_now
        else:
            self._rto_deadline_ns = None
            self._retransmit = False

    def _on_hello(self, frame: Frame, now_ns: int) -> None:
        try:
            hello = Hello.from_payload(frame.payload)
        except (ProtocolVersionMismatch, MalformedPayload) as exc:
            self._events.append(HandshakeFailed(exc))
            return
        if hello.role is self._role:
            if hello.session == self._session and hello.boot_nonce == self._boot_nonce:
                why = "the line echoes our own frames (a loopback, or a terminal echoing)"
            else:
                why = f"both ends are {self._role.value}s"
            self._events.append(HandshakeFailed(IncompatiblePeer(why), hello))
            return
        is_hello = frame.type is _HELLO
        if self._state is _UP:
            if hello.session == self._peer_session and hello.peer_session == self._session:
                # The peer repeats the handshake: it has not heard our HELLO_ACK yet.
                self._last_rx_ns = now_ns
                if is_hello:
                    self._hello_ack_pending = True
                return
            assert self._peer is not None
            reason = (
                LinkDownReason.PEER_RESET
                if hello.boot_nonce != self._peer.boot_nonce
                else LinkDownReason.PEER_RESTARTED
            )
            self._end_session(reason, now_ns, LinkState.CONNECTING)
        self._peer_session = hello.session
        if is_hello:
            self._hello_ack_pending = True
        if hello.peer_session == self._session:
            self._come_up(hello, now_ns)
            if not is_hello:
                # We learnt of the peer from its HELLO_ACK; tell it we heard it, or it
                # stays down until its next HELLO.
                self._hello_ack_pending = True
        elif not is_hello:
            self._hurry_hello(now_ns)

    def _request_nak(self, now_ns: int) -> None:
        if self._state is not _UP:
            return
        if self._rx_expected == self._nak_expected and now_ns - self._nak_ns < self._rto_ns:
            return
        self._nak_pending = True
        self._nak_expected = self._rx_expected
        self._nak_ns = now_ns

    def _hurry_hello(self, now_ns: int) -> None:
        # Bring the next HELLO forward, but not to more than four per rto: a peer stuck
        # in a dead session may be sending a whole window of frames at us.
        soonest = now_ns
        if self._last_hello_ns is not None:
            soonest = max(now_ns, self._last_hello_ns + self._rto_ns // 4)
        self._hello_due = min(self._hello_due, soonest)

    # --- sending ----------------------------------------------------------------------

    def _send_session_frames(self, now_ns: int, frames: list[bytes]) -> None:
        stats = self.stats
        ack = (self._rx_expected - 1) & _SEQ_MASK
        carried_ack = False
        if self._nak_pending or self._retransmit:
            carried_ack = self._send_repairs(now_ns, ack, frames)
        while self._queue and len(self._in_flight) < self._tx_window:
            out = self._queue.popleft()
            frames.append(
                encode_frame(out.type, out.payload, seq=out.seq, ack=ack,
                             request_id=out.request_id)
            )
            out.transmitted = True
            if not self._in_flight:
                self._rto_deadline_ns = now_ns + self._rto_ns_now
                self._progress_ns = now_ns
            self._in_flight.append(out)
            stats.data_sent += 1
            carried_ack = True
        if carried_ack:
            self._ack_due_ns = None
            self._rx_unacked = 0
        elif self._ack_due_ns is not None and now_ns >= self._ack_due_ns:
            frames.append(encode_frame(FrameType.ACK, seq=self._tx_next(), ack=ack))
            stats.acks_sent += 1
            self._ack_due_ns = None
            self._rx_unacked = 0
        if not frames and now_ns - self._last_tx_ns >= self._hb_interval_ns:
            frames.append(encode_frame(FrameType.HEARTBEAT, seq=self._tx_next(), ack=ack))
            stats.heartbeats_sent += 1
            self._ack_due_ns = None
            self._rx_unacked = 0

    def _send_repairs(self, now_ns: int, ack: int, frames: list[bytes]) -> bool:
        """The NAK due, then every unacknowledged frame again if a retransmission is
        due (go-back-N); True if that carried our ``ack``."""
        carried_ack = False
        if self._nak_pending:
            self._nak_pending = False
            frames.append(encode_frame(_NAK, seq=self._tx_next(), ack=ack))
            self.stats.naks_sent += 1
            carried_ack = True
        if self._retransmit:
            self._retransmit = False
            in_flight = self._in_flight
            for out in in_flight:
                frames.append(
                    encode_frame(out.type, out.payload, seq=out.seq, ack=ack,
                                 request_id=out.request_id,
                                 flags=_RETRANSMIT_FLAGS)
                )
            self.stats.retransmitted += len(in_flight)
            self._rto_deadline_ns = now_ns + self._rto_ns_now
            carried_ack = carried_ack or bool(in_flight)
        return carried_ack

    def _tx_next(self) -> int:
        """The sequence number the next new data frame on the wire will carry."""
        return self._queue[0].seq if self._queue else self._next_seq

    def _hello_payload(self) -> bytes:
        return Hello(
            role=self._role,
            boot_nonce=self._boot_nonce,
            session=self._session,
            peer_session=self._peer_session,
            capabilities=self._capabilities,
            max_payload=self._max_payload,
            window=self._window,
            dead_after_ns=self._dead_after_ns,
            device_id=self._device_id,
            board=self._board,
            image_version=self._image_version,
            image_sha256=self._image_sha256,
            image_confirmed=self._image_confirmed,
        ).to_payload()

    # --- sessions ---------------------------------------------------------------------

    def _new_session_id(self, old: int) -> int:
        while True:
            session = self._rng.getrandbits(32)
            if session not in (0, old):
                return session

    def _reset_sequences(self, now_ns: int) -> None:
        self._next_seq = 0
        self._in_flight = deque()
        self._queue = deque()
        self._retransmit = False
        self._rto_ns_now = self._rto_ns
        self._rto_deadline_ns = None
        self._progress_ns = now_ns
        self._rx_expected = 0
        self._rx_unacked = 0
        self._ack_due_ns = None
        self._nak_pending = False
        self._nak_expected = -1
        self._nak_ns = 0
        self._last_rx_ns = now_ns
        self._last_tx_ns = now_ns

    def _come_up(self, hello: Hello, now_ns: int) -> None:
        peer_reset = self._peer_boot is not None and hello.boot_nonce != self._peer_boot
        self._peer = hello
        self._peer_boot = hello.boot_nonce
        self._state = _UP
        self._tx_window = min(self._window, hello.window)
        self._peer_max_payload = hello.max_payload
        self._hb_interval_ns = min(
            self._heartbeat_ns, max(MIN_HEARTBEAT_INTERVAL_NS, hello.dead_after_ns // 3)
        )
        # The peer's window is the same min(), so half of it unacked means ack now, before
        # the peer stalls on a full window.
        self._ack_every = max(1, self._tx_window // 2)
        self._hello_pending = False
        self._hello_interval_ns = self._rto_ns
        self._reset_sequences(now_ns)
        self.stats.sessions += 1
        self._events.append(LinkEstablished(hello, peer_reset))

    def _end_session(self, reason: LinkDownReason, now_ns: int, state: LinkState) -> None:
        undelivered = tuple(out.undelivered() for out in self._in_flight) + tuple(
            out.undelivered() for out in self._queue
        )
        self._reset_sequences(now_ns)
        self._state = state
        self._down_reason = reason
        # A new session id makes the peer see a restart even if it missed our silence;
        # forgetting its session makes us wait for it to name ours.
        self._session = self._new_session_id(self._session)
        self._peer_session = 0
        self._hello_due = now_ns
        self._hello_interval_ns = self._rto_ns
        self._hello_pending = False
        self._hello_ack_pending = False
        self._events.append(LinkLost(reason, undelivered))
