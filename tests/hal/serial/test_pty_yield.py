"""hal/serial/_pty_yield.py: yield after a pty write while yields are cheap, back off after a
slow one (a contended CPU), never when disabled."""

from __future__ import annotations

import sys
import time

import pytest

from hal.serial import _pty_yield
from hal.serial._pty_yield import MAX_BACKOFF_NS, MIN_BACKOFF_NS, SLOW_YIELD_NS, PtyYield

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def test_disabled_never_yields(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(_pty_yield.os, "sched_yield", lambda: calls.append(1))
    y = PtyYield(enabled=False)
    y()
    assert not y.enabled
    assert calls == []
    assert y.yields == 0


def test_cheap_yields_keep_yielding(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(_pty_yield.os, "sched_yield", lambda: calls.append(1))
    y = PtyYield()
    for _ in range(5):
        y()
    assert len(calls) == 5
    assert (y.yields, y.slow_yields) == (5, 0)


def test_slow_yields_back_off_longer_in_a_row_and_a_fast_one_resets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [10 * MAX_BACKOFF_NS]
    slow = [True]
    calls: list[int] = []

    def fake_yield() -> None:  # slow: another task had the CPU for a slice
        calls.append(1)
        if slow[0]:
            clock[0] += 2 * SLOW_YIELD_NS

    monkeypatch.setattr(_pty_yield.os, "sched_yield", fake_yield)
    monkeypatch.setattr(_pty_yield.time, "monotonic_ns", lambda: clock[0])
    y = PtyYield()
    y()
    assert (y.yields, y.slow_yields) == (1, 1)
    clock[0] += MIN_BACKOFF_NS // 2
    y()  # backing off: no yield
    assert len(calls) == 1
    clock[0] += MIN_BACKOFF_NS
    y()  # over: it tries again, slow again: twice as long now
    assert len(calls) == 2
    clock[0] += MIN_BACKOFF_NS + MIN_BACKOFF_NS // 2
    y()
    assert len(calls) == 2
    clock[0] += MIN_BACKOFF_NS
    for _ in range(20):  # slow in a row: the pause grows to its bound
        y()
        clock[0] += MAX_BACKOFF_NS + 2 * SLOW_YIELD_NS
    assert y._backoff_ns == MAX_BACKOFF_NS
    slow[0] = False
    y()  # a fast yield: the next slow one backs off briefly again
    assert y._backoff_ns == MIN_BACKOFF_NS


def test_the_real_yield_returns() -> None:
    y = PtyYield()
    start = time.monotonic()
    y()
    assert y.yields == 1
    assert time.monotonic() - start < 5.0
