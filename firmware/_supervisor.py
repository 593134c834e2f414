"""The main loop's watchdog duty.

Every ``watchdog_kick_ms`` the supervisor checks that no active object is stuck — one
that had events waiting at the last check and has taken none since — and only then
kicks the board's watchdog. A hung object therefore leads to a missed kick, a board
reset by the watchdog, a reboot, and a ``watchdog_reset`` report at the next boot.
"""

from __future__ import annotations

from firmware._kernel import Kernel


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

    def _check_and_kick(self) -> None:
        # Runs four times a second of printer time, whatever is printing: kept lean.
        # Every object is looked at each time so each one's progress mark stays current.
        seen = self._seen
        stuck = []
        for ao in self._kernel.objects:
            processed = ao.processed
            if ao.queue and seen.get(ao.NAME) == processed:
                stuck.append(ao.NAME)
            seen[ao.NAME] = processed
        self.stuck = stuck
        if not stuck:
            self._kernel.board.kick_watchdog()
