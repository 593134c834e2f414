"""Asynchronous I/O: the request / handle / events / upcall model of DESIGN.md.

The firmware asks the board for work that takes time (``board.submit(ImagePage(...))``)
and gets an :class:`IoHandle` back at once; it keeps running. The board keeps the
request pending, posts progress on the handle as the work advances, and finally
completes it. Completion is the upcall: every ``on_done`` callback runs, on the
scheduler's thread, in the order they were added.

Contract
--------
* States: ``PENDING`` → exactly one of ``DONE`` (with a result), ``FAILED`` (with an
  error: a :class:`IoError` naming why), ``CANCELLED``. Terminal states never change.
* ``events`` is the append-only list of progress events in the order posted; each
  ``on_event`` callback sees each event once.
* ``on_done`` added after completion runs at once (still exactly once).
* ``cancel()`` on a pending handle asks its owner to stop (the owner's cancel hook runs
  first) and completes the handle as ``CANCELLED``; on a finished handle it does nothing
  and returns ``False``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple


class IoState(enum.Enum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class IoEvent(NamedTuple):
    """Progress posted on a handle: what happened and when. (A named tuple: several
    are made per request, and a frozen dataclass costs twice as much to build.)"""

    t_ns: int
    kind: str
    detail: Any = None


class IoError(Exception):
    """Why a request failed (a value carried by a FAILED handle, not raised at the
    firmware: a failed request is an outcome the firmware handles as an event)."""


class IoHandle:
    """A request in flight. Made by the board that accepted the request."""

    __slots__ = (
        "_cancel_hook",
        "_done_callbacks",
        "_event_callbacks",
        "error",
        "events",
        "request",
        "result",
        "state",
    )

    def __init__(self, request: object, cancel_hook: Callable[[IoHandle], None] | None = None):
        self.request = request
        self.state = IoState.PENDING
        self.result: Any = None
        self.error: IoError | None = None
        self.events: list[IoEvent] = []
        self._done_callbacks: list[Callable[[IoHandle], None]] = []
        self._event_callbacks: list[Callable[[IoHandle, IoEvent], None]] = []
        self._cancel_hook = cancel_hook

    def __repr__(self) -> str:
        return f"<IoHandle {self.request!r} {self.state.value}>"

    @property
    def done(self) -> bool:
        """True once the handle is in a terminal state (done, failed or cancelled)."""
        return self.state is not IoState.PENDING

    # -- firmware side -------------------------------------------------------------

    def on_done(self, callback: Callable[[IoHandle], None]) -> None:
        """Upcall ``callback(handle)`` once the request finishes (at once if it has)."""
        if self.state is IoState.PENDING:
            self._done_callbacks.append(callback)
        else:
            callback(self)

    def on_event(self, callback: Callable[[IoHandle, IoEvent], None]) -> None:
        """Call ``callback(handle, event)`` for each progress event posted from now on."""
        self._event_callbacks.append(callback)

    def cancel(self) -> bool:
        """Cancel a pending request; returns whether it was still pending."""
        if self.state is not IoState.PENDING:
            return False
        if self._cancel_hook is not None:
            self._cancel_hook(self)
            if self.state is not IoState.PENDING:
                return False  # the owner finished it from its hook: that outcome stands
        self._finish(IoState.CANCELLED)
        return True

    # -- board side ----------------------------------------------------------------

    def post(self, event: IoEvent) -> None:
        """Post progress. Ignored once the handle has finished."""
        if self.state is not IoState.PENDING:
            return
        self.events.append(event)
        for callback in self._event_callbacks:
            callback(self, event)

    def complete(self, result: Any = None) -> None:
        if self.state is IoState.PENDING:
            self.result = result
            self._finish(IoState.DONE)

    def fail(self, error: IoError) -> None:
        if self.state is IoState.PENDING:
            self.error = error
            self._finish(IoState.FAILED)

    def _finish(self, state: IoState) -> None:
        self.state = state
        callbacks, self._done_callbacks = self._done_callbacks, []
        self._event_callbacks = []
        for callback in callbacks:
            callback(self)
