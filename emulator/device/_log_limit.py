"""Rate-limited warnings for ``printer-emu serve``'s log: a client that sends garbage
(malformed HELLOs, broken SMP lines, bad Telnet) must not be able to fill the log.

:class:`RateLimit` is a :class:`logging.Filter` on serve's stderr handler: of the
warnings of one kind (the logger and the message's template, not its arguments) it lets
one through per :data:`WINDOW_S`, and the next one that passes says how many were
suppressed meanwhile. Records below WARNING (``-v``'s session log, asked for) pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

WINDOW_S = 10.0
"""At most one warning of a kind per this many seconds."""
_MAX_KINDS = 256
"""Kinds remembered; templates are the code's, so this is never reached in practice."""


class RateLimit(logging.Filter):
    """One warning per kind per ``window_s`` (see the module docstring)."""

    def __init__(self, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._kinds: dict[tuple[str, str], tuple[float, int]] = {}
        """(logger, template) -> (when one last passed, how many suppressed since)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        last = self._kinds.get(key)
        if last is not None and now - last[0] < self._window_s:
            self._kinds[key] = (last[0], last[1] + 1)
            return False
        if last is None and len(self._kinds) >= _MAX_KINDS:
            self._kinds.clear()
        self._kinds[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = (f"{record.getMessage()} ({last[1]} more like it in the last "
                          f"{now - last[0]:.0f} s suppressed)")
            record.args = None
        return True
