"""What the interrupt controller hands out: the event an ISR receives, the types of an
ISR and of a listener, and the error for a line the board does not declare.

Apart from :mod:`hal._irq` so that the controller can be compiled (mypyc builds neither
named tuples with string annotations nor subclasses of ``KeyError``) while these stay
ordinary Python classes, the same whether the controller is compiled or not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class IrqEvent(NamedTuple):
    """One raise of a line: what an ISR receives. ``value`` is what the board attached:
    an edge's new level, a comparator crossing, ...

    Immutable; a named tuple rather than a frozen dataclass because one is made per
    interrupt and a frozen dataclass costs twice as much to build.
    """

    line: int
    name: str
    t_ns: int
    value: object = None


Isr = Callable[[IrqEvent], None]
IrqListener = Callable[[str, IrqEvent], None]
"""Called with ``("raise", event)`` when a line is raised and ``("isr", event)`` just
before its ISR runs (``("spurious", event)`` when none is attached)."""


class UnknownIrqLine(KeyError):
    """A line number or name the board file does not declare (a firmware bug)."""
