"""The hardware abstraction layer: time, interrupts, asynchronous I/O and the Board
contract. ``hal`` knows nothing of the printer's logic or of physics.

Layers meet here:

* :class:`Scheduler` — the one event loop of a process, on a :class:`Clock` (virtual,
  wall, or :class:`SelectorClock`: wall time that also watches file descriptors).
* :class:`InterruptController` — how a board reaches the firmware (ISRs are upcalls).
* :class:`IoHandle` — what a board hands back for work that takes time.
* :class:`Board` — the contract every board fulfils (emulated or serial-attached).
"""

from boards import BoardConfig
from hal._board import (
    ANALOG_IRQ_LINE,
    DISPLAY_COLUMNS,
    DISPLAY_ROWS,
    AnalogChannel,
    Board,
    BoardBase,
    Crossing,
    DigitalInput,
    ImagePage,
    ImagingListener,
    LinkChange,
    Output,
    ResetCause,
    ResetHandler,
    WindowCrossing,
)
from hal._clock import Clock, VirtualClock, WallClock
from hal._faults import Button, FaultInjector, JamPoint
from hal._io import IoError, IoEvent, IoHandle, IoState
from hal._irq import InterruptController, IrqEvent, IrqLineSpec, Isr, UnknownIrqLine
from hal._scheduler import (
    PRIORITY_IRQ,
    PRIORITY_LATE,
    PRIORITY_NORMAL,
    Scheduler,
    Timer,
    timer_cancelled,
    timer_when_ns,
)
from hal._selector_clock import SelectorClock

__all__ = [
    "ANALOG_IRQ_LINE",
    "DISPLAY_COLUMNS",
    "DISPLAY_ROWS",
    "PRIORITY_IRQ",
    "PRIORITY_LATE",
    "PRIORITY_NORMAL",
    "AnalogChannel",
    "Board",
    "BoardBase",
    "BoardConfig",
    "Button",
    "Clock",
    "Crossing",
    "DigitalInput",
    "FaultInjector",
    "ImagePage",
    "ImagingListener",
    "InterruptController",
    "IoError",
    "IoEvent",
    "IoHandle",
    "IoState",
    "IrqEvent",
    "IrqLineSpec",
    "Isr",
    "JamPoint",
    "LinkChange",
    "Output",
    "ResetCause",
    "ResetHandler",
    "Scheduler",
    "SelectorClock",
    "Timer",
    "UnknownIrqLine",
    "VirtualClock",
    "WallClock",
    "WindowCrossing",
    "irq_lines_of",
    "timer_cancelled",
    "timer_when_ns",
]


def irq_lines_of(config: BoardConfig) -> list[IrqLineSpec]:
    """The interrupt lines a board file declares, ready for an InterruptController."""
    return [IrqLineSpec(c.line, name, c.priority) for name, c in config.irq.items()]
