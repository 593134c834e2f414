"""The host's analog readings, kept fresh by ``analog.read`` requests.

A device reports a comparator crossing as an event, but a reading between crossings
only when asked. :class:`AnalogPoll` asks for one channel every ``interval_ns``, in turn
(on a slow line a burst of requests would hold up the firmware's commands behind it),
and for all of them at once after something changed them (a simulated fault).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from hal import AnalogChannel, Scheduler, Timer
from hal.serial._errors import PrinterLinkError
from hal.serial._host_link import ignore_error

Sender = Callable[
    [str, dict[str, Any] | None, Callable[[Any], None] | None,
     Callable[[PrinterLinkError], None] | None],
    None,
]
"""``send(cmd, args, on_result, on_error)``: a request on the link."""


class AnalogPoll:
    """Keeps ``readings`` fresh while ``active()`` (the board is synchronised); see the
    module docstring. A failed read is ignored: the next one comes soon."""

    def __init__(
        self,
        scheduler: Scheduler,
        interval_ns: int | None,
        readings: MutableMapping[AnalogChannel, float],
        send: Sender,
        active: Callable[[], bool],
    ) -> None:
        self._scheduler = scheduler
        self._interval_ns = interval_ns
        self._readings = readings
        self._send = send
        self._active = active
        self._timer: Timer | None = None
        self._turn = 0

    def start(self) -> None:
        """Poll from now on (``interval_ns`` ``None``: never). Idempotent."""
        if self._interval_ns is None or self._timer is not None:
            return
        self._timer = self._scheduler.call_later(self._interval_ns, self._on_tick)

    def stop(self) -> None:
        """Stop polling until :meth:`start`."""
        if self._timer is not None:
            self._scheduler.cancel(self._timer)
            self._timer = None

    def read_all(self) -> None:
        """Read every channel now (while active)."""
        if self._active():
            for channel in AnalogChannel:
                self._read(channel)

    def _on_tick(self) -> None:
        self._timer = None
        if self._active():
            channels = list(AnalogChannel)
            self._turn = (self._turn + 1) % len(channels)
            self._read(channels[self._turn])
            self.start()

    def _read(self, channel: AnalogChannel) -> None:
        def store(result: Any) -> None:
            value = result.get("value") if isinstance(result, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                self._readings[channel] = float(value)

        self._send("analog.read", {"channel": str(channel)}, store, ignore_error)
