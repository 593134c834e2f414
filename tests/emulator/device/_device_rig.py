"""The in-process rig of the virtual device's tests: a host-role ``LinkEndpoint`` and the
device (emulator.device.VirtualDevice) share the board's scheduler (a virtual clock); the
"line" between them is a pair of scheduler callbacks with a small latency, which a test
can cut and restore. No threads, no ports: every run is deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from boards import load_board
from emulator.board import EmulatedBoard
from emulator.device import VirtualDevice
from hal import Scheduler, Timer, timer_when_ns
from hal.serial import (
    ErrorReply,
    Event,
    Frame,
    FrameType,
    LinkEndpoint,
    LinkEstablished,
    LinkEvent,
    LinkLost,
    LinkState,
    Request,
    Response,
    Role,
)

MS = 1_000_000
S = 1_000_000_000
LATENCY_NS = 100_000  # one way, per write
HOST_TIMINGS: dict[str, Any] = {
    "window": 8,
    "rto_ns": 60 * MS,
    "heartbeat_ns": 200 * MS,
    "dead_after_ns": 1 * S,
    "ack_delay_ns": 2 * MS,
}


class Rig:
    """A device and a host endpoint on one virtual-time scheduler, joined by a line."""

    def __init__(self, *, sim: bool = True, seed: int = 1, flash: Any = None) -> None:
        self.sched = Scheduler()
        self.board = EmulatedBoard(load_board("lp-2000"), self.sched, seed=seed)
        self.device = VirtualDevice(self.board, sim=sim, flash=flash, rng=random.Random(seed))
        self.host = LinkEndpoint(Role.HOST, rng=random.Random(seed + 100), **HOST_TIMINGS)
        self.line_up = True
        self.host_events: list[LinkEvent] = []
        self.device_wrote: list[bytes] = []
        self.smp_replies: list[bytes] = []
        self._host_timer: Timer | None = None
        self._rid = 0
        self.device.connection_made(self._device_writes)
        self._pump_host()

    # -- the line ----------------------------------------------------------------------

    def _device_writes(self, data: bytes) -> None:
        self.device_wrote.append(data)
        if self.line_up:
            self.sched.call_later(LATENCY_NS, lambda: self._host_reads(data))

    def _host_reads(self, data: bytes) -> None:
        if not self.line_up:
            return
        self.host.receive(data, self.sched.now_ns)
        self._pump_host()

    def _pump_host(self) -> None:
        now = self.sched.now_ns
        out = self.host.outgoing(now)
        self.host_events.extend(self.host.events())
        if out and self.line_up:
            self.sched.call_later(LATENCY_NS, lambda: self._to_device(out))
        deadline = self.host.next_deadline_ns()
        timer = self._host_timer
        if timer is not None and timer_when_ns(timer) <= deadline:
            return
        if timer is not None:
            self.sched.cancel(timer)
        self._host_timer = self.sched.call_at(deadline, self._host_timer_fired)

    def _host_timer_fired(self) -> None:
        self._host_timer = None
        self._pump_host()

    def _to_device(self, data: bytes) -> None:
        if self.line_up:
            self.device.receive(data)

    def send_raw(self, data: bytes) -> None:
        """Bytes from the host side that are not the host endpoint's (SMP, noise)."""
        self.sched.call_later(LATENCY_NS, lambda: self._to_device(data))

    # -- running -----------------------------------------------------------------------

    def run_until(self, predicate: Callable[[], bool], timeout_ns: int = 5 * S) -> None:
        assert self.sched.run_until(predicate, timeout_ns), "timed out"

    def run_for(self, duration_ns: int) -> None:
        self.sched.run_until(self.sched.now_ns + duration_ns)

    def up(self) -> LinkEstablished:
        self.run_until(lambda: self.host.state is LinkState.UP)
        return [e for e in self.host_events if isinstance(e, LinkEstablished)][-1]

    # -- requests and events -----------------------------------------------------------

    def send(
        self, cmd: str, args: dict[str, Any] | None = None, payload: bytes | None = None
    ) -> int:
        self._rid = self._rid % 0xFFFF + 1
        body = Request(cmd, args or {}).to_payload() if payload is None else payload
        self.host.send(FrameType.REQUEST, body, self._rid)
        self._pump_host()
        return self._rid

    def answer(self, rid: int) -> Frame:
        def answered() -> Frame | None:
            for e in self.host_events:
                if (
                    isinstance(e, Frame)
                    and e.request_id == rid
                    and e.type in (FrameType.RESPONSE, FrameType.ERROR)
                ):
                    return e
            return None

        self.run_until(lambda: answered() is not None, 2 * S)
        frame = answered()
        assert frame is not None
        return frame

    def call(self, cmd: str, **args: Any) -> Any:
        frame = self.answer(self.send(cmd, args))
        if frame.type is FrameType.ERROR:
            raise ErrorReply.from_payload(frame.payload).to_exception()
        return Response.from_payload(frame.payload).result

    def refused(self, cmd: str, args: dict[str, Any] | None = None) -> ErrorReply:
        frame = self.answer(self.send(cmd, args))
        assert frame.type is FrameType.ERROR, Response.from_payload(frame.payload)
        return ErrorReply.from_payload(frame.payload)

    def events(self, kind: str | None = None) -> list[tuple[Frame, Event]]:
        out = []
        for e in self.host_events:
            if isinstance(e, Frame) and e.type is FrameType.EVENT:
                event = Event.from_payload(e.payload)
                if kind is None or event.kind == kind:
                    out.append((e, event))
        return out

    def event_data(self, kind: str) -> list[dict[str, Any]]:
        return [event.data for _, event in self.events(kind)]

    def lost(self) -> list[LinkLost]:
        return [e for e in self.host_events if isinstance(e, LinkLost)]

    def established(self) -> list[LinkEstablished]:
        return [e for e in self.host_events if isinstance(e, LinkEstablished)]
