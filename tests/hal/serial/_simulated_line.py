"""The in-test line the link endpoint's tests drive (hal.serial._link): two
:class:`App` ends joined by two :class:`Pipe` s, with a fake clock the :class:`Line`
advances from one deadline to the next.

Everything is deterministic: time is an integer the line advances, and every fault a
pipe injects comes from a seeded ``random.Random``.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hal.serial._frames import (
    DATA_TYPES,
    CorruptFrame,
    Frame,
    FrameDecoder,
    Noise,
    Role,
)
from hal.serial._link import (
    HandshakeFailed,
    LinkEndpoint,
    LinkEstablished,
    LinkEvent,
    LinkLost,
    LinkState,
)

MS = 1_000_000
S = 1_000_000_000
FAST: dict[str, Any] = {
    "window": 4,
    "rto_ns": 20 * MS,
    "heartbeat_ns": 200 * MS,
    "dead_after_ns": 1 * S,
    "ack_delay_ns": 2 * MS,
}
TYPES = sorted(DATA_TYPES)
MESSAGE = struct.Struct("<IQ")


def make(role: Role, seed: int, **overrides: Any) -> LinkEndpoint:
    params = {**FAST, **overrides}
    params.setdefault("boot_nonce", random.Random(seed).getrandbits(64))
    return LinkEndpoint(role, rng=random.Random(seed), **params)


def frames_in(data: bytes) -> list[Frame]:
    return [item for item in FrameDecoder().feed(data) if isinstance(item, Frame)]


def _pieces(data: bytes) -> list[bytes]:
    """Split a write into frames, each keeping its trailing delimiter."""
    pieces, start = [], 0
    while (end := data.find(0, start)) >= 0:
        pieces.append(data[start : end + 1])
        start = end + 1
    if start < len(data):
        pieces.append(data[start:])
    return pieces


class Pipe:
    """One direction of a serial line: FIFO with latency, and faults from a seeded RNG.

    Rates: ``bit_flip`` and ``drop_byte`` per byte, ``drop_frame`` and ``dup_frame`` per
    frame. ``cut`` loses everything written; ``stall_until`` holds delivery back;
    ``tamper`` rewrites each frame (one piece in, any pieces out) for targeted tests.
    """

    def __init__(
        self,
        rng: random.Random | None = None,
        *,
        latency_ns: int = 1 * MS,
        bit_flip: float = 0.0,
        drop_byte: float = 0.0,
        drop_frame: float = 0.0,
        dup_frame: float = 0.0,
    ) -> None:
        self.rng = rng or random.Random(0)
        self.latency_ns = latency_ns
        self.bit_flip = bit_flip
        self.drop_byte = drop_byte
        self.drop_frame = drop_frame
        self.dup_frame = dup_frame
        self.cut = False
        self.stall_until = 0
        self.tamper: Callable[[bytes], list[bytes]] | None = None
        self.taps: list[Callable[[bytes, int], None]] = []
        """Listeners of every write, ``tap(data, now)``, before the line's faults."""
        self.last_delivery_ns: int | None = None
        self._queue: deque[tuple[int, bytes]] = deque()
        self._last_arrival = 0

    def write(self, data: bytes, now: int) -> None:
        for tap in self.taps:
            tap(data, now)
        if self.cut:
            return
        rng = self.rng
        for piece in _pieces(data):
            for p in [piece] if self.tamper is None else self.tamper(piece):
                if self.drop_frame and rng.random() < self.drop_frame:
                    continue
                damaged = self._damage(p)
                for _ in range(2 if self.dup_frame and rng.random() < self.dup_frame else 1):
                    self.inject(damaged, now)

    def inject(self, data: bytes, now: int) -> None:
        """Put bytes on the line as they are (no faults)."""
        arrival = max(now + self.latency_ns, self._last_arrival)
        self._last_arrival = arrival
        self._queue.append((arrival, data))

    def _damage(self, piece: bytes) -> bytes:
        if not (self.bit_flip or self.drop_byte):
            return piece
        rng, out = self.rng, bytearray()
        for byte in piece:
            if self.drop_byte and rng.random() < self.drop_byte:
                continue
            if self.bit_flip and rng.random() < self.bit_flip * 8:
                byte ^= 1 << rng.randrange(8)
            out.append(byte)
        return bytes(out)

    def next_arrival(self) -> int | None:
        return max(self._queue[0][0], self.stall_until) if self._queue else None

    def read(self, now: int) -> bytes:
        if now < self.stall_until:
            return b""
        out = []
        while self._queue and self._queue[0][0] <= now:
            out.append(self._queue.popleft()[1])
        if out:
            self.last_delivery_ns = now
        return b"".join(out)


@dataclass
class App:
    """What runs above an endpoint in these tests: sends numbered messages, tags each with
    its session count ("epoch"), records what arrives, and sends the undelivered again."""

    link: LinkEndpoint
    rng: random.Random
    pending: deque[int] = field(default_factory=deque)
    epoch: int = 0
    sent: dict[int, list[int]] = field(default_factory=dict)
    got: list[tuple[int, int]] = field(default_factory=list)
    lost: list[tuple[int, LinkLost, int]] = field(default_factory=list)
    ups: list[tuple[int, LinkEstablished]] = field(default_factory=list)
    failures: list[HandshakeFailed] = field(default_factory=list)
    noise: list[Noise | CorruptFrame] = field(default_factory=list)
    next_tick: int = 0
    burst: int = 4

    def handle(self, events: list[LinkEvent], now: int) -> None:
        for event in events:
            if isinstance(event, Frame):
                epoch, mid = MESSAGE.unpack_from(event.payload)
                assert event.type is TYPES[mid % len(TYPES)]
                assert event.request_id == mid & 0xFFFF
                assert event.payload == message(epoch, mid)
                self.got.append((epoch, mid))
            elif isinstance(event, LinkEstablished):
                self.epoch += 1
                self.sent[self.epoch] = []
                self.ups.append((now, event))
            elif isinstance(event, LinkLost):
                self.lost.append((self.epoch, event, now))
                for u in reversed(event.undelivered):
                    self.pending.appendleft(MESSAGE.unpack_from(u.payload)[1])
            elif isinstance(event, HandshakeFailed):
                self.failures.append(event)
            else:
                self.noise.append(event)

    def tick(self, now: int) -> None:
        if self.link.state is not LinkState.UP or not self.pending or now < self.next_tick:
            return
        for _ in range(self.rng.randint(1, self.burst)):
            if not self.pending:
                break
            mid = self.pending.popleft()
            self.link.send(TYPES[mid % len(TYPES)], message(self.epoch, mid), mid & 0xFFFF)
            self.sent[self.epoch].append(mid)
        self.next_tick = now + self.rng.randint(0, 10 * MS)

    def wakeup(self) -> int | None:
        if self.link.state is LinkState.UP and self.pending:
            return self.next_tick
        return None


def send_now(app: App, mid: int) -> None:
    """Send message ``mid`` at once, bypassing the app's pacing."""
    app.link.send(TYPES[mid % len(TYPES)], message(app.epoch, mid), mid & 0xFFFF)
    app.sent[app.epoch].append(mid)


def message(epoch: int, mid: int) -> bytes:
    return MESSAGE.pack(epoch, mid) + bytes(mid % 40)


class Line:
    """Two apps joined by two pipes, advanced from deadline to deadline."""

    def __init__(self, host: App, device: App, h2d: Pipe, d2h: Pipe) -> None:
        self.host, self.device, self.h2d, self.d2h = host, device, h2d, d2h
        self.now = 0
        self.actions: list[tuple[int, Callable[[], None]]] = []

    def at(self, t: int, action: Callable[[], None]) -> None:
        self.actions.append((t, action))
        self.actions.sort(key=lambda a: a[0])

    def _ends(self) -> tuple[tuple[App, Pipe, Pipe], ...]:
        return ((self.host, self.d2h, self.h2d), (self.device, self.h2d, self.d2h))

    def step(self) -> int:
        now = self.now
        for app, inbound, _ in self._ends():
            data = inbound.read(now)
            if data:
                app.link.receive(data, now)
        while self.actions and self.actions[0][0] <= now:
            self.actions.pop(0)[1]()
        for app, _, outbound in self._ends():
            app.handle(app.link.events(), now)
            app.tick(now)
            out = app.link.outgoing(now)
            if out:
                outbound.write(out, now)
            # The sans-IO contract: once outgoing(now) is written, nothing is due before
            # a later time (no busy loop for the caller).
            assert app.link.next_deadline_ns() > now
            app.handle(app.link.events(), now)
        candidates = [app.link.next_deadline_ns() for app in (self.host, self.device)]
        candidates += [t for app in (self.host, self.device) if (t := app.wakeup()) is not None]
        candidates += [t for p in (self.h2d, self.d2h) if (t := p.next_arrival()) is not None]
        candidates += [t for t, _ in self.actions[:1]]
        return max(min(candidates), now + 1)

    def run_until(self, t_end: int) -> None:
        while True:
            nxt = self.step()
            if nxt > t_end:
                self.now = t_end
                return
            self.now = nxt

    def run_until_quiet(self, limit_ns: int) -> None:
        """Run until both sides are up with nothing left to send or acknowledge."""
        while True:
            nxt = self.step()
            if self.quiet():
                return
            assert nxt < limit_ns, "the line never settled"
            self.now = nxt

    def quiet(self) -> bool:
        return (
            all(
                app.link.state is LinkState.UP
                and not app.pending
                and app.link.in_flight == 0
                and app.link.queued == 0
                for app in (self.host, self.device)
            )
            and not self.actions
        )


def connected(seed: int = 1, **pipe: Any) -> Line:
    host = App(make(Role.HOST, seed), random.Random(seed + 10))
    device = App(
        make(Role.DEVICE, seed + 1, device_id="SN-1", board="pe-1", capabilities={"sim"}),
        random.Random(seed + 11),
    )
    line = Line(
        host,
        device,
        Pipe(random.Random(seed + 20), **pipe),
        Pipe(random.Random(seed + 21), **pipe),
    )
    line.run_until(100 * MS)
    return line


def check_accounting(sender: App, receiver: App, ids: set[int]) -> None:
    """What the link promises, checked from both ends' records (module docstring of
    hal.serial._link): in order and exactly once within a session, and an exact account of
    what a session's end left unacknowledged."""
    delivered: dict[int, list[int]] = {}
    last_epoch = 0
    for epoch, mid in receiver.got:
        assert epoch >= last_epoch, "a frame of an ended session came after a newer one"
        last_epoch = epoch
        delivered.setdefault(epoch, []).append(mid)
    lost = {epoch: event for epoch, event, _ in sender.lost}
    for epoch, sent in sender.sent.items():
        got = delivered.get(epoch, [])
        assert got == sent[: len(got)], f"epoch {epoch}: out of order, duplicated or invented"
        if epoch in lost:
            undelivered = [MESSAGE.unpack_from(u.payload)[1] for u in lost[epoch].undelivered]
            acked = len(sent) - len(undelivered)
            assert undelivered == sent[acked:], "undelivered must be the unacknowledged suffix"
            assert len(got) >= acked, "an acknowledged frame was not delivered"
            flags = [u.transmitted for u in lost[epoch].undelivered]
            assert flags == sorted(flags, reverse=True)
            for index, u in enumerate(lost[epoch].undelivered):
                if not u.transmitted:
                    assert acked + index >= len(got), "an untransmitted frame was delivered"
        elif epoch == sender.epoch:
            assert got == sent, f"epoch {epoch}: not everything arrived"
    assert {mid for _, mid in receiver.got} == ids


def exchange(line: Line, n: int, limit_ns: int = 60 * S) -> None:
    line.host.pending.extend(range(n))
    line.device.pending.extend(range(1000, 1000 + n))
    line.run_until_quiet(line.now + limit_ns)
