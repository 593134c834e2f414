"""The link pump: a sans-IO :class:`~hal.serial.LinkEndpoint` run on a scheduler.

The endpoint only reacts to calls; :class:`LinkPump` makes them, on the scheduler's
thread, for both ends of the line — the host's :class:`~hal.serial.SerialBoard` and the
virtual device. It feeds the endpoint the bytes read, hands its owner what the link
delivered, writes what the link has to send, and keeps one scheduler timer at the link's
next deadline (or the owner's own, if that comes first).

When bytes go out is the owner's choice, because each end has its own urgent path:

* :meth:`LinkPump.pump` writes now. The host pumps when it sends a request (a request
  goes to the line as soon as it is made); the device pumps after it received a request
  (its answer goes at once).
* :meth:`LinkPump.pump_late` writes once the instant's other work has run
  (``PRIORITY_LATE``), so what is queued meanwhile shares one write. The host pumps late
  after receiving (a write there would put a syscall — and on a pty a CPU yield —
  between a device event and its ISR, and the firmware's reaction then rides with the
  acks); the device pumps late after queueing an event (events of one instant go out
  together).
"""

from __future__ import annotations

from collections.abc import Callable

from hal import PRIORITY_LATE, Scheduler, Timer, timer_when_ns
from hal.serial._link import LinkEndpoint, LinkEvent

EventHandler = Callable[[list[LinkEvent]], None]
"""``on_events(events)``: what the link delivered, in the order it happened."""
OwnDeadline = Callable[[int], int | None]
"""``deadline(now_ns)``: when the owner wants the pump to run next, or ``None``."""


class LinkPump:
    """Runs ``link`` on ``scheduler``: see the module docstring.

    ``write(data)`` takes bytes for the line (it must not block the scheduler);
    ``on_events(events)`` gets every batch the link delivers; ``deadline`` (optional)
    adds the owner's own timer, checked after every pump. Everything is called on the
    scheduler's thread. ``link`` may be ``None`` (no link: the pump does nothing) and
    may be replaced (a device's reboot), even from ``on_events``.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        link: LinkEndpoint | None,
        *,
        write: Callable[[bytes], object],
        on_events: EventHandler,
        deadline: OwnDeadline | None = None,
    ) -> None:
        self._scheduler = scheduler
        self._link = link
        self._write = write
        self._on_events = on_events
        self._deadline = deadline
        self._timer: Timer | None = None
        self._late: Timer | None = None
        self._pumping = False
        self._closed = False

    @property
    def link(self) -> LinkEndpoint | None:
        return self._link

    @link.setter
    def link(self, link: LinkEndpoint | None) -> None:
        """Pump another endpoint from now on (the old one's timer is cancelled)."""
        self._link = link
        self._cancel_timer()

    def receive(self, data: bytes) -> None:
        """Bytes read from the line: feed them to the link and hand its owner what it
        delivers. Writes nothing: call :meth:`pump` or :meth:`pump_late` after."""
        link = self._link
        if self._closed or link is None:
            return
        link.receive(data, self._scheduler.now_ns)
        events = link.events()
        if events:
            self._pumping = True
            try:
                self._on_events(events)
            finally:
                self._pumping = False

    def pump(self) -> None:
        """Hand over what the link delivered and write what it has to send, until both
        are empty; then make sure the timer runs by the next deadline. Called from
        ``on_events`` it does nothing: the pump running then sends what was queued before
        it returns."""
        link = self._link
        if self._closed or self._pumping or link is None:
            return
        self._pumping = True
        try:
            events = link.events()
            while True:
                if events:
                    self._on_events(events)
                    if self._closed:
                        return
                    if self._link is not link:  # the owner replaced it meanwhile
                        link = self._link
                        if link is None:
                            return
                        events = link.events()
                        continue
                out = link.outgoing(self._scheduler.now_ns)
                if out:
                    self._write(out)
                events = link.events()  # outgoing() polls: a session may have ended
                if not events:
                    break
        finally:
            self._pumping = False
        self._arm(self._next_deadline_ns(link))

    def pump_late(self) -> None:
        """:meth:`pump` once this instant's other work has run (once, however often it
        is asked). Skipped when the armed timer comes before the link's next deadline
        (usually a delayed ack, which the timer sends; the owner's own deadline is in
        the timer already)."""
        link = self._link
        if self._closed or self._late is not None or link is None:
            return
        timer = self._timer
        if timer is None or link.next_deadline_ns() < timer_when_ns(timer):
            self._late = self._scheduler.call_soon(self._on_late, PRIORITY_LATE)

    def restart(self) -> None:
        """Start the link over (the line was reopened, a client came or went: see
        :meth:`LinkEndpoint.reset`) and pump."""
        if self._closed or self._link is None:
            return
        self._link.reset(self._scheduler.now_ns)
        self.pump()

    def close(self) -> None:
        """Stop: cancel the timers; every call is ignored from now on. Idempotent."""
        self._closed = True
        self._cancel_timer()
        if self._late is not None:
            self._scheduler.cancel(self._late)
            self._late = None

    # -- timers ---------------------------------------------------------------------------

    def _next_deadline_ns(self, link: LinkEndpoint) -> int:
        deadline = link.next_deadline_ns()
        if self._deadline is not None:
            own = self._deadline(self._scheduler.now_ns)
            if own is not None and own < deadline:
                deadline = own
        return deadline

    def _arm(self, deadline_ns: int) -> None:
        timer = self._timer
        if timer is not None:
            if timer_when_ns(timer) <= deadline_ns:
                return  # it fires first, and arms the next one then
            self._scheduler.cancel(timer)
        self._timer = self._scheduler.call_at(deadline_ns, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._scheduler.cancel(self._timer)
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self.pump()

    def _on_late(self) -> None:
        self._late = None
        self.pump()
