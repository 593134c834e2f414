"""A serial board's imaging requests (``imaging.submit``, ``imaging.cancel`` and the
``imaging`` events of docs/board-commands.md): the host's pending handles, by the number
the host chose for each, unique for the board's lifetime.

* :meth:`RemoteImaging.submit` sends the request and returns its :class:`~hal.IoHandle`
  at once; with the board not synchronised it fails on the scheduler ("the link to the
  board is down"), as nothing can reach the device.
* A handle cancelled while the link is down waits in :attr:`RemoteImaging.cancel_later`
  for the resync, which sends its cancel (``hal.serial._resync``).
* :meth:`RemoteImaging.on_event` follows the device's ``imaging`` events; one for a
  handle no longer pending (cancelled, failed at a reset, of an earlier boot) is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hal import ImagePage, IoError, IoEvent, IoHandle, Scheduler
from hal.serial._analog_poll import Sender
from hal.serial._errors import DeviceRejected, PrinterLinkError
from hal.serial._host_link import ignore_error

Refused = Callable[[str, dict[str, Any], DeviceRejected], None]
"""``refused(cmd, args, error)``: the device refused a request of the firmware's."""


class RemoteImaging:
    """The imaging requests of one serial board; see the module docstring. Scheduler
    thread only."""

    def __init__(self, scheduler: Scheduler, send: Sender, synced: Callable[[], bool],
                 refused: Refused, not_sent: Callable[[], None]) -> None:
        """``send`` is the board's request on the link, ``synced()`` whether the board
        is synchronised, ``refused`` is told of a refused submit (the firmware's bug),
        ``not_sent()`` of a request the link could not take."""
        self._scheduler = scheduler
        self._send = send
        self._synced = synced
        self._refused = refused
        self._not_sent = not_sent
        self.pending: dict[int, IoHandle] = {}
        """The handles the device has been asked to image and has not finished, by number."""
        self.cancel_later: set[int] = set()
        """Handles cancelled while the link was down: their cancel goes out at the resync."""
        self._last_number = 0

    def submit(self, page: ImagePage) -> IoHandle:
        handle = IoHandle(page, self._cancel)
        self._last_number += 1
        number = self._last_number
        if not self._synced():
            self._not_sent()
            self._scheduler.call_soon(
                lambda: handle.fail(IoError("the link to the board is down"))
            )
            return handle
        self.pending[number] = handle
        args = {"handle": number, "job": int(page.job), "page": int(page.page),
                "coverage_pct": float(page.coverage_pct)}

        def refused(error: PrinterLinkError) -> None:
            if self.pending.pop(number, None) is handle:
                handle.fail(IoError(f"imaging.submit refused: {error}"))
            if isinstance(error, DeviceRejected):
                self._refused("imaging.submit", args, error)

        self._send("imaging.submit", args, None, refused)
        return handle

    def _cancel(self, handle: IoHandle) -> None:
        number = next((n for n, h in self.pending.items() if h is handle), None)
        if number is None:
            return
        del self.pending[number]
        if self._synced():
            self._send("imaging.cancel", {"handle": number}, None, ignore_error)
        else:
            self.cancel_later.add(number)

    def on_event(self, number: int, state: str, error: str) -> None:
        """The device's ``imaging`` event for handle ``number``."""
        handle = self.pending.get(number)
        if handle is None:
            return
        if state == "started":
            handle.post(IoEvent(self._scheduler.now_ns, "imaging_started"))
        elif state == "done":
            del self.pending[number]
            handle.complete(handle.request)
        elif state == "failed":
            del self.pending[number]
            handle.fail(IoError(error or "imaging failed"))
        else:
            raise ValueError(f"unknown imaging state {state!r}")

    def fail_all(self, reason: str) -> None:
        """The board reset: every pending request fails, no cancel is owed."""
        handles = list(self.pending.values())
        self.pending.clear()
        self.cancel_later.clear()
        for handle in handles:
            handle.fail(IoError(reason))
