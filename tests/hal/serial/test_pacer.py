"""The one pacing rule of a UART (hal.serial._pacer)."""

from __future__ import annotations

import pytest

from hal.serial._pacer import LinePacer


def test_a_uart_moves_a_tenth_of_its_baud_in_bytes() -> None:
    pacer = LinePacer.for_baud(115200)
    assert pacer.bytes_per_s == 11520
    assert pacer.bytes_in(1.0) == 11520
    assert pacer.slice_bytes == 23  # 2 ms of line time
    assert LinePacer.for_baud(300).slice_bytes == 1  # never less than a byte


def test_reservations_queue_behind_each_other() -> None:
    pacer = LinePacer(1000.0)
    first = pacer.reserve_s(100)
    second = pacer.reserve_s(100)
    assert first == pytest.approx(0.1, abs=0.01)
    assert second == pytest.approx(0.2, abs=0.01)  # the line was still busy
    pacer.restart()
    assert pacer.reserve_s(100) == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError):
        LinePacer(0.0)


def test_send_writes_slice_by_slice_after_each_has_crossed() -> None:
    pacer = LinePacer(1000.0, slice_s=0.004)
    waits: list[float] = []
    pieces: list[bytes] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False

    assert pacer.send(b"0123456789", pieces.append, wait)
    assert pieces == [b"0123", b"4567", b"89"]
    assert len(waits) == 3 and waits[-1] == pytest.approx(0.010, abs=0.005)


def test_send_stops_when_the_wait_is_cut_short() -> None:
    pacer = LinePacer(1000.0, slice_s=0.004)
    pieces: list[bytes] = []
    assert not pacer.send(b"0123456789", pieces.append, lambda seconds: True)
    assert pieces == []
