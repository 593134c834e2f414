"""IPP event notifications (RFC 3995) pulled with ``ippget`` (RFC 3996).

A client subscribes to events (Create-Printer-Subscriptions, Create-Job-Subscriptions)
and fetches them with Get-Notifications, optionally waiting for the next one
(``notify-wait``). Events come from the printer's published status as it changes
(:meth:`Subscriptions.observe`, on the network loop's thread, with each snapshot in
order): ``printer-state-changed`` when ``printer-state`` or ``printer-state-reasons``
change (toner low, paper out, a jam, the cover opened…), ``printer-stopped``,
``job-state-changed``, ``job-completed``, ``job-progress`` (a page delivered) and
``job-created``.

Memory is bounded: at most :data:`MAX_SUBSCRIPTIONS` subscriptions, each holding at most
``NOTIFY_MAX_EVENTS`` undelivered events (the oldest go first: the client sees a gap in
``notify-sequence-number``); a subscription ends when its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from firmware.net._ipp_codec import Attribute, ValueTag
from firmware.net._ipp_printer_attributes import NOTIFY_EVENTS, NOTIFY_MAX_EVENTS
from firmware.net._job_table import JobTable, JobView, NetworkJob, job_view
from firmware.net._printer_status import PrinterStatus

T = ValueTag
MAX_SUBSCRIPTIONS = 100
NOTIFY_GET_INTERVAL_S = 5
"""How often a client that does not wait should come back (``notify-get-interval``)."""


@dataclass(eq=False)
class Subscription:
    id: int
    events: frozenset[str]
    job_id: int | None
    user: str
    printer_uri: str
    lease_s: int
    created_at: float
    expires_at: float | None
    """None: for as long as the printer runs (lease 0)."""
    user_data: bytes | None = None
    pending: deque[tuple[int, tuple[Attribute, ...]]] = field(
        default_factory=lambda: deque(maxlen=NOTIFY_MAX_EVENTS))
    next_seq: int = 1


UpTime = Callable[[float | None], int]


class Subscriptions:
    """Every subscription of the printer, on the network loop's thread."""

    def __init__(self, printer_name: str, up_time_s: UpTime) -> None:
        self._printer_name = printer_name
        self._up_time_s = up_time_s
        self._subs: dict[int, Subscription] = {}
        self._next_id = 1
        self._arrived = asyncio.Event()
        self._last_status: PrinterStatus | None = None

    # -- subscriptions ----------------------------------------------------------------

    def create(self, *, events: Iterable[str], job_id: int | None, user: str,
               printer_uri: str, lease_s: int, user_data: bytes | None) -> Subscription | None:
        """A new subscription, or None when the printer has as many as it keeps."""
        self._expire()
        if len(self._subs) >= MAX_SUBSCRIPTIONS:
            return None
        now = time.time()
        sub = Subscription(self._next_id, frozenset(events) & frozenset(NOTIFY_EVENTS), job_id,
                           user, printer_uri, lease_s, now,
                           None if lease_s == 0 or job_id is not None else now + lease_s,
                           user_data)
        self._next_id += 1
        self._subs[sub.id] = sub
        return sub

    def get(self, sub_id: int) -> Subscription | None:
        self._expire()
        return self._subs.get(sub_id)

    def __iter__(self) -> Iterator[Subscription]:
        self._expire()
        return iter(list(self._subs.values()))

    def cancel(self, sub_id: int) -> bool:
        return self._subs.pop(sub_id, None) is not None

    def renew(self, sub: Subscription, lease_s: int) -> None:
        sub.lease_s = lease_s
        sub.expires_at = None if lease_s == 0 else time.time() + lease_s

    def _expire(self) -> None:
        now = time.time()
        for sub_id in [s.id for s in self._subs.values()
                       if s.expires_at is not None and s.expires_at <= now]:
            del self._subs[sub_id]

    # -- events -------------------------------------------------------------------------

    def observe(self, status: PrinterStatus, jobs: JobTable) -> None:
        """A new snapshot (every one, in order): emit what changed since the last."""
        previous, self._last_status = self._last_status, status
        if previous is None or not self._subs:
            return
        if (status.printer_state, status.reasons) != (previous.printer_state, previous.reasons):
            self.emit("printer-state-changed", status)
            if status.stopped and not previous.stopped:
                self.emit("printer-stopped", status)
        stop_changed = status.stopped != previous.stopped
        for job in jobs:
            if not stop_changed and status.jobs.get(job.id) is previous.jobs.get(job.id):
                continue
            before, after = job_view(job, previous), job_view(job, status)
            if (before.state, before.reasons) != (after.state, after.reasons):
                self.emit("job-state-changed", status, job, after)
                if after.state.terminal and not before.state.terminal:
                    self.emit("job-completed", status, job, after)
            if after.impressions_completed != before.impressions_completed:
                self.emit("job-progress", status, job, after)

    def emit(self, event: str, status: PrinterStatus, job: NetworkJob | None = None,
             view: JobView | None = None) -> None:
        """Queue ``event`` for every subscription to it (a job's subscriptions, and the
        printer's, for a job event)."""
        targets = [s for s in self._subs.values() if event in s.events
                   and (s.job_id is None or (job is not None and s.job_id == job.id))]
        if not targets:
            return
        now = time.time()
        for sub in targets:
            attributes = self._notification(sub, event, status, job, view, now)
            sub.pending.append((sub.next_seq, attributes))
            sub.next_seq += 1
        self._arrived.set()
        self._arrived = asyncio.Event()

    def _notification(self, sub: Subscription, event: str, status: PrinterStatus,
                      job: NetworkJob | None, view: JobView | None,
                      now: float) -> tuple[Attribute, ...]:
        text = (f"{self._printer_name}: {status.message}" if job is None or view is None
                else f"Job {job.id} \"{job.name}\": {view.message}")
        attributes = [
            Attribute.of("notify-subscription-id", T.INTEGER, sub.id),
            Attribute.of("notify-printer-uri", T.URI, sub.printer_uri),
            Attribute.of("notify-sequence-number", T.INTEGER, sub.next_seq),
            Attribute.of("notify-subscribed-event", T.KEYWORD, event),
            Attribute.of("notify-text", T.TEXT, text[:255]),
            Attribute.of("notify-charset", T.CHARSET, "utf-8"),
            Attribute.of("notify-natural-language", T.NATURAL_LANGUAGE, "en"),
            Attribute.of("printer-up-time", T.INTEGER, self._up_time_s(now)),
            Attribute.of("printer-name", T.NAME, self._printer_name),
            Attribute.of("printer-state", T.ENUM, int(status.printer_state)),
            Attribute.of("printer-state-reasons", T.KEYWORD, *status.reasons),
            Attribute.of("printer-is-accepting-jobs", T.BOOLEAN, True),
        ]
        if sub.user_data is not None:
            attributes.append(Attribute.of("notify-user-data", T.OCTET_STRING, sub.user_data))
        if job is not None and view is not None:
            attributes += [
                Attribute.of("notify-job-id", T.INTEGER, job.id),
                Attribute.of("job-id", T.INTEGER, job.id),
                Attribute.of("job-name", T.NAME, job.name),
                Attribute.of("job-state", T.ENUM, int(view.state)),
                Attribute.of("job-state-reasons", T.KEYWORD, *view.reasons),
                Attribute.of("job-impressions-completed", T.INTEGER,
                             view.impressions_completed),
            ]
        return tuple(attributes)

    def pending(self, subs: list[Subscription],
                since: dict[int, int]) -> list[tuple[Attribute, ...]]:
        """Undelivered events of ``subs`` from each one's sequence number in ``since``
        (events below it are dropped: the client has them)."""
        out = []
        for sub in subs:
            first = since.get(sub.id, 1)
            while sub.pending and sub.pending[0][0] < first:
                sub.pending.popleft()
            out += [attributes for _, attributes in sub.pending]
        return out

    def release_waiters(self) -> None:
        """End every wait now (the printer is closing)."""
        self._arrived.set()
        self._arrived = asyncio.Event()

    async def wait(self, timeout_s: float) -> None:
        """Until the next event is queued, or ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), timeout_s)
