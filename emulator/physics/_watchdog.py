"""The watchdog: a board that is not kicked in time resets.

Contract
--------
* The watchdog is idle at power-on and after every reset; it starts counting at the
  first :meth:`kick` after boot (so a firmware that takes its time to boot is not reset
  before it runs, and a board nobody drives — a bare test — never resets on its own).
* Once counting, a reset is due ``watchdog_timeout_ms`` after the last kick. If no kick
  comes by then, ``on_expire`` runs at exactly that instant and the watchdog is idle
  again until the next kick.
* Kicking costs no scheduler entry: one timer is pending while counting; when it comes
  up early (there were kicks meanwhile) it is moved to the new deadline.
"""

from __future__ import annotations

from collections.abc import Callable

from hal import Scheduler, Timer


class Watchdog:
    """See the module docstring."""

    def __init__(
        self, scheduler: Scheduler, timeout_ns: int, on_expire: Callable[[], None]
    ) -> None:
        self._scheduler = scheduler
        self.timeout_ns = timeout_ns
        self._on_expire = on_expire
        self._deadline_ns = 0
        self._timer: Timer | None = None
        self.expired = 0
        """Resets it has caused."""

    @property
    def counting(self) -> bool:
        return self._timer is not None

    @property
    def deadline_ns(self) -> int | None:
        """When the board resets unless kicked, or ``None`` while idle."""
        return self._deadline_ns if self._timer is not None else None

    def kick(self) -> None:
        self._deadline_ns = self._scheduler.now_ns + self.timeout_ns
        if self._timer is None:
            self._timer = self._scheduler.call_at(self._deadline_ns, self._check)

    def stop(self) -> None:
        """Back to idle (what a reset does)."""
        if self._timer is not None:
            self._scheduler.cancel(self._timer)
            self._timer = None

    def _check(self) -> None:
        if self._deadline_ns > self._scheduler.now_ns:
            self._timer = self._scheduler.call_at(self._deadline_ns, self._check)
            return
        self._timer = None
        self.expired += 1
        self._on_expire()
