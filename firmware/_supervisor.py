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
        self._seen: list[int] = []
        """Each object's ``processed`` at the last check, in ``_objects`` order."""
        self._board = kernel.board
        self.stuck: list[str] = []

    def start(self) -> None:
        kernel = self._kernel
        period_ns = round(kernel.board.config.engine.watchdog_kick_ms * 1e6)
        self._objects = list(kernel.objects)
        self._seen = [-1] * len(self._objects)  # no mark yet: nothing can look stuck
        kernel.board.kick_watchdog()
        kernel.every(period_ns, self._check_and_kick)

    def _check_and_kick(self) -> None:
        # Runs four times a second of printer time, whatever is printing: kept lean.
        # Every object is looked at each time so each one's progress mark stays current.
        objects = self._objects
        seen = self._seen
        marks = [ao.processed for ao in objects]
        self._seen = marks
        if not self._kernel._queued:
            # Nothing waiting anywhere: nothing can be stuck.
            if self.stuck:
                self.stuck = []
            self._board.kick_watchdog()  # looked up each time: a host may swap it
            return
        stuck = [ao.NAME for ao, before, now in zip(objects, seen, marks, strict=True)
                 if ao.queue and before == now]
        self.stuck = stuck
        if not stuck:
            self._board.kick_watchdog()  # looked up each time: a host may swap it
