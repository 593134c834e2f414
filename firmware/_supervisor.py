"""The main loop's watchdog duty.

Every ``watchdog_kick_ms`` the supervisor checks that no active object is stuck — one
that had events waiting at the last check and has taken none since — and only then
kicks the board's watchdog. A hung object therefore leads to a missed kick, a board
reset by the watchdog, a reboot, and a ``watchdog_reset`` report at the next boot.
"""

from __future__ import annotations

from firmware._kernel import ActiveObject, Kernel


class Supervisor:
    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._objects: list[ActiveObject] = []
        self._board = kernel.board
        self.stuck: list[str] = []

    def start(self) -> None:
        kernel = self._kernel
        period_ns = round(kernel.board.config.engine.watchdog_kick_ms * 1e6)
        self._objects = list(kernel.objects)
        for ao in self._objects:
            # As if each had just taken an event: nothing can look stuck at the first
            # check, which has no earlier one to compare with.
            ao.active_in = kernel.interval
        kernel.board.kick_watchdog()
        kernel.every(period_ns, self._check_and_kick)

    def _check_and_kick(self) -> None:
        # Runs four times a second of printer time, whatever is printing: kept lean.
        # The kernel stamps each object with the interval in which it last took an
        # event; an object that took one since the last check carries this interval's.
        kernel = self._kernel
        interval = kernel.interval
        kernel.interval = interval + 1
        if not kernel._queued:
            # Nothing waiting anywhere: nothing can be stuck.
            if self.stuck:
                self.stuck = []
            self._board.kick_watchdog()
            return
        stuck = [ao.NAME for ao in self._objects if ao.queue and ao.active_in != interval]
        self.stuck = stuck
        if not stuck:
            self._board.kick_watchdog()
