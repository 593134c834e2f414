"""The network front end on a real firmware.Printer on an emulated board, its scheduler
running on a thread of its own at a real-time ratio, bound to ephemeral loopback ports.

A virtual clock tied to wall time (not a bare wall clock) keeps the emulated board's
physics and the firmware's deadlines in one order however busy the machine is: a late
scheduler thread slows the printer's time, it never reorders an edge after its deadline.
Every thread and port is cleaned up, with bounded waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from boards import load_board
from emulator import EmulatedBoard
from firmware import Printer, StatusEvent
from firmware.net import NetworkFrontEnd
from hal import Scheduler, VirtualClock

WAIT_S = 60.0


@dataclass
class NetRig:
    scheduler: Scheduler
    board: EmulatedBoard
    printer: Printer
    front_end: NetworkFrontEnd
    events: list[StatusEvent] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def on_scheduler(self, action: Callable[[], object]) -> None:
        """Run ``action`` on the scheduler's thread and wait for it."""
        done = threading.Event()

        def run() -> None:
            try:
                action()
            finally:
                done.set()

        self.scheduler.post_threadsafe(run)
        assert done.wait(WAIT_S), "the scheduler did not run a posted action"

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S,
                 what: str = "a condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def kinds(self) -> list[str]:
        return [e.kind for e in list(self.events)]


def make_rig(board_name: str = "devkit", *, ratio: float = 4.0, ipp: bool = True,
             raw: bool = False, snmp: bool = False, seed: int = 1,
             setup: Callable[[EmulatedBoard], None] | None = None) -> NetRig:
    scheduler = Scheduler(VirtualClock(realtime_ratio=ratio))
    board = EmulatedBoard(load_board(board_name), scheduler, seed=seed)
    if setup is not None:
        setup(board)
    events: list[StatusEvent] = []
    printer = Printer(board, listeners=[events.append])
    loopback = ("127.0.0.1", 0)
    front_end = NetworkFrontEnd(printer, ipp=loopback if ipp else None,
                                raw=loopback if raw else None, snmp=loopback if snmp else None)
    front_end.start()
    rig = NetRig(scheduler, board, printer, front_end, events)
    rig._thread = threading.Thread(target=scheduler.run, name="scheduler", daemon=True)
    rig._thread.start()
    return rig


def close_rig(rig: NetRig) -> None:
    rig.scheduler.stop()
    if rig._thread is not None:
        rig._thread.join(WAIT_S)
        assert not rig._thread.is_alive(), "the scheduler thread did not stop"
    rig.front_end.close()


@pytest.fixture
def rig() -> Iterator[NetRig]:
    r = make_rig(raw=True, snmp=True)
    try:
        yield r
    finally:
        close_rig(r)
