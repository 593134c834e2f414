"""The clocks' contract (hal/_clock.py): a virtual clock jumps to the next event, or keeps
to wall time at a ratio; the wall clock waits what is left until an instant; a wake-up
ends a wait; a clock of one's own is asked in plain integers.

Threaded tests never sleep to synchronise: they wait on ``threading.Event`` with a
timeout, so a broken clock fails the test in bounded time instead of hanging it.
"""

from __future__ import annotations

import threading
import time

import pytest

from hal import (
    Clock,
    Scheduler,
    VirtualClock,
    WallClock,
)

MS = 1_000_000
S = 1_000_000_000
WAIT_S = 5.0
"""Upper bound on any wait for another thread: generous, only reached when broken."""


def test_virtual_clock_refuses_a_ratio_that_is_not_positive() -> None:
    with pytest.raises(ValueError):
        VirtualClock(realtime_ratio=0)
    with pytest.raises(ValueError):
        VirtualClock(realtime_ratio=-2.0)


def test_virtual_clock_with_a_ratio_tracks_wall_time() -> None:
    ratio = 1000.0
    sched = Scheduler(VirtualClock(realtime_ratio=ratio))
    lags_s: list[float] = []
    wall0 = time.monotonic()

    def tick() -> None:
        lags_s.append((time.monotonic() - wall0) - sched.now_ns / S / ratio)
        if sched.now_ns < 200 * S:
            sched.call_later(S, tick)

    sched.call_soon(tick)
    sched.run()  # 200 s of virtual time at 1000x: about 0.2 s of wall time
    elapsed = time.monotonic() - wall0
    assert len(lags_s) == 201
    assert 0.18 <= elapsed < 2.0
    # Never ahead of wall time (beyond timer slack); behind only by scheduling noise.
    assert min(lags_s) > -0.005
    assert max(lags_s) < 1.0


def test_virtual_clock_with_a_ratio_is_woken_by_post_threadsafe() -> None:
    sched = Scheduler(VirtualClock(realtime_ratio=1.0))
    sched.call_later(60 * S, lambda: None)  # a minute of real time away
    asleep = threading.Event()
    sched.call_soon(asleep.set)
    ran = threading.Event()

    def poster() -> None:
        if asleep.wait(WAIT_S):
            sched.post_threadsafe(ran.set)

    threading.Thread(target=poster, daemon=True).start()
    t0 = time.monotonic()
    assert sched.run_until(ran.is_set) is True
    assert time.monotonic() - t0 < WAIT_S


def test_wall_clock_follows_wall_time() -> None:
    sched = Scheduler(WallClock())
    fired: list[int] = []
    sched.call_later(20 * MS, lambda: fired.append(sched.now_ns))
    t0 = time.monotonic()
    sched.run_until(lambda: bool(fired), timeout_ns=int(WAIT_S * S))
    assert time.monotonic() - t0 >= 0.019
    assert fired[0] >= 20 * MS
    assert not sched.is_virtual


def test_wall_clock_waits_the_time_left_until_the_instant() -> None:
    clock = WallClock()
    assert clock.wait_s(10 * MS, 30 * MS) == pytest.approx(0.02)
    assert clock.wait_s(30 * MS, 30 * MS) is None  # due
    assert clock.wait_s(31 * MS, 30 * MS) is None  # overdue


def test_virtual_clock_without_a_ratio_never_waits() -> None:
    assert VirtualClock().wait_s(0, 3600 * S) is None


def test_a_wake_before_the_wait_ends_that_wait_at_once() -> None:
    clock = WallClock()
    clock.wake()
    clock.wake()  # one wake-up however many
    t0 = time.monotonic()
    assert clock.wait(WAIT_S) == ()
    assert time.monotonic() - t0 < WAIT_S / 2
    t0 = time.monotonic()
    clock.wait(0.02)  # the wake-up was consumed: this one waits its whole timeout
    assert time.monotonic() - t0 >= 0.015


class _SteppingClock(Clock):
    """A clock of a test's own: virtual time that waits for nothing, and notes every
    question the scheduler asks it (plain integers, nothing of the scheduler's)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[int, int]] = []

    def wait_s(self, now_ns: int, until_ns: int) -> float | None:
        self.asked.append((now_ns, until_ns))
        return None


def test_a_clock_of_ones_own_is_asked_in_plain_integers() -> None:
    clock = _SteppingClock()
    sched = Scheduler(clock)
    log: list[tuple[int, str]] = []
    sched.call_at(10, lambda: log.append((sched.now_ns, "a")))
    sched.call_at(25, lambda: log.append((sched.now_ns, "b")))
    sched.run()
    assert log == [(10, "a"), (25, "b")]
    assert clock.asked == [(0, 10), (10, 25)]
    assert sched.is_virtual  # not a WallClock: the time is the scheduler's own
