"""The event-loop wall clock (hal/_selector_clock.py): readable descriptors run their
handlers on the scheduler's thread, whether it sleeps, idles or is kept busy by due
timers; post_threadsafe still wakes it; unwatching and closing.

Every wait on another thread is bounded (``threading.Event.wait`` with a timeout, or a
run with a deadline), so a broken loop fails in bounded time instead of hanging.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from hal import Scheduler, SelectorClock
from hal._selector_clock import BUSY_POLL_NS

MS = 1_000_000
S = 1_000_000_000
WAIT_S = 5.0


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        yield r, w
    finally:
        for fd in (r, w):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def loop() -> Iterator[tuple[Scheduler, SelectorClock]]:
    clock = SelectorClock()
    try:
        yield Scheduler(clock), clock
    finally:
        clock.close()


def _reader(fd: int, got: list[tuple[bytes, int, str]], sched: Scheduler) -> Callable[[], None]:
    def on_readable() -> None:
        got.append((os.read(fd, 4096), sched.now_ns, threading.current_thread().name))

    return on_readable


Heard = list[tuple[bytes, int, str]]
"""What the pipe's reader got: (bytes, when on the scheduler's clock, on which thread)."""


@pytest.fixture
def watched(
    loop: tuple[Scheduler, SelectorClock], pipe: tuple[int, int]
) -> tuple[Scheduler, int, Heard]:
    """A loop watching a pipe's read end: ``(scheduler, write end, what was heard)``."""
    sched, clock = loop
    r, w = pipe
    got: Heard = []
    clock.watch(r, _reader(r, got, sched))
    return sched, w, got


def test_bytes_arriving_while_the_scheduler_sleeps_are_handled_at_once(
    watched: tuple[Scheduler, int, Heard],
) -> None:
    sched, w, got = watched
    sched.call_later(60 * S, lambda: None)  # asleep towards a timer a minute away
    written_at: list[int] = []

    def write_later() -> None:
        time.sleep(0.05)  # the other thread's pace, not the scheduler's
        written_at.append(sched.now_ns)
        os.write(w, b"ping")

    writer = threading.Thread(target=write_later)
    writer.start()
    try:
        assert sched.run_until(lambda: bool(got), timeout_ns=round(WAIT_S * S))
    finally:
        writer.join(WAIT_S)
    data, handled_at, thread = got[0]
    assert data == b"ping"
    assert thread == threading.current_thread().name  # on the scheduler's thread
    assert handled_at - written_at[0] < 500 * MS  # woken by the bytes, not by a timer


def test_an_idle_scheduler_is_woken_by_a_readable_descriptor(
    watched: tuple[Scheduler, int, Heard],
) -> None:
    sched, w, got = watched
    os.write(w, b"already there")
    assert sched.run_until(lambda: bool(got), timeout_ns=round(WAIT_S * S))
    assert got[0][0] == b"already there"


def test_a_scheduler_kept_busy_by_due_timers_still_hears_its_descriptors(
    watched: tuple[Scheduler, int, Heard],
) -> None:
    sched, w, got = watched
    ticks = [0]

    def busy() -> None:  # always something due: the clock never has to wait
        ticks[0] += 1
        if ticks[0] == 100:
            os.write(w, b"x")  # arrives while the chain runs (it never ends)
        sched.call_soon(busy)

    sched.call_soon(busy)
    assert sched.run_until(lambda: bool(got), timeout_ns=round(WAIT_S * S))
    assert ticks[0] >= 100
    assert sched.now_ns < 1 * S


def test_post_threadsafe_wakes_a_sleeping_selector_clock_at_once(
    loop: tuple[Scheduler, SelectorClock],
) -> None:
    sched, _ = loop
    ran = threading.Event()
    sched.call_later(60 * S, lambda: None)
    poster = threading.Timer(0.05, lambda: sched.post_threadsafe(ran.set))
    poster.start()
    start = time.monotonic()
    try:
        assert sched.run_until(ran.is_set, timeout_ns=round(WAIT_S * S))
    finally:
        poster.cancel()
    assert time.monotonic() - start < WAIT_S / 2


def test_stop_from_another_thread_ends_an_idle_run(
    loop: tuple[Scheduler, SelectorClock],
) -> None:
    sched, _ = loop
    done = threading.Event()

    def run() -> None:
        sched.run()
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not done.is_set() and time.monotonic() < deadline:
            sched.stop()  # a stop before run() starts is forgotten: repeat it
            done.wait(0.05)
        assert done.is_set()
    finally:
        thread.join(WAIT_S)


def test_timers_still_run_on_time(loop: tuple[Scheduler, SelectorClock]) -> None:
    sched, _ = loop
    ran: list[int] = []
    sched.call_later(20 * MS, lambda: ran.append(sched.now_ns))
    start = sched.now_ns
    assert sched.run_until(lambda: bool(ran), timeout_ns=round(WAIT_S * S))
    assert ran[0] - start >= 20 * MS


def test_unwatch_stops_the_handler_and_watch_replaces_it(
    loop: tuple[Scheduler, SelectorClock], pipe: tuple[int, int]
) -> None:
    sched, clock = loop
    r, w = pipe
    first: list[tuple[bytes, int, str]] = []
    second: list[tuple[bytes, int, str]] = []
    clock.watch(r, _reader(r, first, sched))
    clock.watch(r, _reader(r, second, sched))  # replaces
    assert clock.watching(r)
    os.write(w, b"a")
    assert sched.run_until(lambda: bool(second), timeout_ns=round(WAIT_S * S))
    assert first == []
    clock.unwatch(r)
    clock.unwatch(r)  # harmless
    assert not clock.watching(r)
    os.write(w, b"b")
    sched.run_until(sched.now_ns + 50 * MS)
    assert len(second) == 1
    assert os.read(r, 10) == b"b"  # nobody read it


def test_a_handler_that_unwatches_another_ready_descriptor_keeps_it_from_running(
    loop: tuple[Scheduler, SelectorClock],
) -> None:
    sched, clock = loop
    pipes = [os.pipe(), os.pipe()]
    try:
        calls: list[int] = []

        def first() -> None:
            calls.append(0)
            os.read(pipes[0][0], 10)
            clock.unwatch(pipes[1][0])  # ready too, in the same pass

        def second() -> None:
            calls.append(1)

        clock.watch(pipes[0][0], first)
        clock.watch(pipes[1][0], second)
        os.write(pipes[1][1], b"y")
        os.write(pipes[0][1], b"x")
        sched.run_until(sched.now_ns + 50 * MS)
        # Whichever ran first, the second never ran after being unwatched.
        assert calls in ([0], [1, 0])
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)


def test_watch_refuses_a_negative_descriptor(loop: tuple[Scheduler, SelectorClock]) -> None:
    _, clock = loop
    with pytest.raises(ValueError):
        clock.watch(-1, lambda: None)


def test_a_wake_ends_one_wait_however_many_wakes_came_before_it() -> None:
    clock = SelectorClock()
    try:
        assert clock.wait(0) == []  # nothing readable, not woken
        clock.wake()
        clock.wake()  # one wake-up however many
        start = time.monotonic()
        assert clock.wait(WAIT_S) == []  # woken: returns at once, with nothing to run
        assert time.monotonic() - start < WAIT_S / 2
        start = time.monotonic()
        clock.wait(0.02)  # consumed: this one waits its whole timeout
        assert time.monotonic() - start >= 0.015
    finally:
        clock.close()


def test_a_wake_from_another_thread_ends_a_wait() -> None:
    clock = SelectorClock()
    waker = threading.Timer(0.05, clock.wake)
    waker.start()
    try:
        start = time.monotonic()
        clock.wait(WAIT_S)
        assert time.monotonic() - start < WAIT_S / 2
    finally:
        waker.cancel()
        clock.close()


def test_wait_hands_back_the_handlers_of_readable_descriptors(pipe: tuple[int, int]) -> None:
    clock = SelectorClock()
    r, w = pipe
    got: list[bytes] = []
    try:
        clock.watch(r, lambda: got.append(os.read(r, 10)))
        os.write(w, b"x")
        handlers = clock.wait(WAIT_S)
        assert got == []  # the scheduler runs them, in its pass of posted work
        assert len(handlers) == 1
        handlers[0]()
        assert got == [b"x"]
    finally:
        clock.close()


def test_a_due_event_still_lets_the_descriptors_be_polled_every_busy_period() -> None:
    clock = SelectorClock()
    try:
        now = clock.now_ns()
        assert clock.wait_s(now, now + 2 * MS) == pytest.approx(0.002)
        # The poll's instant lies between these two readings, however long the
        # machine kept this thread off its core around it.
        before_poll = clock.now_ns()
        clock.wait(0)  # a poll
        after_poll = clock.now_ns()
        assert clock.wait_s(before_poll, before_poll) is None  # due, polled just now: run it
        later = after_poll + BUSY_POLL_NS
        assert clock.wait_s(later, later - 1) == 0.0  # due, but poll first (no wait)
    finally:
        clock.close()


def test_a_post_after_the_clock_is_closed_writes_nowhere() -> None:
    clock = SelectorClock()
    sched = Scheduler(clock)
    clock.close()
    r, w = os.pipe()  # likely to reuse the wake-up's descriptor number
    try:
        sched.post_threadsafe(lambda: None)
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 8)
    finally:
        os.close(r)
        os.close(w)
