"""The link pump (hal.serial._pump): a LinkEndpoint run on a virtual scheduler."""

from __future__ import annotations

import random
from typing import Any

from hal import Scheduler
from hal.serial._frames import Frame, FrameDecoder, FrameType, Role
from hal.serial._link import LinkEndpoint, LinkEstablished, LinkEvent
from hal.serial._pump import LinkPump

MS = 1_000_000
TIMINGS: dict[str, Any] = {"rto_ns": 20 * MS, "heartbeat_ns": 100 * MS, "dead_after_ns": 500 * MS}


class End:
    """One end of an in-memory line: a link, its pump, what it wrote and was given."""

    def __init__(self, scheduler: Scheduler, role: Role, seed: int) -> None:
        self.scheduler = scheduler
        self.link = LinkEndpoint(role, rng=random.Random(seed), **TIMINGS)
        self.writes: list[bytes] = []
        self.events: list[LinkEvent] = []
        self.peer: End | None = None
        self.on_event: Any = None
        self.pump = LinkPump(scheduler, self.link, write=self._write, on_events=self._on_events)

    def _write(self, data: bytes) -> None:
        self.writes.append(data)
        peer = self.peer
        if peer is not None:
            self.scheduler.call_later(100_000, lambda: peer.got(data))

    def got(self, data: bytes) -> None:
        self.pump.receive(data)
        self.pump.pump()

    def _on_events(self, events: list[LinkEvent]) -> None:
        self.events.extend(events)
        if self.on_event is not None:
            for event in events:
                self.on_event(event)

    def frames_written(self) -> list[Frame]:
        decoder = FrameDecoder()
        return [i for w in self.writes for i in decoder.feed(w) if isinstance(i, Frame)]


def pair() -> tuple[Scheduler, End, End]:
    scheduler = Scheduler()
    host, device = End(scheduler, Role.HOST, 1), End(scheduler, Role.DEVICE, 2)
    host.peer, device.peer = device, host
    host.pump.pump()
    device.pump.pump()
    scheduler.run_until(50 * MS)
    assert any(isinstance(e, LinkEstablished) for e in host.events)
    return scheduler, host, device


def test_the_pump_brings_a_link_up_and_keeps_it_by_its_timer() -> None:
    scheduler, host, device = pair()
    scheduler.run_until(scheduler.now_ns + 1_000 * MS)  # silence would end it after 0.5 s
    assert host.link.state.value == "up" and device.link.state.value == "up"
    kinds = {f.type for f in host.frames_written()}
    assert FrameType.HEARTBEAT in kinds  # the timer ran the link's heartbeats


def test_a_pump_from_the_owners_handler_sends_before_the_running_pump_returns() -> None:
    scheduler, host, device = pair()

    def answer(event: LinkEvent) -> None:
        if isinstance(event, Frame) and event.type is FrameType.REQUEST:
            device.link.send(FrameType.RESPONSE, b"", event.request_id)
            device.pump.pump()  # inside the pump: nothing now, the running one sends it

    device.on_event = answer
    host.link.send(FrameType.REQUEST, b"", 7)
    host.pump.pump()
    scheduler.run_until(scheduler.now_ns + 1 * MS)
    responses = [e for e in host.events if isinstance(e, Frame) and e.type is FrameType.RESPONSE]
    assert [r.request_id for r in responses] == [7]


def test_pump_late_sends_an_instants_frames_in_one_write() -> None:
    scheduler, _, device = pair()
    before = len(device.writes)

    def two_events() -> None:
        for _ in range(2):
            device.link.send(FrameType.EVENT, b"")
            device.pump.pump_late()

    scheduler.call_soon(two_events)
    scheduler.run_until(scheduler.now_ns + 50_000)
    new = device.writes[before:]
    assert len(new) == 1
    assert [f.type for f in FrameDecoder().feed(new[0]) if isinstance(f, Frame)] == [
        FrameType.EVENT, FrameType.EVENT,
    ]


def test_a_link_replaced_from_the_handler_is_pumped_at_once() -> None:
    scheduler, host, device = pair()
    fresh = LinkEndpoint(Role.DEVICE, rng=random.Random(3), **TIMINGS)

    def reboot(event: LinkEvent) -> None:
        if isinstance(event, Frame) and device.pump.link is not fresh:
            device.pump.link = fresh

    device.on_event = reboot
    before = len(device.writes)
    host.link.send(FrameType.REQUEST, b"", 1)
    host.pump.pump()
    scheduler.run_until(scheduler.now_ns + 1 * MS)
    hellos = [f for w in device.writes[before:] for f in FrameDecoder().feed(w)
              if isinstance(f, Frame) and f.type is FrameType.HELLO]
    assert hellos  # the new link's first HELLO went out in the same pump


def test_a_closed_pump_does_nothing() -> None:
    scheduler, _, device = pair()
    device.pump.close()
    before = len(device.writes)
    device.link.send(FrameType.EVENT, b"")
    device.pump.pump()
    device.pump.pump_late()
    device.pump.restart()
    scheduler.run_until(scheduler.now_ns + 100 * MS)
    assert device.writes[before:] == []
