"""The pace of a UART, for lines that have none of their own (a pty, a socket).

A pty or a TCP socket moves bytes as fast as the machine can; a real serial line moves
``baud / 10`` bytes a second (8N1: ten bits a byte). :class:`LinePacer` is one direction
of such a line, the one pacing rule of the project: the host's transport
(:class:`hal.serial.PortTransport` with ``pace=True``), the virtual device's server
(``printer-emu serve --baud``) and the flash device's stand-alone loop all use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

UART_BITS_PER_BYTE = 10
"""8N1: a start bit, eight data bits, a stop bit."""
DEFAULT_SLICE_S = 0.002
"""Bytes move in slices of this much line time (fine enough for the link's timers,
coarse enough not to wake a thread per byte)."""


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


class LinePacer:
    """One direction of a serial line: bytes cannot cross faster than ``bytes_per_s``.

    The line keeps the instant it is free again: every reservation starts there (or now,
    if the line is idle), so deadlines are absolute and a late wake-up does not
    accumulate. Not thread-safe: one thread moves the bytes of a direction.
    """

    def __init__(self, bytes_per_s: float, *, slice_s: float = DEFAULT_SLICE_S) -> None:
        if bytes_per_s <= 0:
            raise ValueError(f"a line rate is > 0 bytes a second, got {bytes_per_s}")
        self.bytes_per_s = bytes_per_s
        self.slice_bytes = self.bytes_in(slice_s)
        """The bytes of one slice of line time."""
        self._free_at_s = 0.0

    @classmethod
    def for_baud(cls, baud: int, *, slice_s: float = DEFAULT_SLICE_S) -> LinePacer:
        """A UART's direction at ``baud`` (8N1)."""
        return cls(baud / UART_BITS_PER_BYTE, slice_s=slice_s)

    def bytes_in(self, seconds: float) -> int:
        """How many bytes cross in ``seconds`` of line time (at least one)."""
        return max(1, int(self.bytes_per_s * seconds))

    def restart(self) -> None:
        """Forget what was on the line (a new connection)."""
        self._free_at_s = 0.0

    def reserve_s(self, size_bytes: int) -> float:
        """Put ``size_bytes`` more on the line; the seconds from now until their last
        byte has crossed (0 or less: it already has)."""
        now = time.monotonic()
        self._free_at_s = max(self._free_at_s, now) + size_bytes / self.bytes_per_s
        return self._free_at_s - now

    def reserve_ns(self, size_bytes: int) -> int:
        """:meth:`reserve_s` in nanoseconds, for a scheduler's timer."""
        return round(self.reserve_s(size_bytes) * 1e9)

    def cross(self, size_bytes: int, wait: Callable[[float], bool] = _sleep) -> bool:
        """Wait until ``size_bytes`` more have crossed the line. ``wait(seconds)``
        returns True when it was cut short (a ``threading.Event.wait`` of a closing
        flag); then this returns False."""
        delay_s = self.reserve_s(size_bytes)
        return delay_s <= 0 or not wait(delay_s)

    def send(
        self,
        data: bytes,
        write: Callable[[bytes], object],
        wait: Callable[[float], bool] = _sleep,
    ) -> bool:
        """Write ``data`` slice by slice, each once it would have crossed the line;
        False (the rest unwritten) when ``wait`` was cut short."""
        for start in range(0, len(data), self.slice_bytes):
            piece = data[start : start + self.slice_bytes]
            if not self.cross(len(piece), wait):
                return False
            write(piece)
        return True
