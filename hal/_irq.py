"""The interrupt controller: how the world reaches the firmware.

A board raises a numbered line; the controller latches it pending and, at the current
instant and before any ordinary event of that instant (:data:`PRIORITY_IRQ`), runs the
registered ISR — an upcall into the firmware.

Contract
--------
* Lines are numbered and named by the board file, each with a priority (higher runs
  first) and an enable bit.
* Every raise is delivered once, in order, with what the board attached to it
  (:class:`IrqEvent`): the pending latch is a FIFO per line, so a line raised while its
  own ISR runs is delivered again afterwards and an edge is never merged into another.
  (A real controller latches one bit; its firmware reads a capture FIFO. Keeping the FIFO
  here means no interrupt is lost on any board.)
* ``with irq.masked():`` defers delivery until the outermost block exits; it never
  drops. A disabled line keeps latching and is delivered when enabled again.
* A pending line with no ISR attached is counted in :attr:`spurious` and dropped: a
  firmware bug to report, not a crash.
* Listeners (tracing) see every raise and every ISR run, with the instant.
* Every raise carries two instants: ``t_ns``, the scheduler's when it was raised (when
  the host learnt of it: traces and logs), and ``board_t_ns``, the board's own clock's
  when it happened (:attr:`hal.Board.device_now_ns`'s clock: what the firmware judges
  the paper path by). On a board whose clock is the scheduler's they are equal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from hal._scheduler import PRIORITY_IRQ, Scheduler


@dataclass(frozen=True, slots=True)
class IrqLineSpec:
    """One line as the board file declares it."""

    number: int
    name: str
    priority: int


class IrqEvent(NamedTuple):
    """One raise of a line: what an ISR receives. ``t_ns`` is the scheduler's instant
    of the raise, ``board_t_ns`` the board's clock's instant of what raised it (a serial
    device's timestamp of the edge); ``value`` is what the board attached: an edge's new
    level, a comparator crossing, ...

    Immutable; a named tuple rather than a frozen dataclass because one is made per
    interrupt and a frozen dataclass costs twice as much to build.
    """

    line: int
    name: str
    t_ns: int
    board_t_ns: int
    value: object = None


Isr = Callable[[IrqEvent], None]
IrqListener = Callable[[str, IrqEvent], None]
"""Called with ``("raise", event)`` when a line is raised and ``("isr", event)`` just
before its ISR runs (``("spurious", event)`` when none is attached)."""


class UnknownIrqLine(KeyError):
    """A line number or name the board file does not declare (a firmware bug)."""


@dataclass(slots=True)
class _Line:
    spec: IrqLineSpec
    isr: Isr | None = None
    enabled: bool = True
    pending: deque[IrqEvent] = field(default_factory=deque)
    delivered: int = 0


class InterruptController:
    """See the module docstring for the contract."""

    def __init__(self, scheduler: Scheduler, lines: Iterable[IrqLineSpec]) -> None:
        self._scheduler = scheduler
        self._lines: list[_Line] = []
        self._by_key: dict[int | str, _Line] = {}
        """Every line by its number and by its name."""
        for spec in lines:
            if spec.number in self._by_key or spec.name in self._by_key:
                raise ValueError(f"duplicate interrupt line {spec.number} / {spec.name!r}")
            ln = _Line(spec)
            self._lines.append(ln)
            self._by_key[spec.number] = self._by_key[spec.name] = ln
        # Dispatch order: priority high first, then line number low first (stable).
        self._order = sorted(self._lines, key=lambda ln: (-ln.spec.priority, ln.spec.number))
        self._mask_depth = 0
        self._mask_epoch = 0
        """Bumped by reset(): a masked() block opened before a reset must not unmask."""
        self._dispatch_scheduled = False
        self._pending_count = 0
        self._listeners: list[IrqListener] = []
        self.spurious = 0
        """Raises delivered to a line with no ISR attached."""

    # -- configuration (firmware side) ------------------------------------------

    def line(self, line: int | str) -> IrqLineSpec:
        return self._get(line).spec

    @property
    def lines(self) -> list[IrqLineSpec]:
        return [ln.spec for ln in self._lines]

    def attach(self, line: int | str, isr: Isr) -> None:
        """Register ``isr`` for ``line``, replacing any ISR already there."""
        self._get(line).isr = isr

    def detach(self, line: int | str) -> None:
        self._get(line).isr = None

    def enable(self, line: int | str) -> None:
        ln = self._get(line)
        ln.enabled = True
        if ln.pending:
            self._schedule_dispatch()

    def disable(self, line: int | str) -> None:
        self._get(line).enabled = False

    def is_enabled(self, line: int | str) -> bool:
        return self._get(line).enabled

    def pending(self, line: int | str) -> int:
        """Raises latched on ``line`` and not yet delivered."""
        return len(self._get(line).pending)

    def delivered(self, line: int | str) -> int:
        return self._get(line).delivered

    @contextmanager
    def masked(self) -> Iterator[None]:
        """Defer every ISR until the outermost ``masked()`` block exits. Nests."""
        self._mask_depth += 1
        epoch = self._mask_epoch
        try:
            yield
        finally:
            if self._mask_epoch == epoch:
                self._mask_depth -= 1
            if self._mask_depth == 0 and self._pending_count:
                self._schedule_dispatch()

    def reset(self) -> None:
        """Back to the state after power-on: ISRs detached, lines enabled, nothing
        pending (what a board reset does; listeners stay)."""
        for ln in self._lines:
            ln.isr = None
            ln.enabled = True
            ln.pending.clear()
        self._pending_count = 0
        self._mask_depth = 0
        self._mask_epoch += 1

    def add_listener(self, listener: IrqListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: IrqListener) -> None:
        self._listeners.remove(listener)

    # -- raising (board side) ---------------------------------------------------

    def raise_line(
        self, line: int | str, value: object = None, board_t_ns: int | None = None
    ) -> None:
        """Latch a raise of ``line`` with ``value`` and arrange its delivery.
        ``board_t_ns`` is the board's clock's instant of it (``None``: the board's clock
        is the scheduler's, and it is now)."""
        ln = self._get(line)
        now = self._scheduler.now_ns
        event = IrqEvent(ln.spec.number, ln.spec.name, now,
                         now if board_t_ns is None else board_t_ns, value)
        ln.pending.append(event)
        self._pending_count += 1
        for listener in self._listeners:
            listener("raise", event)
        self._schedule_dispatch()

    # -- delivery ---------------------------------------------------------------

    def _get(self, line: int | str) -> _Line:
        try:
            return self._by_key[line]
        except KeyError:
            raise UnknownIrqLine(f"no interrupt line {line!r} on this board") from None

    def _schedule_dispatch(self) -> None:
        if not self._dispatch_scheduled and self._mask_depth == 0:
            self._dispatch_scheduled = True
            self._scheduler.call_later(0, self._dispatch, PRIORITY_IRQ)

    def _next_deliverable(self) -> _Line | None:
        for ln in self._order:
            if ln.pending and ln.enabled:
                return ln
        return None

    def _dispatch(self) -> None:
        """Deliver pending raises, highest priority first, one at a time, until none
        is deliverable. An ISR that raises a higher line sees it delivered next."""
        self._dispatch_scheduled = False
        while self._mask_depth == 0 and self._pending_count:
            ln = self._next_deliverable()
            if ln is None:
                return
            event = ln.pending.popleft()
            self._pending_count -= 1
            isr = ln.isr
            if isr is None:
                self.spurious += 1
                for listener in self._listeners:
                    listener("spurious", event)
                continue
            ln.delivered += 1
            for listener in self._listeners:
                listener("isr", event)
            try:
                isr(event)
            except BaseException:
                # The bug propagates; the raises still pending must not wait for an
                # unrelated raise to be delivered.
                if self._pending_count:
                    self._schedule_dispatch()
                raise
