"""A link-fault relay: a TCP relay with a real link's faults, seeded and bounded, between
a host (``SerialBoard("socket://...")``) and a device (``printer-emu serve --tcp``)::

    with ServeProcess("devkit", transport="tcp") as device, \\
            LinkRelay(device.url, PROFILES["latency-20ms"], seed=1) as relay, \\
            SerialBoard(relay.url, config) as board:
        ...

The contract:

* **Both directions, independently.** Each direction has a reader thread, which takes
  what its source sends (a *chunk*: one ``recv``), applies the profile's byte faults to
  it and queues it with the instant it is due, and a writer thread, which sends each
  chunk at that instant. Bytes are never reordered within a direction: a chunk is due no
  earlier than the one before it (jitter delays, it never overtakes).
* **Seeded.** Every random draw comes from the seed, the connection's number and the
  direction, so a profile and a seed name one run's faults (where TCP cuts the stream
  into chunks is the kernel's, so chunk faults land where the chunks fall).
* **Bounded.** Latency plus jitter at most :data:`MAX_DELAY_S`, a stall at most
  :data:`MAX_STALL_S`, at most :data:`MAX_QUEUED_BYTES` held per direction (the reader
  stops reading beyond that, as a full link pushes back), and one stall per relay.
* **Clean.** :meth:`LinkRelay.close` (or leaving the ``with``) closes every socket and
  joins every thread within :data:`JOIN_TIMEOUT_S`, or raises naming the one that did
  not stop. One side closing its connection half-closes the other's once what was
  queued toward it has been sent.

The faults of a :class:`LinkProfile`: a constant latency; a jitter (each chunk's delay
uniform in ``latency ± jitter``, never below 0); one stall (every byte due in the window
``[stall_after_s, stall_after_s + stall_s)`` after the first connection is held to its
end, both ways: a silence on the line); a bit flipped in a share of chunks; a share of
bytes dropped; a share of chunks delivered twice. :data:`PROFILES` are the lab's standard
ones; :attr:`LinkRelay.stats` counts what was done, so a test can check the faults it
asked for did happen.
"""

from __future__ import annotations

import contextlib
import math
import random
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Final

MAX_DELAY_S: Final = 5.0
"""The longest a chunk may be delayed by latency and jitter."""
MAX_STALL_S: Final = 10.0
"""The longest stall a profile may ask for."""
MAX_QUEUED_BYTES: Final = 1 << 20
"""Bytes held per direction before the relay stops reading from the sender."""
JOIN_TIMEOUT_S: Final = 5.0
"""How long :meth:`LinkRelay.close` waits for each thread."""
CONNECT_TIMEOUT_S: Final = 5.0
"""How long the relay waits for the device to accept a connection."""
_RECV_BYTES: Final = 65_536
_ACCEPT_POLL_S: Final = 0.05
"""How often the accept loop looks whether the relay is closing."""


@dataclass(frozen=True)
class LinkProfile:
    """One kind of link (see the module docstring). Percentages are of chunks (one
    ``recv`` each) or of bytes, as their names say."""

    name: str
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    stall_s: float = 0.0
    stall_after_s: float = 2.0
    """When the stall starts, from the relay's first connection."""
    flip_chunk_pct: float = 0.0
    drop_byte_pct: float = 0.0
    duplicate_chunk_pct: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"link profile name {self.name!r}: one word, not empty")
        if not 0 <= self.jitter_ms <= self.latency_ms or self.latency_ms < 0:
            raise ValueError(f"link profile {self.name}: need 0 <= jitter_ms <= latency_ms, "
                             f"got {self.latency_ms} ± {self.jitter_ms} ms")
        if (self.latency_ms + self.jitter_ms) / 1000 > MAX_DELAY_S:
            raise ValueError(f"link profile {self.name}: latency + jitter over "
                             f"{MAX_DELAY_S:g} s")
        if not 0 <= self.stall_s <= MAX_STALL_S or self.stall_after_s < 0:
            raise ValueError(f"link profile {self.name}: a stall of 0..{MAX_STALL_S:g} s "
                             f"after >= 0 s, got {self.stall_s} s after {self.stall_after_s} s")
        for what in ("flip_chunk_pct", "drop_byte_pct", "duplicate_chunk_pct"):
            # Below 100: a link that drops every byte carries nothing to test.
            if not 0 <= getattr(self, what) < 100:
                raise ValueError(f"link profile {self.name}: {what} must be in [0, 100)")

    def stalled_after(self, seconds: float) -> LinkProfile:
        """The same profile with its stall ``seconds`` after the first connection (a
        slower board's job reaches the middle later)."""
        return replace(self, stall_after_s=seconds)


PROFILES: Final[dict[str, LinkProfile]] = {p.name: p for p in (
    LinkProfile("clean"),
    LinkProfile("latency-5ms", latency_ms=5.0),
    LinkProfile("latency-20ms", latency_ms=20.0),
    LinkProfile("latency-50ms", latency_ms=50.0),
    LinkProfile("jitter-20ms-15ms", latency_ms=20.0, jitter_ms=15.0),
    # The shipped boards declare the link down after 1.0 s of silence (link_dead_ms):
    # 0.9 s is just under it (the link must ride it out); 1.5 s is over it (link down,
    # then back, and the job resumes).
    LinkProfile("stall-0.9s", stall_s=0.9),
    LinkProfile("stall-1.5s", stall_s=1.5),
    LinkProfile("flips-0.5pct", flip_chunk_pct=0.5),
    LinkProfile("drops-0.1pct", drop_byte_pct=0.1),
    LinkProfile("duplicates-0.5pct", duplicate_chunk_pct=0.5),
)}
"""The lab's standard profiles, by name."""


@dataclass
class DirectionStats:
    """What one direction carried and did to it, over all connections."""

    chunks: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    flipped_chunks: int = 0
    dropped_bytes: int = 0
    duplicated_chunks: int = 0
    stalled_chunks: int = 0
    max_delay_ns: int = 0


@dataclass
class RelayStats:
    """:attr:`LinkRelay.stats`; read it after the relay is closed for final figures."""

    connections: int = 0
    to_device: DirectionStats = field(default_factory=DirectionStats)
    to_host: DirectionStats = field(default_factory=DirectionStats)
    errors: list[str] = field(default_factory=list)
    """Connections the relay could not make or carry on (one line each)."""

    @property
    def faults(self) -> int:
        """Every fault applied: flipped and duplicated chunks, dropped bytes, stalled
        chunks, both ways."""
        return sum(d.flipped_chunks + d.dropped_bytes + d.duplicated_chunks + d.stalled_chunks
                   for d in (self.to_device, self.to_host))


class _StallWindow:
    """The relay's one stall, on ``time.monotonic_ns``: set at the first connection."""

    def __init__(self, profile: LinkProfile) -> None:
        self._profile = profile
        self.start_ns: int | None = None
        self.end_ns = 0

    def arm(self, now_ns: int) -> None:
        if self._profile.stall_s > 0 and self.start_ns is None:
            self.start_ns = now_ns + round(self._profile.stall_after_s * 1e9)
            self.end_ns = self.start_ns + round(self._profile.stall_s * 1e9)

    def hold(self, due_ns: int) -> int:
        """When a chunk due at ``due_ns`` goes out."""
        if self.start_ns is not None and self.start_ns <= due_ns < self.end_ns:
            return self.end_ns
        return due_ns


class _Direction:
    """One direction of one connection: a reader and a writer thread (module docstring)."""

    def __init__(self, name: str, source: socket.socket, sink: socket.socket,
                 profile: LinkProfile, seed: str, stall: _StallWindow,
                 stats: DirectionStats, on_broken: Callable[[], None]) -> None:
        self.name = name
        self._source = source
        self._sink = sink
        self._profile = profile
        # One stream of draws a fault: the bytes dropped follow the byte count alone,
        # however the kernel cuts the stream into chunks.
        self._delay_rng = random.Random(f"{seed}/delay")
        self._drop_rng = random.Random(f"{seed}/drop")
        self._flip_rng = random.Random(f"{seed}/flip")
        self._copy_rng = random.Random(f"{seed}/copy")
        self._stall = stall
        self._stats = stats
        self._on_broken = on_broken
        self._ready = threading.Condition()
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queued_bytes = 0
        self._last_due_ns = 0
        self._eof = False
        self._closed = False
        self._drop_p = profile.drop_byte_pct / 100
        self._bytes_to_next_drop = self._drop_gap()
        self.threads = [
            threading.Thread(target=self._read, name=f"relay-{name}-read", daemon=True),
            threading.Thread(target=self._write, name=f"relay-{name}-write", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    # -- faults ------------------------------------------------------------------------

    def _drop_gap(self) -> int:
        """Bytes carried before the next dropped one (geometric, so each byte is dropped
        with the profile's probability)."""
        if self._drop_p == 0:
            return sys.maxsize
        return int(math.log(1.0 - self._drop_rng.random()) / math.log(1.0 - self._drop_p))

    def _drop(self, data: bytes) -> bytes:
        if self._bytes_to_next_drop >= len(data):
            self._bytes_to_next_drop -= len(data)
            return data
        kept = bytearray()
        at = 0
        while at + self._bytes_to_next_drop < len(data):
            cut = at + self._bytes_to_next_drop
            kept += data[at:cut]
            at = cut + 1
            self._stats.dropped_bytes += 1
            self._bytes_to_next_drop = self._drop_gap()
        self._bytes_to_next_drop -= len(data) - at
        kept += data[at:]
        return bytes(kept)

    def _flip(self, data: bytes) -> bytes:
        if self._flip_rng.random() * 100 >= self._profile.flip_chunk_pct or not data:
            return data
        flipped = bytearray(data)
        flipped[self._flip_rng.randrange(len(data))] ^= 1 << self._flip_rng.randrange(8)
        self._stats.flipped_chunks += 1
        return bytes(flipped)

    def _copies(self) -> int:
        if self._copy_rng.random() * 100 < self._profile.duplicate_chunk_pct:
            self._stats.duplicated_chunks += 1
            return 2
        return 1

    def _delay_ns(self) -> int:
        p = self._profile
        jitter = self._delay_rng.uniform(-p.jitter_ms, p.jitter_ms) if p.jitter_ms else 0.0
        return round(max(0.0, p.latency_ms + jitter) * 1e6)

    # -- the threads -------------------------------------------------------------------

    def _read(self) -> None:
        while True:
            try:
                data = self._source.recv(_RECV_BYTES)
            except OSError:
                data = b""
            arrived_ns = time.monotonic_ns()
            with self._ready:
                if not data or self._closed:
                    self._eof = True
                    self._ready.notify_all()
                    return
                self._stats.chunks += 1
                self._stats.bytes_in += len(data)
                delay_ns = self._delay_ns()
                data = self._flip(self._drop(data))
                copies = self._copies()
                due_ns = max(arrived_ns + delay_ns, self._last_due_ns)
                held_ns = self._stall.hold(due_ns)
                if held_ns != due_ns:
                    self._stats.stalled_chunks += 1
                self._last_due_ns = held_ns
                self._stats.max_delay_ns = max(self._stats.max_delay_ns, held_ns - arrived_ns)
                while self._queued_bytes >= MAX_QUEUED_BYTES and not self._closed:
                    self._ready.wait()
                for _ in range(copies if data else 0):
                    self._queue.append((held_ns, data))
                    self._queued_bytes += len(data)
                self._ready.notify_all()

    def _write(self) -> None:
        while True:
            with self._ready:
                if self._closed:
                    return
                if not self._queue:
                    if self._eof:
                        break
                    self._ready.wait()
                    continue
                due_ns, data = self._queue[0]
                wait_ns = due_ns - time.monotonic_ns()
                if wait_ns > 0:
                    self._ready.wait(wait_ns / 1e9)
                    continue
                self._queue.popleft()
                self._queued_bytes -= len(data)
                self._ready.notify_all()
            try:
                self._sink.sendall(data)
            except OSError:
                self._on_broken()
                return
            self._stats.bytes_out += len(data)
        # The source said all it will: tell the sink so, once all of it is there.
        with contextlib.suppress(OSError):
            self._sink.shutdown(socket.SHUT_WR)


class _Connection:
    """One host connection and the device connection made for it."""

    def __init__(self, number: int, host: socket.socket, device: socket.socket,
                 profile: LinkProfile, seed: int, stall: _StallWindow,
                 stats: RelayStats) -> None:
        self._sockets = (host, device)
        self._shut = threading.Lock()
        self._is_shut = False
        self.directions = (
            _Direction(f"{number}-to-device", host, device, profile,
                       f"{seed}/{number}/to-device", stall, stats.to_device,
                       self.shutdown),
            _Direction(f"{number}-to-host", device, host, profile,
                       f"{seed}/{number}/to-host", stall, stats.to_host,
                       self.shutdown),
        )

    @property
    def threads(self) -> list[threading.Thread]:
        return [t for d in self.directions for t in d.threads]

    def start(self) -> None:
        for direction in self.directions:
            direction.start()

    def shutdown(self) -> None:
        """Stop both directions: their writers return, their readers wake on the
        sockets' shutdown. Safe from any thread, any number of times."""
        with self._shut:
            if self._is_shut:
                return
            self._is_shut = True
        for direction in self.directions:
            direction.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


class LinkRelay:
    """Listens on ``host`` (a free port) and relays each connection to ``device``
    (``"socket://HOST:PORT"`` or ``(host, port)``) through ``profile``'s faults, drawn
    from ``seed``. :attr:`url` is where a ``SerialBoard`` connects."""

    def __init__(self, device: str | tuple[str, int], profile: LinkProfile, *,
                 seed: int = 0, host: str = "127.0.0.1") -> None:
        self.device_address = _address_of(device)
        self.profile = profile
        self.seed = seed
        self.stats = RelayStats()
        self._stall = _StallWindow(profile)
        self._listener = socket.create_server((host, 0))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._stopping = threading.Event()
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, name="relay-accept",
                                          daemon=True)
        self._started = False
        self._closed = False

    @property
    def url(self) -> str:
        return f"socket://{self.address[0]}:{self.address[1]}"

    def __enter__(self) -> LinkRelay:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("the relay is closed")
        if not self._started:
            self._started = True
            self._acceptor.start()

    def close(self) -> None:
        """Close every socket and join every thread (see the module docstring)."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        if self._started:
            self._acceptor.join(JOIN_TIMEOUT_S)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.shutdown()
        stuck = []
        for thread in [t for c in connections for t in c.threads] + [self._acceptor]:
            if thread.ident is not None:
                thread.join(JOIN_TIMEOUT_S)
                if thread.is_alive():
                    stuck.append(thread.name)
        for connection in connections:
            connection.close()
        if stuck:
            raise RuntimeError(f"link relay: {', '.join(stuck)} did not stop within "
                               f"{JOIN_TIMEOUT_S:g} s")

    def _accept(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if not selector.select(_ACCEPT_POLL_S):
                    continue
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    continue
                self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            device = socket.create_connection(self.device_address, CONNECT_TIMEOUT_S)
        except OSError as exc:
            self.stats.errors.append(f"device {self.device_address}: {exc}")
            client.close()
            return
        device.settimeout(None)
        for sock in (client, device):
            # Each chunk goes out when it is due, not when Nagle would have it.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._stall.arm(time.monotonic_ns())
        with self._lock:
            number = self.stats.connections
            self.stats.connections += 1
            connection = _Connection(number, client, device, self.profile, self.seed,
                                     self._stall, self.stats)
            self._connections.append(connection)
        connection.start()


def _address_of(device: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(device, tuple):
        return device
    host_port = device.removeprefix("socket://").split("?", 1)[0]
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"link relay: device {device!r} is not socket://HOST:PORT")
    return host.strip("[]"), int(port)
