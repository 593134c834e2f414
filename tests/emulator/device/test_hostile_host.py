"""A host that sends what no host should: numbers no double holds, and HELLO limits that
would make the device heartbeat every nanosecond. The device answers ``BAD_ARGUMENT``
(never ``INTERNAL``, never a traceback) and keeps its heartbeats at the link's floor.
In-process, in virtual time (the rig of test_virtual_device)."""

from __future__ import annotations

import logging
import math
from typing import Any

import cbor2
import pytest

from hal.serial import ErrorCode, Frame, FrameDecoder, FrameType, Hello, Role
from tests.emulator.device.test_virtual_device import MS, Rig

HEARTBEAT_FLOOR_NS = 10 * MS
"""docs/protocol.md, Parameters: the floor of an end's heartbeat interval."""

HUGE: list[Any] = [10**400, -(10**400), math.inf, -math.inf, math.nan, 2**1024]


@pytest.fixture
def rig() -> Rig:
    r = Rig()
    r.up()
    return r


@pytest.mark.parametrize("pct", HUGE, ids=repr)
def test_sim_toner_with_a_number_no_double_holds_is_a_bad_argument(
    rig: Rig, pct: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        reply = rig.refused("sim.toner", {"pct": pct})
    assert reply.code is ErrorCode.BAD_ARGUMENT, reply
    assert "'pct' must be a finite number" in reply.message
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.parametrize("bound", ["low", "high"])
@pytest.mark.parametrize("value", HUGE, ids=repr)
def test_window_set_with_a_number_no_double_holds_is_a_bad_argument(
    rig: Rig, bound: str, value: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    args = {"channel": "toner_pct", "low": 10.0, "high": 20.0, bound: value}
    with caplog.at_level(logging.WARNING):
        reply = rig.refused("window.set", args)
    assert reply.code is ErrorCode.BAD_ARGUMENT, reply
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def _device_frames(rig: Rig) -> list[Frame]:
    decoder = FrameDecoder()
    frames = []
    for item in decoder.feed(b"".join(rig.device_wrote)):
        if isinstance(item, Frame):
            frames.append(item)
    return frames


def _hello(dead_after_ns: int, session: int, peer_session: int) -> bytes:
    """A host HELLO with these limits, encoded by hand: ``Hello.to_payload`` refuses a
    ``dead_after_ns`` of 0, which a hostile host sends all the same."""
    good = Hello(Role.HOST, boot_nonce=7, session=session, peer_session=peer_session)
    fields = cbor2.loads(good.to_payload())
    fields["limits"]["dead_after_ns"] = dead_after_ns
    return Frame(FrameType.HELLO, cbor2.dumps(fields)).encode()


@pytest.mark.parametrize("dead_after_ns", [0, 1, 3, 5])
def test_a_tiny_dead_after_does_not_make_the_device_heartbeat_every_ns(
    dead_after_ns: int,
) -> None:
    rig = Rig(seed=3)
    rig.line_up = False  # the host endpoint stays out of it: only our HELLOs go in
    rig.device.receive(_hello(dead_after_ns, session=0x1234, peer_session=0))
    rig.run_for(1 * MS)
    device_hellos = [f for f in _device_frames(rig) if f.type is FrameType.HELLO]
    assert device_hellos, "the device did not answer the HELLO"
    device_session = cbor2.loads(device_hellos[-1].payload)["session"]
    rig.device.receive(_hello(dead_after_ns, session=0x1234, peer_session=device_session))
    assert rig.device.link is not None
    rig.run_for(1 * MS)
    assert rig.device.link.state.name == "UP"
    rig.device_wrote.clear()
    rig.run_for(50_000)  # 50 us: without the floor, one heartbeat a ns
    assert len(_device_frames(rig)) <= 1
    rig.run_for(100 * MS)
    heartbeats = [f for f in _device_frames(rig) if f.type is FrameType.HEARTBEAT]
    assert 1 <= len(heartbeats) <= 100 * MS // HEARTBEAT_FLOOR_NS + 1
