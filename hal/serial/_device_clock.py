"""The device's clock as the host knows it, and timers in it: :class:`hal.Board`'s device
time on a serial board.

The device stamps every EVENT with its clock (``t_ns``) and answers ``board.clock`` with
it (docs/board-commands.md). :class:`DeviceClock` keeps the newest instant heard
(:attr:`DeviceClock.now_ns`) and runs timers in the device's time:

* A timer at ``t`` runs once an instant later than ``t`` has been heard: never on the
  host's guess, so a slow or quiet link delays it and never fires it early. It runs on
  the scheduler (never inside the frame's handling), after the interrupts of every event
  heard before, which were scheduled first at a more urgent priority: a deadline the
  device passed after an edge is judged after that edge's ISR.
* While nothing later than ``t`` is heard, a host timer waits until the host's estimate
  of the device's clock passes ``t`` (the newest instant heard plus the host's time
  since: late by the link's one-way delay, the safe side); then ``board.clock`` is asked,
  one request at a time, and ``t`` checked again on its answer (or on any event before
  it). While the link is quiet or down nothing is heard, and nothing runs.
* An anchored timer (:meth:`DeviceClock.call_after_commands`) waits for ``delay`` after
  the device carried out every command given so far: a ``board.clock`` goes out after
  them (at the end of the scheduler's current callback, so every command of that
  callback is included; timers anchored together share it). The device answers in
  order, so the answer is no earlier than the commands were carried out: the later
  bound, the safe side. A request lost with the link is asked again when the link is
  back.
* A device without ``board.clock`` (one older than the command): its refusal is logged
  once and the host's estimate stands in for the device's answers from then on.

The other way round, :meth:`DeviceClock.call_when_commands_reach` runs a callback when a
command given then would be carried out at a device instant ``t`` or later. Every
answered ``board.clock`` measures how a command goes: given at host instant ``h``, it was
handled at the device's ``t_ns``; the command lead ``h - t_ns`` is the clocks' offset
less the time the command took to reach the device. A command given at ``t`` plus the
largest lead of the latest :data:`_LEAD_SAMPLES` exchanges (the quickest delivery
seen) is carried out at ``t`` or later unless it reaches the device quicker than any of
them did; a slower delivery, a stalled line, only make it later. Without a measure (no
answer yet since the device's clock started, or a device without ``board.clock``) the
bound is the newest instant heard plus the host's time since, which assumes no delay at
all on the line: later by a round trip, never early.

The quickest delivery must be among the exchanges measured, and a ``board.clock`` asked
after a burst of commands waits behind them on a device that answers slowly (one that
writes each answer byte by byte: QEMU's UARTs): those leads all read a slow line. So
when the board is synchronised with fewer than :data:`_SEED_SAMPLES` measures, the clock
is asked that many times, one after another a little apart, on the quiet line after the
snapshot: the measure starts from the line's quick deliveries, not from the first
pickup's burst.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

from hal import PRIORITY_LATE, Scheduler, Timer, timer_when_ns
from hal._clock import Callback
from hal._scheduler import _PRIORITY_BITS
from hal.serial._analog_poll import Sender
from hal.serial._errors import NotSupported, PrinterLinkError, UnknownCommand

log = logging.getLogger("printer_emu.serial_board")

_UNANCHORED_KEY = 1 << 62 << _PRIORITY_BITS
"""The key of a timer whose device instant is not known yet: later than any instant."""
_POLL_FLOOR_NS = 1_000_000
"""The least host time between the answer to ``board.clock`` and the next ask."""
_SEED_SAMPLES = 4
"""``board.clock`` exchanges asked at synchronisation while fewer leads than this are
known (see the module docstring)."""
_LEAD_SAMPLES = 16
"""How many of the latest ``board.clock`` exchanges the command lead is taken from:
enough to have seen the line's quick deliveries, few enough to follow a line that
changes (a reconnection through another path) or a device clock that drifts."""



class DeviceClock:
    """The newest device instant heard, and the timers waiting for the device's clock;
    see the module docstring. Scheduler thread only."""

    def __init__(self, scheduler: Scheduler, send: Sender, synced: Callable[[], bool]) -> None:
        """``send`` is the board's request on the link; ``synced()`` whether the board is
        synchronised (a ``board.clock`` is asked only then)."""
        self._scheduler = scheduler
        self._send = send
        self._synced = synced
        self.now_ns = 0
        """The newest instant of the device's clock heard (0 before the first)."""
        self._heard_at_ns = scheduler.now_ns
        """The host's instant when :attr:`now_ns` was heard (for the estimate)."""
        self._timers: list[Timer] = []
        """A heap of ``[t_ns << _PRIORITY_BITS, seq, callback]``: :class:`Timer` entries,
        so :meth:`Scheduler.cancel` and ``timer_when_ns`` work on them."""
        self._seq = 0
        self._unanchored: list[tuple[Timer, int]] = []
        """Anchored timers (and their delays) whose ``board.clock`` has not gone out."""
        self._anchor_scheduled = False
        self._fire_scheduled = False
        self._asking = 0
        """``board.clock`` requests in flight."""
        self._poll: Timer | None = None
        self._supported = True
        self._leads: deque[int] = deque(maxlen=_LEAD_SAMPLES)
        """The command lead (host instant given less device instant handled) of each of
        the latest answered ``board.clock`` requests."""
        self._restarts = 0
        self._seeds_left = 0
        """``board.clock`` exchanges still to ask for the lead's first measures."""
        self.asked = 0
        """``board.clock`` requests sent (tests, benchmarks)."""

    # -- what the device says --------------------------------------------------------

    def heard(self, t_ns: int) -> None:
        """The device said its clock read ``t_ns`` (an event's stamp, an answer).
        Called for every event: no allocation, a look at the first timer."""
        if t_ns <= self.now_ns:
            return
        self.now_ns = t_ns
        self._heard_at_ns = self._scheduler.now_ns
        timers = self._timers
        if timers and timers[0][0] < t_ns << _PRIORITY_BITS:
            self._schedule_fire()

    def synced(self, t_ns: int) -> None:
        """The board is synchronised (a snapshot of ``t_ns`` read): ask again what the
        link lost, and look out for the timers anew."""
        self.heard(t_ns)
        if self._unanchored:
            self._schedule_anchor()
        self._arm_poll()
        if self._supported and len(self._leads) < _SEED_SAMPLES and not self._seeds_left:
            self._seeds_left = _SEED_SAMPLES
            self._seed()

    def _seed(self) -> None:
        if self._seeds_left and self._synced():
            self._seeds_left -= 1
            self._ask_clock([])
        else:
            self._seeds_left = 0

    def restart(self, t_ns: int | None) -> None:
        """A board reset: every timer is cancelled (its firmware is gone). ``t_ns``: the
        device rebooted and its clock now reads ``t_ns`` (it may have gone back)."""
        for timer in self._timers:
            timer[2] = None
        for timer, _delay in self._unanchored:
            timer[2] = None
        self._timers.clear()
        self._unanchored.clear()
        if self._poll is not None:
            Scheduler.cancel(self._poll)
            self._poll = None
        self._leads.clear()  # of the old clock
        self._restarts += 1
        if t_ns is not None:
            self.now_ns = t_ns
            self._heard_at_ns = self._scheduler.now_ns

    # -- timers --------------------------------------------------------------------------

    def call_at(self, t_ns: int, callback: Callback) -> Timer:
        """See :meth:`hal.Board.call_at_device`."""
        self._seq += 1
        timer: Timer = [t_ns << _PRIORITY_BITS, self._seq, callback]
        self._push(timer)
        return timer

    def call_after_commands(self, delay_ns: int, callback: Callback) -> Timer:
        """See :meth:`hal.Board.call_after_commands`."""
        self._seq += 1
        timer: Timer = [_UNANCHORED_KEY, self._seq, callback]
        self._unanchored.append((timer, delay_ns))
        self._schedule_anchor()
        return timer

    def call_when_commands_reach(self, t_ns: int, callback: Callback) -> Timer:
        """See :meth:`hal.Board.call_when_commands_reach`: a host timer, at the
        instant the module docstring reckons."""
        return self._scheduler.call_at(self.host_ns_for_command_at(t_ns), callback)

    def host_ns_for_command_at(self, t_ns: int) -> int:
        """The host's instant from which a command given is carried out at the device's
        ``t_ns`` or later (see the module docstring)."""
        at_ns = self._heard_at_ns + t_ns - self.now_ns  # as if the line took no time
        if self._leads:
            at_ns = min(at_ns, t_ns + max(self._leads))
        return at_ns

    def _push(self, timer: Timer) -> None:
        heappush(self._timers, timer)
        if timer[0] < self.now_ns << _PRIORITY_BITS:
            self._schedule_fire()
        else:
            self._arm_poll()

    def _schedule_fire(self) -> None:
        if not self._fire_scheduled:
            self._fire_scheduled = True
            self._scheduler.call_soon(self._fire_due)

    def _fire_due(self) -> None:
        self._fire_scheduled = False
        timers = self._timers
        passed = self.now_ns << _PRIORITY_BITS
        while timers and timers[0][0] < passed:
            callback = heappop(timers)[2]
            if callback is not None:
                callback()
        self._arm_poll()

    # -- asking the device ---------------------------------------------------------------

    def _schedule_anchor(self) -> None:
        if not self._anchor_scheduled:
            self._anchor_scheduled = True
            self._scheduler.call_soon(self._send_anchor, PRIORITY_LATE)

    def _send_anchor(self) -> None:
        self._anchor_scheduled = False
        batch = [(timer, delay) for timer, delay in self._unanchored if timer[2] is not None]
        self._unanchored.clear()
        if batch:
            self._ask_clock(batch)

    def _arm_poll(self) -> None:
        """A host timer for when the device is estimated to pass the first live timer."""
        timers = self._timers
        while timers and timers[0][2] is None:
            heappop(timers)
        if not timers:
            if self._poll is not None:
                Scheduler.cancel(self._poll)
                self._poll = None
            return
        due_ns = timers[0][0] >> _PRIORITY_BITS
        at_ns = self._heard_at_ns + (due_ns - self.now_ns) + 1
        poll = self._poll
        if poll is not None and timer_when_ns(poll) <= at_ns:
            return  # an earlier look re-arms for this one
        if poll is not None:
            Scheduler.cancel(poll)
        self._poll = self._scheduler.call_at(at_ns, self._on_poll)

    def _on_poll(self) -> None:
        self._poll = None
        timers = self._timers
        while timers and timers[0][2] is None:
            heappop(timers)
        if not timers:
            return
        if not self._supported:
            self.heard(self._estimate_ns())
            self._arm_poll()
        elif self._asking:
            return  # an answer is on its way, and re-arms
        elif timers[0][0] < self.now_ns << _PRIORITY_BITS:
            self._schedule_fire()
        else:
            self._ask_clock([])

    def _estimate_ns(self) -> int:
        return self.now_ns + self._scheduler.now_ns - self._heard_at_ns

    def _ask_clock(self, batch: list[tuple[Timer, int]]) -> None:
        """Ask the device for its clock; anchor ``batch`` on the answer."""

        def answered(result: Any) -> None:
            self._asking -= 1
            t_ns = result.get("t_ns") if isinstance(result, dict) else None
            if not isinstance(t_ns, int) or isinstance(t_ns, bool) or t_ns < 0:
                log.error("board.clock: expected {'t_ns': uint}, got %r", result)
                t_ns = self._estimate_ns()
            elif restarts == self._restarts:  # the clock measured is still the device's
                self._leads.append(given_at_ns - t_ns)
            self._anchor(batch, t_ns)
            self.heard(t_ns)
            self._arm_poll_after_answer()
            if self._seeds_left:
                self._scheduler.call_later(_POLL_FLOOR_NS, self._seed)

        def failed(error: PrinterLinkError) -> None:
            self._asking -= 1
            if isinstance(error, UnknownCommand | NotSupported):
                if self._supported:
                    log.warning("the device does not answer board.clock (%s): its clock is "
                                "estimated from its events", error)
                self._supported = False
                self._seeds_left = 0
                self._anchor(batch, self._estimate_ns())
                self._arm_poll()
            else:  # the link went: asked again when it is back (synced)
                self._unanchored.extend(batch)
                self._seeds_left = 0

        if not self._synced():
            self._unanchored.extend(batch)
            return
        self._asking += 1
        self.asked += 1
        given_at_ns = self._scheduler.now_ns
        restarts = self._restarts
        self._send("board.clock", None, answered, failed)

    def _anchor(self, batch: list[tuple[Timer, int]], t_ns: int) -> None:
        for timer, delay_ns in batch:
            if timer[2] is not None:
                timer[0] = (t_ns + delay_ns) << _PRIORITY_BITS
                self._push(timer)

    def _arm_poll_after_answer(self) -> None:
        """After an answer that left the first timer still ahead: look again no sooner
        than :data:`_POLL_FLOOR_NS` from now (a device whose clock runs slow must not
        make the host ask without pause)."""
        self._arm_poll()
        poll = self._poll
        floor_ns = self._scheduler.now_ns + _POLL_FLOOR_NS
        if poll is not None and timer_when_ns(poll) < floor_ns:
            Scheduler.cancel(poll)
            self._poll = self._scheduler.call_at(floor_ns, self._on_poll)
