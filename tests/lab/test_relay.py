"""The link-fault relay itself (tests/lab/relay.py), on a local TCP peer: each fault is
what its profile says, bytes never overtake each other, a seed names the faults, and
closing leaves no thread or socket behind."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.lab.relay import PROFILES, LinkProfile, LinkRelay

_WAIT_S = 10.0


class _Sink:
    """A TCP peer that records every byte it is sent (with its arrival time) and can
    send bytes back."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        self.received = bytearray()
        self.arrivals: list[tuple[float, int]] = []
        self.peer: socket.socket | None = None
        self._got = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        peer, _ = self._server.accept()
        self.peer = peer
        while data := peer.recv(65536):
            with self._got:
                self.received += data
                self.arrivals.append((time.monotonic(), len(self.received)))
                self._got.notify_all()
        with self._got:
            self._got.notify_all()

    def wait_for(self, count: int) -> bytes:
        with self._got:
            assert self._got.wait_for(lambda: len(self.received) >= count, _WAIT_S), (
                f"got {len(self.received)} of {count} bytes")
            return bytes(self.received)

    def wait_closed(self) -> None:
        """Until the relay has half-closed its connection to us (all was sent)."""
        self._thread.join(_WAIT_S)
        assert not self._thread.is_alive(), "the relay never closed its side"

    def close(self) -> None:
        if self.peer is not None:
            self.peer.close()
        self._server.close()
        self._thread.join(_WAIT_S)


@contextmanager
def _relayed(profile: LinkProfile, seed: int = 1) -> Iterator[tuple[socket.socket, _Sink,
                                                                    LinkRelay]]:
    sink = _Sink()
    try:
        with LinkRelay(sink.address, profile, seed=seed) as relay:
            client = socket.create_connection(relay.address, _WAIT_S)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                yield client, sink, relay
            finally:
                client.close()
    finally:
        sink.close()


def _relay_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("relay-")]


def test_a_clean_link_carries_every_byte_both_ways_and_closing_joins_every_thread() -> None:
    message = bytes(range(256)) * 64
    with _relayed(PROFILES["clean"]) as (client, sink, relay):
        client.sendall(message)
        assert sink.wait_for(len(message)) == message
        assert sink.peer is not None
        sink.peer.sendall(b"back")
        got = b""
        while len(got) < 4:
            got += client.recv(4)
        assert got == b"back"
    assert _relay_threads() == []
    assert relay.stats.connections == 1 and relay.stats.faults == 0
    assert relay.stats.to_device.bytes_out == len(message)
    assert relay.stats.to_host.bytes_out == 4


def test_latency_delays_each_chunk_and_jitter_never_reorders() -> None:
    with _relayed(LinkProfile("jitter", latency_ms=20.0, jitter_ms=15.0)) as (client, sink, _):
        sent: list[float] = []
        for i in range(60):
            sent.append(time.monotonic())
            client.sendall(bytes([i]))
            time.sleep(0.002)
        received = sink.wait_for(60)
    assert received == bytes(range(60))  # in order, however each chunk's delay was drawn
    first_arrival = sink.arrivals[0][0]
    assert first_arrival - sent[0] >= 0.005 - 0.001  # never less than latency - jitter


def test_a_constant_latency_is_at_least_its_figure() -> None:
    with _relayed(PROFILES["latency-50ms"]) as (client, sink, relay):
        t0 = time.monotonic()
        client.sendall(b"x")
        sink.wait_for(1)
        assert sink.arrivals[0][0] - t0 >= 0.050
    assert relay.stats.to_device.max_delay_ns >= 50_000_000


def test_the_stall_holds_every_byte_until_it_ends() -> None:
    profile = LinkProfile("stall", stall_s=0.3, stall_after_s=0.1)
    with _relayed(profile) as (client, sink, relay):
        t0 = time.monotonic()
        client.sendall(b"a")
        sink.wait_for(1)
        time.sleep(0.15)  # into the stall
        client.sendall(b"b")
        sink.wait_for(2)
        assert sink.arrivals[-1][0] - t0 >= 0.4 - 0.01
    assert relay.stats.to_device.stalled_chunks == 1


def test_drops_flips_and_duplicates_are_seeded_and_counted() -> None:
    profile = LinkProfile("all", drop_byte_pct=1.0, flip_chunk_pct=5.0,
                          duplicate_chunk_pct=5.0)
    chunks = [bytes([i % 256]) * 100 for i in range(400)]

    def one_run(seed: int) -> tuple[bytes, int, int, int]:
        with _relayed(profile, seed) as (client, sink, relay):
            for chunk in chunks:
                client.sendall(chunk)
                # One chunk a recv on the relay's side: its chunk faults fall alike.
                time.sleep(0.0005)
            client.shutdown(socket.SHUT_WR)
            sink.wait_closed()
            stats = relay.stats.to_device
            return (bytes(sink.received), stats.dropped_bytes, stats.flipped_chunks,
                    stats.duplicated_chunks)

    received, dropped, flipped, duplicated = one_run(seed=7)
    total = sum(len(c) for c in chunks)
    assert 0.005 * total < dropped < 0.02 * total
    assert flipped > 0 and duplicated > 0
    assert received != b"".join(chunks)
    again = one_run(seed=7)
    # The kernel may merge two sends into one recv, so chunk faults may shift; byte
    # drops follow the byte count alone and repeat exactly.
    assert again[1] == dropped
    assert one_run(seed=8)[1] != dropped


@pytest.mark.parametrize("bad", [
    {"latency_ms": 5.0, "jitter_ms": 10.0},
    {"latency_ms": 6000.0},
    {"stall_s": 60.0},
    {"drop_byte_pct": 100.0},
    {"flip_chunk_pct": -1.0},
])
def test_a_profile_out_of_its_bounds_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="link profile"):
        LinkProfile("bad", **bad)


def test_a_device_that_is_not_there_is_recorded_and_the_host_is_closed() -> None:
    with socket.create_server(("127.0.0.1", 0)) as spare:
        gone = spare.getsockname()[:2]
    with LinkRelay(gone, PROFILES["clean"]) as relay:
        client = socket.create_connection(relay.address, _WAIT_S)
        client.settimeout(_WAIT_S)
        assert client.recv(1) == b""  # closed, not left hanging
        client.close()
    assert relay.stats.errors and str(gone[1]) in relay.stats.errors[0]
    assert _relay_threads() == []
