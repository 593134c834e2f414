"""The front end's life: it starts only on a clock tied to wall time, reports a port it
cannot bind, and leaves no thread or port behind when closed."""

from __future__ import annotations

import socket
import threading

import pytest

from boards import load_board
from emulator import EmulatedBoard
from firmware import Printer
from firmware.net import NetworkFrontEnd
from hal import Scheduler, VirtualClock
from tests.firmware.net.conftest import close_rig, make_rig


def _printer(clock: VirtualClock) -> Printer:
    return Printer(EmulatedBoard(load_board("devkit"), Scheduler(clock)))


def test_a_clock_racing_through_time_is_refused() -> None:
    front_end = NetworkFrontEnd(_printer(VirtualClock()), ipp=("127.0.0.1", 0))
    with pytest.raises(ValueError, match="tied to wall time"):
        front_end.start()


def test_a_port_taken_is_an_error_and_leaves_nothing_running() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        before = set(threading.enumerate())
        front_end = NetworkFrontEnd(_printer(VirtualClock(realtime_ratio=1.0)),
                                    ipp=("127.0.0.1", taken.getsockname()[1]))
        with pytest.raises(OSError):
            front_end.start()
        assert set(threading.enumerate()) == before


def test_close_leaves_no_thread_and_frees_every_port() -> None:
    before = set(threading.enumerate())
    rig = make_rig(raw=True, snmp=True)
    addresses = [rig.front_end.ipp_address, rig.front_end.raw_address,
                 rig.front_end.snmp_address]
    close_rig(rig)
    assert set(threading.enumerate()) == before
    for kind, address in zip((socket.SOCK_STREAM, socket.SOCK_STREAM, socket.SOCK_DGRAM),
                             addresses, strict=True):
        assert address is not None
        with socket.socket(socket.AF_INET, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(address)
