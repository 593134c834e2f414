"""The reliable link endpoint (hal.serial._link), driven through the in-test line of
``_simulated_line``: deterministic, in a fake clock, with faults from seeded generators.
"""

from __future__ import annotations

import functools
import itertools
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hal.serial._errors import (
    DecodeErrorKind,
    IncompatiblePeer,
    LinkDown,
    LinkDownReason,
    PayloadTooLarge,
    ProtocolVersionMismatch,
)
from hal.serial._frames import (
    DATA_TYPES,
    PROTOCOL_VERSION,
    CorruptFrame,
    Flag,
    Frame,
    FrameType,
    Noise,
    Role,
    encode_frame,
)
from hal.serial._link import (
    HandshakeFailed,
    LinkEndpoint,
    LinkLost,
    LinkState,
    Undelivered,
    suggested_rto_ns,
)
from hal.serial._payloads import Hello, encode_payload
from tests.hal.serial._simulated_line import (
    FAST,
    MS,
    App,
    Line,
    Pipe,
    S,
    check_accounting,
    connected,
    exchange,
    frames_in,
    make,
    send_now,
)

# --- handshake ---------------------------------------------------------------------------


def test_handshake_brings_both_ends_up_and_exchanges_hellos() -> None:
    line = connected()
    for app in (line.host, line.device):
        assert app.link.state is LinkState.UP
        assert len(app.ups) == 1 and not app.ups[0][1].peer_reset
    device_hello = line.host.ups[0][1].peer
    assert device_hello.role is Role.DEVICE and device_hello.device_id == "SN-1"
    assert device_hello.board == "pe-1" and device_hello.capabilities == {"sim"}
    assert device_hello.boot_nonce == line.device.link.boot_nonce
    assert line.host.link.peer == device_hello
    assert line.device.ups[0][1].peer.role is Role.HOST


def test_handshake_when_one_end_starts_much_later() -> None:
    host = App(make(Role.HOST, 1), random.Random(1))
    device = App(make(Role.DEVICE, 2), random.Random(2))
    line = Line(host, device, Pipe(), Pipe())
    line.h2d.cut = True  # the device is not there yet: the host's HELLOs go nowhere
    line.run_until(5 * S)
    assert host.link.state is LinkState.CONNECTING
    assert host.link.stats.hellos_sent < 40, "HELLO must back off"
    line.h2d.cut = False
    line.run_until(6 * S)
    assert host.link.state is device.link.state is LinkState.UP


def test_handshake_survives_a_lost_hello_ack() -> None:
    host = App(make(Role.HOST, 1), random.Random(1))
    device = App(make(Role.DEVICE, 2), random.Random(2))
    line = Line(host, device, Pipe(), Pipe())
    dropped: list[FrameType] = []

    def drop_first_hello_ack(piece: bytes) -> list[bytes]:
        kinds = [f.type for f in frames_in(piece)]
        if FrameType.HELLO_ACK in kinds and not dropped:
            dropped.append(FrameType.HELLO_ACK)
            return []
        return [piece]

    line.d2h.tamper = drop_first_hello_ack
    line.run_until(2 * S)
    assert dropped
    assert host.link.state is device.link.state is LinkState.UP


def test_send_before_the_link_is_up_raises_link_down() -> None:
    link = make(Role.HOST, 1)
    with pytest.raises(LinkDown) as info:
        link.send(FrameType.REQUEST, b"")
    assert info.value.reason is LinkDownReason.NOT_CONNECTED
    assert link.next_deadline_ns() == 0  # the first HELLO is due at once
    assert frames_in(link.outgoing(0))[0].type is FrameType.HELLO


def _raw_hello(version: int = PROTOCOL_VERSION, **fields: Any) -> bytes:
    hello = {
        "version": version,
        "role": "device",
        "limits": {"max_payload": 1024, "window": 8, "dead_after_ns": S},
        "boot": 5,
        "session": 77,
        "peer_session": 0,
    }
    hello.update(fields)
    return encode_frame(FrameType.HELLO, encode_payload(hello))


def test_hello_of_another_major_version_fails_the_handshake() -> None:
    host = make(Role.HOST, 1)
    host.receive(b"\x00" + _raw_hello(version=0x21), 0)
    [failed] = host.events()
    assert isinstance(failed, HandshakeFailed)
    assert isinstance(failed.error, ProtocolVersionMismatch) and failed.error.remote == 0x21
    assert host.state is LinkState.CONNECTING


def test_frames_of_another_major_version_fail_the_handshake() -> None:
    host = make(Role.HOST, 1)
    host.receive(b"\x00" + encode_frame(FrameType.HELLO, b"\xa0", version=0x20), 0)
    corrupt, failed = host.events()
    assert isinstance(corrupt, CorruptFrame) and corrupt.kind is DecodeErrorKind.BAD_VERSION
    assert isinstance(failed, HandshakeFailed)
    assert isinstance(failed.error, ProtocolVersionMismatch)


def test_malformed_hello_fails_the_handshake() -> None:
    host = make(Role.HOST, 1)
    host.receive(_raw_hello(session=0), 0)
    [failed] = host.events()
    assert isinstance(failed, HandshakeFailed) and failed.hello is None


def test_two_hosts_on_one_line_are_refused() -> None:
    a, b = make(Role.HOST, 1), make(Role.HOST, 2)
    b.receive(a.outgoing(0), 0)
    [failed] = b.events()
    assert isinstance(failed, HandshakeFailed) and isinstance(failed.error, IncompatiblePeer)
    assert "both ends" in str(failed.error)
    assert b.state is LinkState.CONNECTING


def test_an_echoing_line_is_recognised() -> None:
    host = make(Role.HOST, 1)
    host.receive(host.outgoing(0), 1)
    [failed] = host.events()
    assert isinstance(failed, HandshakeFailed) and "echo" in str(failed.error)


# --- data ---------------------------------------------------------------------------------


def test_frames_arrive_in_order_with_type_and_request_id_intact() -> None:
    line = connected()
    exchange(line, 50)
    check_accounting(line.host, line.device, set(range(50)))
    check_accounting(line.device, line.host, set(range(1000, 1050)))
    assert [mid for _, mid in line.device.got] == list(range(50))
    assert line.host.link.stats.retransmitted == 0


def test_send_refuses_what_it_cannot_carry() -> None:
    line = connected()
    link = line.host.link
    with pytest.raises(ValueError):
        link.send(FrameType.ACK, b"")
    with pytest.raises(ValueError):
        link.send(FrameType.REQUEST, b"", request_id=0x10000)
    with pytest.raises(PayloadTooLarge) as info:
        link.send(FrameType.REQUEST, bytes(link.peer_max_payload + 1))
    assert info.value.limit == 1024 == link.peer_max_payload


def test_window_is_the_smaller_of_the_two_and_bounds_frames_in_flight() -> None:
    host = App(make(Role.HOST, 1, window=8), random.Random(1))
    device = App(make(Role.DEVICE, 2, window=3), random.Random(2))
    line = Line(host, device, Pipe(), Pipe())
    line.run_until(50 * MS)
    assert host.link.send_window == device.link.send_window == 3
    for i in range(10):
        host.link.send(FrameType.REQUEST, b"", request_id=i)
    out = frames_in(host.link.outgoing(line.now))
    assert [f.request_id for f in out] == [0, 1, 2]
    assert host.link.in_flight == 3 and host.link.queued == 7


def test_several_requests_in_flight_keep_their_ids() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now = line.now
    sent = [
        (FrameType.REQUEST, 7),
        (FrameType.REQUEST, 3),
        (FrameType.EVENT, 0xFFFF),
        (FrameType.REQUEST, 0),
    ]
    for frame_type, rid in sent:
        host.send(frame_type, bytes([rid & 0xFF]), request_id=rid)
    device.receive(host.outgoing(now), now)
    got = [(f.type, f.request_id, f.payload) for f in device.events() if isinstance(f, Frame)]
    assert got == [(t, rid, bytes([rid & 0xFF])) for t, rid in sent]


def test_ack_rides_on_a_prompt_response() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now = line.now
    host.send(FrameType.REQUEST, b"", request_id=1)
    device.receive(host.outgoing(now), now)
    [request] = device.events()
    assert isinstance(request, Frame)
    device.send(FrameType.RESPONSE, b"", request_id=request.request_id)
    [response] = frames_in(device.outgoing(now))
    assert response.type is FrameType.RESPONSE and response.ack == request.seq
    host.receive(response.encode(), now)
    assert host.in_flight == 0


def test_pure_ack_is_delayed_but_bounded() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now = line.now
    host.send(FrameType.EVENT, b"")
    device.receive(host.outgoing(now), now)
    assert device.outgoing(now) == b""  # the application may still answer
    assert device.next_deadline_ns() == now + FAST["ack_delay_ns"]
    [ack] = frames_in(device.outgoing(now + FAST["ack_delay_ns"]))
    assert ack.type is FrameType.ACK and ack.ack == 0


def test_half_a_window_unacknowledged_is_acked_at_once() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now = line.now
    for _ in range(2):  # window 4
        host.send(FrameType.EVENT, b"")
    device.receive(host.outgoing(now), now)
    [ack] = frames_in(device.outgoing(now))
    assert ack.type is FrameType.ACK and ack.ack == 1


def test_duplicate_is_dropped_and_acked_at_once() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now = line.now
    host.send(FrameType.EVENT, b"\xa0")
    wire = host.outgoing(now)
    device.receive(wire, now)
    device.receive(wire, now)
    assert [type(e) for e in device.events()] == [Frame]
    assert device.stats.duplicates == 1
    [ack] = frames_in(device.outgoing(now))
    assert ack.type is FrameType.ACK


def test_corrupt_frame_is_naked_and_resent_before_the_timeout() -> None:
    line = connected()
    damaged: list[int] = []

    def damage_first_data(piece: bytes) -> list[bytes]:
        if not damaged and any(f.type in DATA_TYPES for f in frames_in(piece)):
            damaged.append(1)
            bad = bytearray(piece)
            bad[len(bad) // 2] ^= 0x10
            return [bytes(bad)]
        return [piece]

    line.h2d.tamper = damage_first_data
    start = line.now
    exchange(line, 3)
    assert damaged
    assert line.device.link.stats.naks_sent == 1
    assert line.host.link.stats.naks_received == 1
    assert line.host.link.stats.timeouts == 0
    assert line.now - start < FAST["rto_ns"]
    assert [mid for _, mid in line.device.got] == [0, 1, 2]


def test_lost_tail_is_detected_from_the_next_control_frame() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now = line.now
    host.send(FrameType.EVENT, b"")
    host.outgoing(now)  # lost on the way: no later data frame will show the gap
    device.send(FrameType.EVENT, b"")
    host.receive(device.outgoing(now), now)
    # The host's pure ACK says "my next seq is 1"; the device expects 0 and NAKs at once.
    [ack] = frames_in(host.outgoing(now + FAST["ack_delay_ns"]))
    assert (ack.type, ack.seq) == (FrameType.ACK, 1)
    device.receive(ack.encode(), now + FAST["ack_delay_ns"])
    [nak] = frames_in(device.outgoing(now + FAST["ack_delay_ns"]))
    assert nak.type is FrameType.NAK and nak.ack == 0xFFFF


def test_retransmission_timer_backs_off() -> None:
    line = connected()
    link = line.host.link
    line.h2d.cut = True
    line.host.link.send(FrameType.EVENT, b"")
    sent_at: list[int] = []

    def record(data: bytes, now: int) -> None:
        if any(f.flags & Flag.RETRANSMIT for f in frames_in(data)):
            sent_at.append(now)

    line.h2d.taps.append(record)
    line.run_until(line.now + 600 * MS)
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps[:3] == [40 * MS, 80 * MS, 160 * MS]
    assert link.stats.timeouts == len(sent_at)


def test_retransmissions_ask_for_an_ack_and_carry_the_current_ack() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now = line.now
    device.send(FrameType.EVENT, b"")
    host.receive(device.outgoing(now), now)
    host.send(FrameType.REQUEST, b"")
    host.outgoing(now)  # lost
    later = now + FAST["rto_ns"]
    [again] = frames_in(host.outgoing(later))
    assert again.flags == Flag.RETRANSMIT | Flag.ACK_NOW
    assert again.ack == 0


def test_sequence_numbers_wrap_and_old_frames_stay_duplicates() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now, last, early = line.now, -1, b""
    for batch in range(0x10000 // 4 + 8):  # past the u16 wrap, a window at a time
        for k in range(4):
            host.send(FrameType.EVENT, b"", request_id=(batch * 4 + k) & 0xFFFF)
        wire = host.outgoing(now)
        if batch == 0x8000 // 4 + 100:
            early = wire  # will be a stale replay by the end
        device.receive(wire, now)
        for frame in device.events():
            assert isinstance(frame, Frame) and frame.request_id == (last + 1) & 0xFFFF
            last = frame.request_id
        host.receive(device.outgoing(now), now)  # half a window unacked: acked at once
        assert host.in_flight == 0
        now += 10_000
    assert last == (0x10000 + 31) & 0xFFFF
    device.receive(early, now)  # frames from ~30000 ago: old, not new
    assert device.events() == [] and device.stats.duplicates == 4


# --- liveness -----------------------------------------------------------------------------


def test_heartbeats_keep_an_idle_link_up() -> None:
    line = connected()
    line.run_until(60 * S)
    for app in (line.host, line.device):
        assert app.link.state is LinkState.UP and not app.lost
        beats = app.link.stats.heartbeats_sent
        assert 60 * S // FAST["heartbeat_ns"] - 2 <= beats <= 60 * S // FAST["heartbeat_ns"] + 1


def test_heartbeat_follows_the_peers_dead_after() -> None:
    host = App(make(Role.HOST, 1, heartbeat_ns=1 * S, dead_after_ns=3 * S), random.Random(1))
    device = App(make(Role.DEVICE, 2, dead_after_ns=300 * MS), random.Random(2))
    line = Line(host, device, Pipe(), Pipe())
    line.run_until(10 * S)
    assert not device.lost and device.link.state is LinkState.UP
    assert host.link.stats.heartbeats_sent >= 90


def test_silence_takes_the_link_down_within_the_bound_and_returns_what_was_in_flight() -> None:
    line = connected()
    for mid in range(6):  # window 4: four go out, two wait
        send_now(line.host, mid)
    line.h2d.cut = line.d2h.cut = True
    line.run_until(line.now + 3 * S)
    for app, inbound in ((line.host, line.d2h), (line.device, line.h2d)):
        [(_, lost, down_at)] = app.lost
        assert inbound.last_delivery_ns is not None
        assert down_at <= inbound.last_delivery_ns + FAST["dead_after_ns"]
        assert app.link.state is LinkState.DOWN
    [(_, lost, _)] = line.host.lost
    assert lost.reason in (LinkDownReason.SILENCE, LinkDownReason.NO_PROGRESS)
    assert [(u.request_id, u.transmitted) for u in lost.undelivered] == [
        (0, True),
        (1, True),
        (2, True),
        (3, True),
        (4, False),
        (5, False),
    ]
    assert isinstance(lost.error(), LinkDown)
    with pytest.raises(LinkDown):
        line.host.link.send(FrameType.REQUEST, b"")
    line.h2d.cut = line.d2h.cut = False
    line.run_until(line.now + 1 * S)
    for app in (line.host, line.device):
        assert app.link.state is LinkState.UP
        assert not app.ups[-1][1].peer_reset  # a new session, the same boot


def test_idle_link_down_is_silence_exactly_dead_after_the_last_frame() -> None:
    line = connected()
    line.d2h.cut = True
    line.run_until(line.now + 2 * S)
    [(_, lost, down_at)] = line.host.lost
    assert lost.reason is LinkDownReason.SILENCE
    assert line.d2h.last_delivery_ns is not None
    assert down_at == line.d2h.last_delivery_ns + FAST["dead_after_ns"]


def test_no_progress_takes_the_link_down_although_the_peer_is_heard() -> None:
    line = connected()
    # The host's data frames are lost; its acks of the device's events get through, so
    # the device keeps hearing the host and only the host's own progress stalls.
    line.h2d.tamper = lambda piece: (
        [] if any(f.type in DATA_TYPES for f in frames_in(piece)) else [piece]
    )
    start = line.now

    def device_event(mid: int) -> None:
        if line.device.link.state is LinkState.UP:
            send_now(line.device, mid)

    for i in range(15):
        line.at(start + i * 100 * MS, functools.partial(device_event, 1000 + i))
    send_now(line.host, 0)
    line.run_until(start + 3 * S // 2)
    _, lost, down_at = line.host.lost[0]
    assert lost.reason is LinkDownReason.NO_PROGRESS
    assert down_at == start + FAST["dead_after_ns"]
    assert line.device.lost[0][1].reason is LinkDownReason.PEER_RESTARTED


# --- restarts -----------------------------------------------------------------------------


def test_peer_reboot_is_reported_and_in_flight_frames_are_returned() -> None:
    line = connected()
    for mid in range(3):
        send_now(line.host, mid)
    line.h2d.write(line.host.link.outgoing(line.now), line.now)  # sent; the device reboots
    old_boot = line.device.link.boot_nonce
    line.device.link = make(Role.DEVICE, 99)
    line.run_until(line.now + 1 * S)
    [(_, lost, _)] = line.host.lost
    assert lost.reason is LinkDownReason.PEER_RESET
    assert [u.request_id for u in lost.undelivered] == [0, 1, 2]
    assert all(isinstance(u, Undelivered) and u.transmitted for u in lost.undelivered)
    up = line.host.ups[-1][1]
    assert up.peer_reset and up.peer.boot_nonce != old_boot
    assert line.host.link.state is LinkState.UP
    # The new device dropped the old session's frames; the host's app sent them again.
    assert line.device.got == [(2, 0), (2, 1), (2, 2)]


def test_peer_restart_without_reboot() -> None:
    line = connected()
    line.device.link.reset(line.now)
    line.run_until(line.now + 1 * S)
    [(_, host_lost, _)] = line.host.lost
    [(_, device_lost, _)] = line.device.lost
    assert host_lost.reason is LinkDownReason.PEER_RESTARTED
    assert device_lost.reason is LinkDownReason.LOCAL_RESET
    assert not line.host.ups[-1][1].peer_reset
    assert line.host.link.state is line.device.link.state is LinkState.UP


def test_frames_of_a_session_come_before_its_end_in_the_event_stream() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now = line.now
    device.send(FrameType.RESPONSE, b"", request_id=5)
    old = device.outgoing(now)
    rebooted = make(Role.DEVICE, 42)
    host.receive(old + rebooted.outgoing(now), now)  # a response, then the reboot's HELLO
    kinds = [type(e) for e in host.events()]
    assert kinds == [Frame, LinkLost]


def test_reset_while_connecting_starts_a_new_session() -> None:
    link = make(Role.HOST, 1)
    first = link.session
    link.outgoing(0)
    link.reset(5)
    assert link.session != first and link.state is LinkState.CONNECTING
    assert link.next_deadline_ns() == 5
    assert link.events() == []


# --- the line -----------------------------------------------------------------------------


def test_noise_on_the_line_is_reported_and_harmless() -> None:
    line = connected()
    line.d2h.inject(b"*** Booting Zephyr OS ***\r\n", line.now)
    exchange(line, 5)
    line.d2h.inject(b"\x00[00:00:01.000] <inf> main: hello\r\n", line.now)
    # Noise ends at the next 0x00, which here is the next heartbeat's.
    line.run_until(line.now + FAST["heartbeat_ns"] + 10 * MS)
    assert [n for n in line.host.noise if isinstance(n, Noise)] == [
        Noise(b"*** Booting Zephyr OS ***\r\n"),
        Noise(b"[00:00:01.000] <inf> main: hello\r\n"),
    ]
    assert line.host.link.stats.noise_bytes > 0
    assert not line.host.lost and [mid for _, mid in line.host.got] == list(range(1000, 1005))


def test_defaults_draw_a_random_boot_nonce() -> None:
    a, b = LinkEndpoint(Role.HOST), LinkEndpoint(Role.HOST)
    assert a.boot_nonce != b.boot_nonce and a.role is Role.HOST
    assert "host connecting" in repr(a)


def test_next_deadline_is_now_while_something_waits_to_be_sent() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    host.send(FrameType.EVENT, b"")
    assert host.next_deadline_ns() == 0
    host.outgoing(line.now)
    assert host.next_deadline_ns() > line.now
    stranger = make(Role.HOST, 77)
    device.receive(stranger.outgoing(line.now), line.now)  # a new host: answer at once
    assert device.next_deadline_ns() == 0


def test_control_frame_asking_for_an_ack_gets_one_at_once() -> None:
    line = connected()
    host, device = line.host.link, line.device.link
    now = line.now
    host.send(FrameType.EVENT, b"")
    device.receive(host.outgoing(now), now)
    beat = encode_frame(FrameType.HEARTBEAT, seq=1, ack=0xFFFF, flags=Flag.ACK_NOW)
    device.receive(beat, now)
    [ack] = frames_in(device.outgoing(now))
    assert ack.type is FrameType.ACK and ack.ack == 0


def test_a_hello_ack_for_another_session_brings_the_next_hello_forward() -> None:
    host = make(Role.HOST, 1)
    host.outgoing(0)
    assert host.next_deadline_ns() == FAST["rto_ns"]
    device = make(Role.DEVICE, 2)
    stale = Hello(Role.DEVICE, device.boot_nonce, session=5, peer_session=123)
    host.receive(encode_frame(FrameType.HELLO_ACK, stale.to_payload()), 1 * MS)
    assert host.state is LinkState.CONNECTING
    assert host.next_deadline_ns() == FAST["rto_ns"] // 4
    [hello] = frames_in(host.outgoing(FAST["rto_ns"] // 4))
    assert Hello.from_payload(hello.payload).peer_session == 5


def test_constructor_validates() -> None:
    for bad in (
        {"window": 0},
        {"window": 0x8000},
        {"max_payload": 100},
        {"rto_ns": 0},
        {"ack_delay_ns": 20 * MS},
        {"dead_after_ns": 10 * MS},
        {"boot_nonce": -1},
        {"board": "x" * 600},
    ):
        with pytest.raises(ValueError):
            make(Role.HOST, 1, **bad)


def test_suggested_rto_grows_with_the_line() -> None:
    slow = suggested_rto_ns(115_200, 8, 1024)
    assert 1 * S < slow < 2 * S
    assert suggested_rto_ns(1_000_000, 8, 1024) < slow
    with pytest.raises(ValueError):
        suggested_rto_ns(0, 8, 1024)


def test_stats_count_sessions() -> None:
    line = connected()
    line.device.link.reset(line.now)
    line.run_until(line.now + 1 * S)
    assert line.host.link.stats.sessions == line.device.link.stats.sessions == 2


# --- the property: a lossy line ------------------------------------------------------------

TROUBLES = ["none", "stall", "disconnect", "reboot", "restart"]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    bit_flip=st.sampled_from([0.0, 1e-5, 1e-4, 5e-4]),
    drop_byte=st.sampled_from([0.0, 1e-4, 1e-3]),
    drop_frame=st.sampled_from([0.0, 0.02, 0.1]),
    dup_frame=st.sampled_from([0.0, 0.02, 0.1]),
    trouble=st.sampled_from(TROUBLES),
    n=st.integers(1, 60),
)
def test_lossy_line_delivers_everything_in_order_exactly_once(
    seed: int,
    bit_flip: float,
    drop_byte: float,
    drop_frame: float,
    dup_frame: float,
    trouble: str,
    n: int,
) -> None:
    line = connected(
        seed, bit_flip=bit_flip, drop_byte=drop_byte, drop_frame=drop_frame, dup_frame=dup_frame
    )
    rng = random.Random(seed)
    when = line.now + rng.randint(0, 300 * MS)
    had_session: list[bool] = []
    if trouble == "stall":  # shorter than dead_after: retransmissions, then duplicates

        def stall() -> None:
            line.h2d.stall_until = line.now + 400 * MS

        line.at(when, stall)
    elif trouble == "disconnect":

        def cut(on: bool) -> None:
            line.h2d.cut = line.d2h.cut = on

        line.at(when, lambda: cut(True))
        line.at(when + 2 * S, lambda: cut(False))
    elif trouble == "reboot":

        def reboot() -> None:
            # The rebooted device still has its mission: what the host never got.
            had_session.append(bool(line.host.ups))
            line.device.link = make(Role.DEVICE, seed + 7)
            have = {mid for _, mid in line.host.got}
            unsent = [m for m in line.device.sent.get(line.device.epoch, []) if m not in have]
            line.device.pending.extendleft(reversed(unsent))

        line.at(when, reboot)
    elif trouble == "restart":
        line.at(when, lambda: line.device.link.reset(line.now))

    exchange(line, n, limit_ns=120 * S)
    check_accounting(line.host, line.device, set(range(n)))
    check_accounting(line.device, line.host, set(range(1000, 1000 + n)))
    if not (line.host.lost or line.device.lost) and trouble in ("none", "stall"):
        assert [mid for _, mid in line.device.got] == list(range(n))
        assert [mid for _, mid in line.host.got] == list(range(1000, 1000 + n))
    if trouble == "stall" and not (bit_flip or drop_byte or drop_frame):
        assert not (line.host.lost or line.device.lost)
    if trouble == "reboot" and had_session[0]:
        assert any(up.peer_reset for _, up in line.host.ups)
    for app in (line.host, line.device):
        assert not app.failures
        for item in app.noise:
            assert isinstance(item, Noise | CorruptFrame)
