"""The active-object kernel: flat ``transitions`` machines on the ``hal`` scheduler.

Each concern of the printer is an :class:`ActiveObject`: a flat ``transitions.Machine``
(``auto_transitions=False``, ``queued=True``) with its own FIFO of events. The kernel runs
them to completion, highest priority first:

* :meth:`Kernel.post` appends an event to one object's queue and makes sure a dispatch
  pass is scheduled at the current instant (none when one is pending or running: the
  running pass takes what is posted during it). ISRs do nothing but post (the cover
  interlock's safety cut excepted).
* A dispatch pass takes one event at a time from the highest-priority non-empty queue
  and fires it as a trigger; the trigger runs to completion before the next event is
  taken. A pass handles at most :data:`_MAX_EVENTS_PER_PASS` events, then yields to the
  scheduler so interrupts of the same instant are not starved.
* Active objects talk only by events (``post``) and by published status
  (:meth:`Kernel.publish`), never by reading each other's state.
* Timeouts are scheduler timers owned by the kernel (:meth:`Kernel.after`), so a reset
  can cancel every one of them at once. A judgement of the board (a sheet late at a
  sensor, a fuser that does not heat) waits in the board's own time instead
  (:meth:`Kernel.at_board` from an instant the board stamped, :meth:`Kernel.after_commands`
  from an act just commanded): it is due only once the board's clock has passed it, so
  a slow or quiet link to the board never makes it early. A command that must not be
  carried out before an instant of the board's (a pickup pulse one pitch after the last)
  is given on :meth:`Kernel.when_commands_reach`. Such a timer's event is not posted
  once the kernel has shut down.

A trigger that does not apply in the current state is dropped and counted
(:attr:`ActiveObject.ignored`); an exception in a trigger is a bug: it propagates out of
the scheduler's run.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from transitions import Machine

from firmware._status import StatusEvent
from hal import Board, Scheduler, Timer

_MAX_EVENTS_PER_PASS = 1000

# transitions logs every ignored trigger at WARNING: dropped events are counted per
# object instead, and the library's chatter would drown the printer's own log.
logging.getLogger("transitions").setLevel(logging.ERROR)

StatusListener = Callable[[StatusEvent], None]


class _BoundMachine(Machine):
    """``transitions.Machine`` with its callbacks called directly.

    The stock :meth:`Machine.callbacks` resolves each callback by name and logs each
    call at INFO, per trigger. The kernel binds every callback of an active object to
    the object once (:func:`_bind_callbacks`), so here a bound callable is simply
    called, with the event's arguments as the stock ``send_event=False`` path passes
    them; anything else (a name added later) takes the stock path. What runs, and in
    which order, is unchanged. With :func:`_bind_callbacks`, it saves 4% of a page's
    cost in the firmware benchmark.
    """

    def callbacks(self, funcs: Any, event_data: Any) -> None:
        for func in funcs:
            if isinstance(func, str):
                self.callback(func, event_data)
            else:
                func(*event_data.args, **event_data.kwargs)


def _bind_callbacks(ao: ActiveObject) -> None:
    """Resolve the callbacks and conditions the machine holds by name to the object's
    bound methods, once, instead of at every trigger (``transitions`` looks a name up on
    the model each time it runs it). What runs, and in which order, is unchanged."""

    def bound(names: list[Any]) -> list[Any]:
        return [getattr(ao, n) if isinstance(n, str) else n for n in names]

    machine = ao.machine
    for event in machine.events.values():
        for transitions in event.transitions.values():
            for t in transitions:
                t.prepare[:] = bound(t.prepare)
                t.before[:] = bound(t.before)
                t.after[:] = bound(t.after)
                for condition in t.conditions:
                    if isinstance(condition.func, str):
                        condition.func = getattr(ao, condition.func)
    for state in machine.states.values():
        state.on_enter[:] = bound(state.on_enter)
        state.on_exit[:] = bound(state.on_exit)


class ActiveObject:
    """One concern of the printer: a flat state machine with its own event queue.

    Subclasses set ``STATES``, ``TRANSITIONS`` (``transitions`` dicts), ``INITIAL`` and
    ``PRIORITY`` (higher runs first) and implement the callbacks the transitions name.
    ``self.state`` is the machine's state; event data arrives as keyword arguments.
    """

    NAME: str = "ao"
    STATES: Sequence[str] = ()
    TRANSITIONS: Sequence[dict[str, Any]] = ()
    INITIAL: str = ""
    PRIORITY: int = 0

    state: str

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.board: Board = kernel.board
        self.queue: deque[tuple[str, dict[str, Any]]] = deque()
        self.processed = 0
        """Events taken from the queue so far."""
        self.active_in = kernel.interval
        """The :attr:`Kernel.interval` in which this object last took an event (the
        supervisor's sign of life: one store per event instead of a snapshot of every
        object's count at every check)."""
        self.ignored = 0
        """Events dropped because they do not apply in the current state."""
        self._published_state = self.INITIAL
        self.hung = False
        """Set by fault injection: the object stops taking events (a hung task)."""
        self.machine = _BoundMachine(
            model=self,
            states=list(self.STATES),
            transitions=list(self.TRANSITIONS),
            initial=self.INITIAL,
            auto_transitions=False,
            queued=True,
            ignore_invalid_triggers=False,
        )
        # Published on entering a state (after its own on_enter_* callbacks): only real
        # changes, not the internal transitions that make up most triggers.
        for machine_state in self.machine.states.values():
            machine_state.add_callback("enter", self._published_state_change)
        _bind_callbacks(self)

    def post(self, event: str, **data: Any) -> None:
        """Queue ``event`` for this object (from an ISR, another object, or itself)."""
        self.kernel.post(self, event, data)

    def publish(self, kind: str, **detail: Any) -> None:
        self.kernel._publish(kind, self.NAME, detail)

    def publish_stamped(self, board_t_ns: int | None, kind: str, **detail: Any) -> None:
        """Publish what the board stamped at ``board_t_ns`` (its clock's instant of it;
        ``None`` when no word of the board told it: then it is :meth:`publish`)."""
        self.kernel._publish(kind, self.NAME, detail, board_t_ns)

    def after(self, delay_ns: int, event: str, **data: Any) -> Timer:
        """Post ``event`` to this object ``delay_ns`` from now; cancel with
        :meth:`Kernel.cancel`."""
        return self.kernel.after(delay_ns, self, event, data)

    def at_board(self, t_ns: int, event: str, **data: Any) -> Timer:
        """Post ``event`` to this object once the board's clock has passed ``t_ns`` (an
        instant of the board's clock, e.g. an edge's ``board_t_ns`` plus a travel);
        cancel with :meth:`Kernel.cancel`."""
        return self.kernel.at_board(t_ns, self, event, data)

    def after_commands(self, delay_ns: int, event: str, **data: Any) -> Timer:
        """Post ``event`` to this object once the board's clock has passed ``delay_ns``
        after the board carried out what it was commanded so far (a pickup pulse, the
        motor started); cancel with :meth:`Kernel.cancel`."""
        return self.kernel.after_commands(delay_ns, self, event, data)

    def when_commands_reach(self, t_ns: int, event: str, **data: Any) -> Timer:
        """Post ``event`` to this object when a command given on it would be carried out
        at the board's instant ``t_ns`` or later; cancel with :meth:`Kernel.cancel`."""
        return self.kernel.when_commands_reach(t_ns, self, event, data)

    def _published_state_change(self, *args: Any, **kwargs: Any) -> None:
        # A self-transition re-enters the state it left: not a change.
        if self.state != self._published_state:
            self._published_state = self.state
            self.kernel.publish("state", source=self.NAME, state=self.state)


class Kernel:
    """Runs a set of active objects on one board's scheduler; see the module docstring."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.scheduler: Scheduler = board.scheduler
        self.objects: list[ActiveObject] = []
        self._by_priority: list[ActiveObject] = []
        self._dispatch_pending = False
        self._queued = 0
        """Events in all the queues together (hung objects' included)."""
        self._tickers: list[_Ticker] = []
        self._listeners: list[StatusListener] = []
        self.alive = True
        """False once the board has reset: everything this kernel does becomes a no-op,
        because the firmware instance it belonged to no longer exists."""
        self.triggers = 0
        """State-machine triggers fired so far (the benchmark's unit)."""
        self.interval = 0
        """Which of the supervisor's check intervals this is (bumped at each check)."""

    def add(self, ao: ActiveObject) -> None:
        self.objects.append(ao)
        self._by_priority = sorted(self.objects, key=lambda a: -a.PRIORITY)

    def find(self, name: str) -> ActiveObject:
        for ao in self.objects:
            if name == ao.NAME:
                return ao
        raise KeyError(f"no active object {name!r}")

    # -- events ------------------------------------------------------------------

    def post(self, ao: ActiveObject, event: str, data: dict[str, Any]) -> None:
        if not self.alive:
            return
        ao.queue.append((event, data))
        self._queued += 1
        if not self._dispatch_pending:
            self._dispatch_pending = True
            self.scheduler.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        # ``_dispatch_pending`` stays set while the pass runs: an event posted from inside
        # it (an object to another, or to itself) is taken by this same pass, so it needs
        # no pass of its own. It is cleared however the pass ends, an exception included,
        # unless the pass hands its leftover work to the next one.
        budget = _MAX_EVENTS_PER_PASS
        try:
            if not self.alive:
                return
            by_priority = self._by_priority
            # The count saves the scan that would find every queue empty: most passes
            # take one event.
            while self._queued:
                for ao in by_priority:
                    if ao.queue and not ao.hung:
                        break
                else:
                    return  # only hung objects hold events
                if not budget:
                    return  # work left over: yield to interrupts due now (finally, below)
                budget -= 1
                event, data = ao.queue.popleft()
                self._queued -= 1
                ao.processed += 1
                ao.active_in = self.interval
                self.triggers += 1
                trigger = ao.machine.events.get(event)
                if trigger is None:
                    raise ValueError(f"{ao.NAME}: no such event {event!r}")
                if not trigger.transitions.get(ao.state):
                    ao.ignored += 1
                    continue
                # The event's own trigger: what ``ao.trigger(event)`` ends in, minus the
                # lookups on the way.
                trigger.trigger(ao, **data)
        finally:
            if budget or not self._queued:
                self._dispatch_pending = False
            else:
                self.scheduler.call_soon(self._dispatch)

    # -- timers --------------------------------------------------------------------

    def after(self, delay_ns: int, ao: ActiveObject, event: str, data: dict[str, Any]) -> Timer:
        # No bookkeeping per timer: shutdown finds this kernel's timers in the scheduler
        # by their callback (a partial of ``_fire``), once, when it happens.
        return self.scheduler.call_later(delay_ns, partial(self._fire, ao, event, data))

    def at_board(self, t_ns: int, ao: ActiveObject, event: str, data: dict[str, Any]) -> Timer:
        # On the emulated board: the scheduler's call_at, so the very same timer.
        return self.board.call_at_device(t_ns, partial(self._fire, ao, event, data))

    def after_commands(
        self, delay_ns: int, ao: ActiveObject, event: str, data: dict[str, Any]
    ) -> Timer:
        # On the emulated board: the scheduler's call_later, so the very same timer.
        return self.board.call_after_commands(delay_ns, partial(self._fire, ao, event, data))

    def when_commands_reach(
        self, t_ns: int, ao: ActiveObject, event: str, data: dict[str, Any]
    ) -> Timer:
        # On the emulated board: the scheduler's call_at, so the very same timer.
        return self.board.call_when_commands_reach(t_ns, partial(self._fire, ao, event, data))

    def _fire(self, ao: ActiveObject, event: str, data: dict[str, Any]) -> None:
        self.post(ao, event, data)

    def _owns(self, callback: object) -> bool:
        return isinstance(callback, partial) and callback.func == self._fire

    @staticmethod
    def cancel(timer: Timer | None) -> None:
        if timer is not None:
            Scheduler.cancel(timer)

    def every(self, period_ns: int, callback: Callable[[], None]) -> None:
        """Run ``callback`` every ``period_ns`` while this kernel is alive (the main
        loop's housekeeping, such as kicking the watchdog)."""
        _Ticker(self, period_ns, callback)

    def shutdown(self) -> None:
        """The board reset under this firmware: cancel every timer, drop every queue."""
        self.alive = False
        self.scheduler.cancel_where(self._owns)
        for ticker in self._tickers:
            ticker.stop()
        self._tickers.clear()
        for ao in self.objects:
            ao.queue.clear()
        self._queued = 0

    # -- status --------------------------------------------------------------------

    def subscribe(self, listener: StatusListener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: StatusListener) -> None:
        self._listeners.remove(listener)

    def publish(self, kind: str, source: str, **detail: Any) -> None:
        self._publish(kind, source, detail)

    def _publish(self, kind: str, source: str, detail: dict[str, Any],
                 board_t_ns: int | None = None) -> None:
        if not self._listeners or not self.alive:
            return
        event = StatusEvent(self.scheduler.now_ns, kind, source, detail, board_t_ns)
        for listener in self._listeners:
            listener(event)


class _Ticker:
    """One periodic callback of a kernel, rescheduled each period; stopped with the
    kernel."""

    __slots__ = ("_callback", "_kernel", "_period_ns", "_timer")

    def __init__(self, kernel: Kernel, period_ns: int, callback: Callable[[], None]) -> None:
        self._kernel = kernel
        self._period_ns = period_ns
        self._callback = callback
        self._timer: Timer = kernel.scheduler.call_later(period_ns, self.tick)
        kernel._tickers.append(self)

    def tick(self) -> None:
        if not self._kernel.alive:
            return
        self._callback()
        self._timer = self._kernel.scheduler.call_later(self._period_ns, self.tick)

    def stop(self) -> None:
        Scheduler.cancel(self._timer)
