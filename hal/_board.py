"""The Board contract: what a printer engine controller exposes to its firmware.

Every board — the in-process :class:`emulator.EmulatedBoard`, the serial-attached
``SerialBoard`` — fulfils :class:`Board`; the firmware sees nothing else, so it runs
unchanged on either.

Interrupts (lines named by the board file, see ``boards``):

* A digital input's line (its own name: ``cover_open``, ``paper_present``,
  ``feed_sensor``, ``exit_sensor``, ``button_cancel``, ``button_continue``) is raised on
  every edge; :attr:`IrqEvent.value` is the input's new level (``bool``). Sensors read
  ``True`` while a sheet covers them; ``cover_open`` reads ``True`` while the cover is
  open; a button reads ``True`` while pressed.
* An analog channel's window comparator (``toner`` for ``toner_pct``, ``fuser`` for
  ``fuser_c``) is one-shot: :meth:`Board.set_window` arms it; the first reading outside
  ``[low_bound, high_bound]`` raises the line once with a :class:`WindowCrossing` and
  disarms it until the next ``set_window``. Arming it while the reading is already
  outside raises at once. Readings are taken when the physical value changes.
* ``link`` is raised by a board whose connection to the hardware can fail (the serial
  board) with ``value`` a :class:`LinkChange`; the emulated board never raises it.

The board's clock. Every board has its own clock, in integer nanoseconds
(:attr:`Board.device_now_ns`); the instants a board attaches to its interrupts
(:attr:`IrqEvent.board_t_ns`) are of that clock. Judging the paper path by it (a sheet
is late only when the board's clock has passed its deadline) makes the firmware blind to
how long the news takes to reach it. The board's timers run in that clock: a callback
runs once the clock is *known* to have passed the instant, never on the host's guess
alone, so a link that is slow or quiet delays the callback and never fires it early.
Such a timer is a :class:`Timer`: :meth:`Scheduler.cancel` cancels it and
:func:`timer_when_ns` is the board instant it waits for. The other way round,
:meth:`Board.call_when_commands_reach` runs a callback early enough, and no earlier,
for a command it gives to be carried out at a board instant (a pickup pulse one pitch
after the last pickup, by the board's clock). On the emulated board the clock is the
scheduler's, a command is carried out the instant it is given, and these are the
scheduler's own timers.

Capabilities (:attr:`Board.capabilities`) name what a board offers or is beyond the
contract:

* ``"faults"``: :attr:`Board.faults` injects faults.
* ``"regulator"``: :meth:`Board.regulate` holds the fuser in a band by the board's own
  regulator (a comparator with hysteresis switching the heater, as an engine controller's
  does), so the band is kept in the board's time however slow the news of it is. On a
  board without it the firmware switches the heater on each window crossing.
* ``"remote"``: commands reach the board after a delay (a link), so a command given on
  news of the board (an edge) may be carried out well after the moment it answers: the
  sheet has moved on meanwhile. Firmware asks ahead on such a board (the imaging of a
  page right after its pickup pulse rather than at the sheet's feed edge).

Outputs are set and forgotten; a board applies them in the order given. Imaging is an
asynchronous request (:meth:`Board.submit`) completed when the sheet under the drum has
been imaged; an observer (a tracer, say) sees every request through
:meth:`Board.add_imaging_listener`. A watchdog not kicked within the board's timeout
resets the board: outputs off, ISRs detached, requests failed, then the reset handler
runs (the firmware boots again and sees :attr:`Board.reset_cause`).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from boards import BoardConfig
from hal._clock import Callback
from hal._faults import FaultInjector
from hal._io import IoHandle
from hal._irq import InterruptController
from hal._scheduler import Scheduler, Timer


class DigitalInput(enum.StrEnum):
    PAPER_PRESENT = "paper_present"
    FEED_SENSOR = "feed_sensor"
    EXIT_SENSOR = "exit_sensor"
    COVER_OPEN = "cover_open"
    BUTTON_CANCEL = "button_cancel"
    BUTTON_CONTINUE = "button_continue"


class AnalogChannel(enum.StrEnum):
    TONER_PCT = "toner_pct"
    FUSER_C = "fuser_c"


ANALOG_IRQ_LINE: dict[AnalogChannel, str] = {
    AnalogChannel.TONER_PCT: "toner",
    AnalogChannel.FUSER_C: "fuser",
}
"""The interrupt line of each analog channel's window comparator."""


class Output(enum.StrEnum):
    HEATER = "heater"
    MOTOR = "motor"
    LASER = "laser"
    LED_READY = "led_ready"
    LED_ATTENTION = "led_attention"
    LED_TONER = "led_toner"


class ResetCause(enum.StrEnum):
    POWER_ON = "power_on"
    WATCHDOG = "watchdog"
    SOFTWARE = "software"
    DEVICE_RESET = "device_reset"
    """The serial-attached device restarted on its own (a new boot nonce)."""


class Crossing(enum.StrEnum):
    BELOW = "below"
    ABOVE = "above"


class WindowCrossing(NamedTuple):
    """What a window comparator's interrupt carries. (A named tuple: one is made per
    crossing, and a frozen dataclass costs twice as much to build.)"""

    channel: AnalogChannel
    reading: float
    crossing: Crossing


@dataclass(frozen=True, slots=True)
class LinkChange:
    """What the ``link`` interrupt carries: the link went up or down."""

    up: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ImagePage:
    """An imaging request: one page of one job, at a toner coverage."""

    job: int
    page: int
    coverage_pct: float


DISPLAY_COLUMNS = 16
DISPLAY_ROWS = 2

ResetHandler = Callable[[ResetCause], None]

ImagingListener = Callable[[ImagePage, IoHandle], None]
"""``listener(page, handle)``: told of each imaging request as :meth:`Board.submit`
returns its handle (follow the request through ``handle.on_event`` / ``on_done``)."""


@runtime_checkable
class Board(Protocol):
    """The contract every board fulfils; see the module docstring."""

    @property
    def config(self) -> BoardConfig: ...

    @property
    def scheduler(self) -> Scheduler: ...

    @property
    def irq(self) -> InterruptController: ...

    @property
    def capabilities(self) -> frozenset[str]:
        """What the board offers or is beyond the contract (``"faults"``, ``"remote"``:
        see the module docstring)."""
        ...

    @property
    def faults(self) -> FaultInjector | None:
        """Fault injection, on boards that can (``"faults"`` in capabilities)."""
        ...

    @property
    def reset_cause(self) -> ResetCause:
        """Why the board last came out of reset."""
        ...

    @property
    def device_now_ns(self) -> int:
        """The newest instant of the board's own clock known here (from the board's
        latest word). Never goes back, except when the board restarts its clock (a
        device reboot: a board reset)."""
        ...

    def call_at_device(self, t_ns: int, callback: Callback) -> Timer:
        """Run ``callback()`` once the board's clock is known to have passed ``t_ns``
        (at once, on the scheduler, if it has). Cancel with :meth:`Scheduler.cancel`;
        :func:`timer_when_ns` of it is ``t_ns``. Timers due together run in the order
        they were made."""
        ...

    def call_after_commands(self, delay_ns: int, callback: Callback) -> Timer:
        """Run ``callback()`` once the board's clock is known to have passed ``delay_ns``
        after the instant the board carried out every command given so far (the
        pickup pulse, the motor start just commanded). Where that instant can only be
        bounded, the bound is the later one: the callback never runs early. Cancel
        with :meth:`Scheduler.cancel`; :func:`timer_when_ns` of it is the board instant
        once known (until then, later than any instant)."""
        ...

    def call_when_commands_reach(self, t_ns: int, callback: Callback) -> Timer:
        """Run ``callback()`` once a command given then would be carried out by the
        board at its instant ``t_ns`` or later (at once, on the scheduler, if one given
        now would). Over a link, the time a command takes to reach the board is taken as
        the least it was measured to take lately (no command has been quicker). Cancel
        with :meth:`Scheduler.cancel`."""
        ...

    def read_input(self, pin: DigitalInput) -> bool: ...

    def read_analog(self, channel: AnalogChannel) -> float:
        """A reading of ``channel`` now (°C or %, noise included)."""
        ...

    def set_window(self, channel: AnalogChannel, low_bound: float, high_bound: float) -> None:
        """Arm ``channel``'s one-shot window comparator."""
        ...

    def set_output(self, output: Output, on: bool) -> None:
        """Drive ``output``; on an output a regulator holds, this ends the regulation
        first (the firmware takes the output back)."""
        ...

    def output(self, output: Output) -> bool:
        """The output's last commanded state (while a regulator holds it, the state the
        board last made known: exact on the emulated board)."""
        ...

    def regulate(
        self, output: Output, channel: AnalogChannel, low_bound: float, high_bound: float
    ) -> None:
        """Have the board switch ``output`` itself from ``channel`` (``"regulator"`` in
        capabilities): off when the reading reaches ``high_bound``, on when it falls to
        ``low_bound``, unchanged in between; the rule applies at once to the reading now.
        It holds until :meth:`set_output` of that output, a reset, or (over a link) the
        device's safe state. It is independent of the channel's window comparator. A
        board regulates only the pairs its hardware has (the boards here: ``heater`` by
        ``fuser_c``); ValueError for another pair, an empty band, or a board without it."""
        ...

    def pulse_pickup(self) -> None:
        """Energise the pickup solenoid for the board's pulse: one sheet is taken if
        the tray has one and the pickup does not slip."""
        ...

    def show(self, row0: str, row1: str) -> None:
        """Write the 2x16 panel display (longer text is cut at 16 columns)."""
        ...

    def submit(self, page: ImagePage) -> IoHandle:
        """Image ``page`` on the next sheet to reach the drum. Returns at once; the
        handle posts ``"imaging_started"`` and completes when the sheet's trailing edge
        leaves the drum, or fails (laser off, motor stopped for good, board reset)."""
        ...

    def add_imaging_listener(self, listener: ImagingListener) -> None:
        """Call ``listener(page, handle)`` for every :meth:`submit` from now on, after the
        board has taken the request and before ``submit`` returns. Listeners are told in
        the order they were added; one added twice is told twice."""
        ...

    def remove_imaging_listener(self, listener: ImagingListener) -> None:
        """Stop telling ``listener`` (once, if it was added twice). ValueError if it
        was never added."""
        ...

    def kick_watchdog(self) -> None: ...

    def set_reset_handler(self, handler: ResetHandler) -> None:
        """``handler(cause)`` runs after every reset of the board (the reboot)."""
        ...


class BoardBase(abc.ABC):
    """What every board shares: :meth:`submit` and its imaging listeners.

    A board subclasses this and takes the request in :meth:`_submit`; ``submit`` then
    tells the listeners, so no board can forget to. Nothing here needs an ``__init__``
    (the listeners start as the class's empty tuple), so a subclass has none to chain.
    """

    _imaging_listeners: tuple[ImagingListener, ...] = ()
    """Replaced, never changed in place: a listener removed while the listeners are
    being told does not disturb the telling."""

    def submit(self, page: ImagePage) -> IoHandle:
        """See :meth:`Board.submit`."""
        handle = self._submit(page)
        for listener in self._imaging_listeners:
            listener(page, handle)
        return handle

    @abc.abstractmethod
    def _submit(self, page: ImagePage) -> IoHandle:
        """Take the imaging request (the board's own part of :meth:`Board.submit`)."""

    def add_imaging_listener(self, listener: ImagingListener) -> None:
        """See :meth:`Board.add_imaging_listener`."""
        self._imaging_listeners = (*self._imaging_listeners, listener)

    def remove_imaging_listener(self, listener: ImagingListener) -> None:
        """See :meth:`Board.remove_imaging_listener`."""
        listeners = list(self._imaging_listeners)
        listeners.remove(listener)
        self._imaging_listeners = tuple(listeners)
