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
        self._seen: dict[str, int] = {}
        self.stuck: list[str] = []

    def start(self) -> None:
        kernel = self._kernel
        period_ns = round(kernel.board.config.engine.watchdog_kick_ms * 1e6)
        kernel.board.kick_watchdog()
        kernel.every(period_ns, self._check_and_kick)

    def _is_stuck(self, ao: ActiveObject) -> bool:
        before = self._seen.get(ao.NAME)
        self._seen[ao.NAME] = ao.processed
        return bool(ao.queue) and before == ao.processed

    def _check_and_kick(self) -> None:
        # Evaluate every object each time so each one's progress mark stays current.
        stuck = [ao.NAME for ao in self._kernel.objects if self._is_stuck(ao)]
        self.stuck = stuck
        if not stuck:
            self._kernel.board.kick_watchdog()
