"""The emulated board: the physics models wired to the HAL, in the scheduler's time.

:class:`EmulatedBoard` fulfils :class:`hal.Board` (see ``hal/_board.py`` for the
contract) and :class:`hal.FaultInjector` (as ``board.faults``, which is the board
itself; ``"faults"`` is in ``board.capabilities``). Every figure comes from the board
file; randomness comes from one seed, one stream per model (:func:`model_rng`).

Contract beyond ``hal.Board``
-----------------------------
* Imaging. :meth:`submit` (:class:`hal.BoardBase`'s: it tells the imaging listeners)
  binds the request to the oldest sheet in the path that is free for it — no request
  bound, not imaged, not spoiled (by a failed attempt or a cancelled request), its
  trailing edge not yet off the drum — or, when none is, queues it for the next sheets
  picked, in order. The handle posts ``IoEvent(t, "imaging_started")`` when the
  sheet's leading edge reaches the drum (at once if the sheet is already under the
  drum), and completes with the :class:`hal.ImagePage` when the trailing edge leaves
  the drum; the page's toner is taken just before the completion upcall. It fails with
  an :class:`hal.IoError` when the laser is off as imaging starts (the laser is sampled
  then), when its sheet is pulled out before it has been imaged, and when the board
  resets. ``cancel()`` unbinds
  it, and its sheet is withdrawn: it passes blank and takes no later request (whether
  its imaging had started or not), so a request made after the cancel never lands on a
  sheet already under way, perhaps halfway past the drum; a queued request waits for
  the next free sheet.
* Pickup. :meth:`pulse_pickup` takes the top sheet at once (its leading edge at 0 mm)
  unless a misfeed is armed (each :meth:`misfeed` eats one pulse), the tray is empty or
  the previous sheet's trailing edge has not yet cleared the roller (the sheet would
  have nowhere to go: the pickup slips).
* Watchdog (:class:`emulator.physics.Watchdog`): idle until the first kick after boot. On
  expiry the board resets: pending imaging requests fail with ``IoError("board
  reset")`` first (so nothing a dying firmware commands from their upcalls survives
  the reset), then every output goes off (the motor stops; sheets stay where they
  are), both window comparators are disarmed, ``irq.reset()``, ``reset_cause`` becomes
  ``WATCHDOG`` and the reset handler runs. Physical state (sheets, tray, toner,
  temperature, cover, faults) is untouched.
* The cover. Opening it (:meth:`set_cover`) raises ``cover_open`` and lets the user
  pull every sheet out of the path (``sheets_removed``). The board does not cut
  outputs when the cover opens: that is the firmware's ISR's job.
* The board's clock is the scheduler's: :attr:`device_now_ns` is ``scheduler.now_ns``,
  and its timers are the scheduler's own (a command is carried out the instant it is
  given, so :meth:`call_after_commands` is ``call_later`` and
  :meth:`call_when_commands_reach` is ``call_at``). It is not ``"remote"``.
* The regulator: on a board file with ``[fuser] regulation = "board"``, ``"regulator"``
  is in ``capabilities`` and :meth:`regulate` hands the heater to the fuser model's
  regulator (exact, in closed form); its switches show in :meth:`output`, ``outputs``
  and the probes as the commanded ones do.
* Observation (for the CLI, tests and the tracer; not ``hal.Board``): the properties
  below, and :meth:`add_probe`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import cast

from boards import BoardConfig
from emulator.physics import (
    Fuser,
    InputTray,
    Panel,
    PaperPath,
    Sheet,
    TonerCartridge,
    Watchdog,
    model_rng,
)
from hal import (
    AnalogChannel,
    BoardBase,
    Button,
    DigitalInput,
    FaultInjector,
    ImagePage,
    InterruptController,
    IoError,
    IoEvent,
    IoHandle,
    JamPoint,
    Output,
    ResetCause,
    ResetHandler,
    Scheduler,
    Timer,
    irq_lines_of,
)

Probe = Callable[[int, str, str, object], None]
"""``probe(t_ns, scope, signal, value)``: one change of one signal."""

Delivery = tuple[int, int, int] | None
"""``(t_ns, job, page)`` for a sheet delivered with an image; ``None`` for a blank one."""


class EmulatedBoard(BoardBase):
    """A printer engine board made of physics models; see the module docstring."""

    def __init__(
        self, config: BoardConfig, scheduler: Scheduler | None = None, seed: int = 0
    ) -> None:
        self._config = config
        self._scheduler = scheduler if scheduler is not None else Scheduler()
        self._irq = InterruptController(self._scheduler, irq_lines_of(config))
        self.seed = seed
        sched, irq = self._scheduler, self._irq

        self.tray = InputTray(config.tray, irq)
        self.panel = Panel(sched, irq)
        self.fuser = Fuser(config.fuser, sched, irq, model_rng(seed, "fuser"))
        self.toner = TonerCartridge(config.toner, irq, model_rng(seed, "toner"))
        self.paper_path = PaperPath(config.engine, config.paper_path, sched, irq)
        self.watchdog = Watchdog(
            sched, round(config.engine.watchdog_timeout_ms * 1_000_000), self._on_watchdog
        )
        path = self.paper_path
        path.on_inserted = self._on_sheet_inserted
        path.on_drum_lead = self._on_drum_lead
        path.on_drum_trail = self._on_drum_trail
        path.on_fuser_lead = self._on_fuser_lead
        path.on_delivered = self._on_delivered
        path.on_pulled = self._on_pulled

        self._outputs: dict[Output, bool] = dict.fromkeys(Output, False)
        self.fuser.on_regulated = self._heater_regulated
        self._capabilities = frozenset(
            {"faults", "regulator"} if config.fuser.regulation == "board" else {"faults"}
        )
        self._apply_output: dict[Output, Callable[[bool], None]] = {
            Output.HEATER: self.fuser.set_heater,
            Output.MOTOR: path.set_motor,
            Output.LASER: _nothing,
            Output.LED_READY: lambda on: self.panel.set_led(Output.LED_READY, on),
            Output.LED_ATTENTION: lambda on: self.panel.set_led(Output.LED_ATTENTION, on),
            Output.LED_TONER: lambda on: self.panel.set_led(Output.LED_TONER, on),
        }
        self._inputs: dict[DigitalInput, Callable[[], bool]] = {
            DigitalInput.PAPER_PRESENT: lambda: self.tray.count > 0,
            DigitalInput.FEED_SENSOR: lambda: path.feed_covered,
            DigitalInput.EXIT_SENSOR: lambda: path.exit_covered,
            DigitalInput.COVER_OPEN: lambda: self.panel.cover_open,
            DigitalInput.BUTTON_CANCEL: lambda: self.panel.is_pressed(Button.CANCEL),
            DigitalInput.BUTTON_CONTINUE: lambda: self.panel.is_pressed(Button.CONTINUE),
        }
        self._queued: deque[IoHandle] = deque()
        """Imaging requests waiting for a sheet (none while a free sheet is in the path)."""
        self._misfeeds = 0
        self._reset_cause = ResetCause.POWER_ON
        self._reset_handler: ResetHandler | None = None
        self._probes: list[Probe] = []
        self.delivered: list[Delivery] = []
        """Every sheet that reached the output tray, in order."""
        self.resets = 0

    # -- hal.Board: identity -------------------------------------------------------

    @property
    def config(self) -> BoardConfig:
        return self._config

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    @property
    def irq(self) -> InterruptController:
        return self._irq

    @property
    def capabilities(self) -> frozenset[str]:
        return self._capabilities

    @property
    def faults(self) -> FaultInjector:
        return self

    @property
    def reset_cause(self) -> ResetCause:
        return self._reset_cause

    # -- hal.Board: the board's clock, which is the scheduler's -------------------------

    @property
    def device_now_ns(self) -> int:
        return self._scheduler.now_ns

    def call_at_device(self, t_ns: int, callback: Callable[[], object]) -> Timer:
        return self._scheduler.call_at(t_ns, callback)

    def call_after_commands(self, delay_ns: int, callback: Callable[[], object]) -> Timer:
        return self._scheduler.call_later(delay_ns, callback)

    def call_when_commands_reach(self, t_ns: int, callback: Callable[[], object]) -> Timer:
        return self._scheduler.call_at(t_ns, callback)

    # -- hal.Board: pins -----------------------------------------------------------

    def read_input(self, pin: DigitalInput) -> bool:
        return self._inputs[pin]()

    def read_analog(self, channel: AnalogChannel) -> float:
        if channel == AnalogChannel.FUSER_C:
            return self.fuser.read()
        if channel == AnalogChannel.TONER_PCT:
            return self.toner.read()
        raise ValueError(f"no analog channel {channel!r}")

    def set_window(self, channel: AnalogChannel, low_bound: float, high_bound: float) -> None:
        if not low_bound <= high_bound:
            raise ValueError(f"window [{low_bound}, {high_bound}] is empty")
        if channel == AnalogChannel.FUSER_C:
            self.fuser.set_window(low_bound, high_bound)
        elif channel == AnalogChannel.TONER_PCT:
            self.toner.set_window(low_bound, high_bound)
        else:
            raise ValueError(f"no analog channel {channel!r}")

    def set_output(self, output: Output, on: bool) -> None:
        if output is Output.HEATER and self.fuser.regulated:
            self.fuser.release()  # the firmware takes the heater back
        if self._outputs[output] == on:
            return
        self._outputs[output] = on
        if self._probes:
            self._emit("board", str(output), on)
        self._apply_output[output](on)

    def output(self, output: Output) -> bool:
        return self._outputs[output]

    def regulate(
        self, output: Output, channel: AnalogChannel, low_bound: float, high_bound: float
    ) -> None:
        if "regulator" not in self._capabilities:
            raise ValueError(f"board {self.config.board.name!r} has no regulator")
        if (output, channel) != (Output.HEATER, AnalogChannel.FUSER_C):
            raise ValueError(f"this board regulates only heater by fuser_c, not {output} "
                             f"by {channel}")
        if not low_bound <= high_bound:
            raise ValueError(f"band [{low_bound}, {high_bound}] is empty")
        self.fuser.regulate(low_bound, high_bound)

    def _heater_regulated(self, on: bool) -> None:
        self._outputs[Output.HEATER] = on
        if self._probes:
            self._emit("board", str(Output.HEATER), on)

    def pulse_pickup(self) -> None:
        if self._misfeeds:
            self._misfeeds -= 1
            return
        if self.paper_path.throat_clear() and self.tray.take():
            self.paper_path.insert_sheet()

    def show(self, row0: str, row1: str) -> None:
        self.panel.show(row0, row1)

    # -- hal.Board: imaging --------------------------------------------------------

    def _submit(self, page: ImagePage) -> IoHandle:
        handle = IoHandle(page, self._cancel_imaging)
        sheet = None if self._queued else self._free_sheet()
        if sheet is None:
            self._queued.append(handle)
        else:
            self._bind(sheet, handle)
        return handle

    def _free_sheet(self) -> Sheet | None:
        for sheet in self.paper_path.sheets:
            if (
                sheet.handle is None
                and sheet.image is None
                and not sheet.spoiled
                and not sheet.drum_trail_passed
            ):
                return sheet
        return None

    def _bind(self, sheet: Sheet, handle: IoHandle) -> None:
        sheet.handle = handle
        if sheet.drum_lead_passed:
            self._start_imaging(sheet)

    def _start_imaging(self, sheet: Sheet) -> None:
        handle: IoHandle = sheet.handle
        if not self._outputs[Output.LASER]:
            sheet.handle = None
            sheet.spoiled = True
            handle.fail(IoError("laser off when imaging started"))
            return
        sheet.imaging = True
        handle.post(IoEvent(self._scheduler.now_ns, "imaging_started"))

    def _cancel_imaging(self, handle: IoHandle) -> None:
        if handle in self._queued:
            self._queued.remove(handle)
            return
        for sheet in self.paper_path.sheets:
            if sheet.handle is handle:
                sheet.handle = None
                sheet.imaging = False
                sheet.spoiled = True  # withdrawn: it passes blank
                return

    def _on_sheet_inserted(self, sheet: Sheet) -> None:
        if self._queued:
            self._bind(sheet, self._queued.popleft())

    def _on_drum_lead(self, sheet: Sheet) -> None:
        if sheet.handle is not None:
            self._start_imaging(sheet)

    def _on_drum_trail(self, sheet: Sheet) -> None:
        handle: IoHandle | None = sheet.handle
        if handle is None or not sheet.imaging:
            return
        sheet.handle = None
        sheet.imaging = False
        page = cast(ImagePage, handle.request)
        sheet.image = page
        self.toner.consume(page.coverage_pct)
        handle.complete(page)

    def _on_fuser_lead(self, sheet: Sheet) -> None:
        self.fuser.draw_sheet()

    def _on_delivered(self, sheet: Sheet) -> None:
        page: ImagePage | None = sheet.image
        self.delivered.append(
            None if page is None else (self._scheduler.now_ns, page.job, page.page)
        )

    def _on_pulled(self, sheets: list[Sheet]) -> None:
        for sheet in sheets:
            handle: IoHandle | None = sheet.handle
            if handle is None:
                continue
            sheet.handle = None
            when = "while it was being imaged" if sheet.imaging else "before it was imaged"
            sheet.imaging = False
            handle.fail(IoError(f"sheet {sheet.number} pulled out of the path {when}"))

    # -- hal.Board: watchdog and reset ---------------------------------------------

    def kick_watchdog(self) -> None:
        self.watchdog.kick()

    def set_reset_handler(self, handler: ResetHandler) -> None:
        self._reset_handler = handler

    def _on_watchdog(self) -> None:
        self._reset(ResetCause.WATCHDOG)

    def reset(self, cause: ResetCause = ResetCause.SOFTWARE) -> None:
        """Reset the board as its watchdog does (requests failed, outputs off,
        comparators disarmed, ``irq.reset()``), then run the reset handler (the
        firmware's reboot) with ``cause``. The world — sheets, tray, toner — stays."""
        self._reset(cause)

    def power_cycle(self) -> None:
        """Power off and on: every model back to the board file's power-on state (tray
        loaded, toner as loaded, fuser at ambient, no sheet in the path, no fault armed,
        cover closed, buttons up, display blank, counters at zero), then a reset with
        cause ``POWER_ON``."""
        config = self.config
        for output in Output:
            self.set_output(output, False)  # the motor stops before the sheets come out
        self.set_heater_failed(False)
        path = self.paper_path
        path.pull_all()
        path.clear_faults()
        path.inserted = path.delivered = path.removed = 0
        self.delivered.clear()
        self._misfeeds = 0
        self.fuser.set_temp(config.fuser.ambient_c)
        self.toner.set_level(config.toner.loaded_pct)
        self.tray.set_count(config.tray.loaded_sheets)
        self.panel.set_cover(False)
        self.panel.release_buttons()
        self.panel.show("", "")
        self._reset(ResetCause.POWER_ON)

    def _reset(self, cause: ResetCause) -> None:
        handles = list(self._queued)
        self._queued.clear()
        for sheet in self.paper_path.sheets:
            if sheet.handle is not None:
                handles.append(sheet.handle)
                sheet.handle = None
                if sheet.imaging:
                    sheet.imaging = False
                    sheet.spoiled = True
        for handle in handles:
            handle.fail(IoError("board reset"))
        for output in Output:
            self.set_output(output, False)
        self.fuser.disarm()
        self.toner.disarm()
        self.watchdog.stop()
        self._irq.reset()
        self._reset_cause = cause
        self.resets += 1
        if self._probes:
            self._emit("board", "reset", str(cause))
        if self._reset_handler is not None:
            self._reset_handler(cause)

    # -- hal.FaultInjector ---------------------------------------------------------

    def set_toner_pct(self, level_pct: float) -> None:
        if not 0.0 <= level_pct <= 100.0:
            raise ValueError(f"a toner level is in [0, 100] %, got {level_pct}")
        self._fault(f"set_toner_pct:{level_pct}")
        self.toner.set_level(level_pct)

    def replace_toner(self) -> None:
        self._fault("replace_toner")
        opened = self._open_cover()
        self.toner.replace()
        if opened:
            self.panel.set_cover(False)

    def set_tray(self, sheets: int) -> None:
        self._fault(f"set_tray:{sheets}")
        self.tray.set_count(sheets)

    def jam(self, point: JamPoint) -> None:
        point = JamPoint(point)
        self._fault(f"jam:{point}")
        self.paper_path.jam(point)

    def misfeed(self) -> None:
        self._fault("misfeed")
        self._misfeeds += 1

    def set_cover(self, is_open: bool) -> None:
        self._fault(f"set_cover:{'open' if is_open else 'closed'}")
        if is_open:
            self._open_cover()
        else:
            self.panel.set_cover(False)

    def press(self, button: Button) -> None:
        button = Button(button)
        self._fault(f"press:{button}")
        self.panel.press(button)

    def set_heater_failed(self, failed: bool) -> None:
        self._fault(f"set_heater_failed:{failed}")
        self.fuser.set_failed(failed)

    def _open_cover(self) -> bool:
        """Open the cover and pull the sheets; whether it was closed before."""
        if not self.panel.set_cover(True):
            return False
        self.paper_path.pull_all()
        return True

    def _fault(self, what: str) -> None:
        if self._probes:
            self._emit("board", "fault", what)

    # -- observation ---------------------------------------------------------------

    @property
    def tray_sheets(self) -> int:
        return self.tray.count

    @property
    def toner_level_pct(self) -> float:
        """The true level (no sensor noise)."""
        return self.toner.level_pct

    @property
    def fuser_temp_c(self) -> float:
        """The true temperature now (no thermistor noise)."""
        return self.fuser.temp_c()

    @property
    def sheets_picked(self) -> int:
        return self.paper_path.inserted

    @property
    def sheets_delivered(self) -> int:
        return self.paper_path.delivered

    @property
    def sheets_removed(self) -> int:
        return self.paper_path.removed

    @property
    def sheets_in_path(self) -> int:
        return len(self.paper_path.sheets)

    @property
    def display(self) -> tuple[str, str]:
        return self.panel.display

    @property
    def outputs(self) -> dict[Output, bool]:
        """Every output's last commanded state (a copy)."""
        return dict(self._outputs)

    @property
    def cover_open(self) -> bool:
        return self.panel.cover_open

    def add_probe(self, probe: Probe) -> None:
        """Call ``probe(t_ns, scope, signal, value)`` on every change from now on.

        It is first called once for every signal with its value now (a tracer's initial
        dump), then on each change: inputs, outputs (scope ``board``, signal the output's
        name), the fuser's curve (``fuser``/``temp_c`` at each change of the curve, and
        ``heating``), the toner level, the tray's count, the paper path's counts and
        jams, the display, every injected fault (``board``/``fault``, e.g. ``"jam:feed"``)
        and every reset (``board``/``reset``). With no probe attached nothing is built.
        """
        self._probes.append(probe)
        if len(self._probes) == 1:
            self._attach_observers()
        t_ns = self._scheduler.now_ns
        for scope, signal, value in self._signals():
            probe(t_ns, scope, signal, value)

    def remove_probe(self, probe: Probe) -> None:
        self._probes.remove(probe)
        if not self._probes:
            for model in (self.paper_path, self.fuser, self.toner, self.tray, self.panel):
                model.observer = None

    def _attach_observers(self) -> None:
        def observer(scope: str) -> Callable[[str, object], None]:
            return lambda signal, value: self._emit(scope, signal, value)

        self.paper_path.observer = observer("paper_path")
        self.fuser.observer = observer("fuser")
        self.toner.observer = observer("toner")
        self.tray.observer = observer("tray")
        self.panel.observer = observer("panel")

    def _signals(self) -> list[tuple[str, str, object]]:
        path, panel = self.paper_path, self.panel
        signals: list[tuple[str, str, object]] = [
            ("paper_path", "feed_sensor", path.feed_covered),
            ("paper_path", "exit_sensor", path.exit_covered),
            ("paper_path", "picked", path.inserted),
            ("paper_path", "delivered", path.delivered),
            ("paper_path", "removed", path.removed),
            ("fuser", "temp_c", self.fuser.temp_c()),
            ("fuser", "heating", self.fuser.heating),
            ("toner", "level_pct", self.toner.level_pct),
            ("tray", "sheets", self.tray.count),
            ("tray", "paper_present", self.tray.paper_present),
            ("panel", "cover_open", panel.cover_open),
            ("panel", "button_cancel", panel.is_pressed(Button.CANCEL)),
            ("panel", "button_continue", panel.is_pressed(Button.CONTINUE)),
            ("panel", "row0", panel.display[0]),
            ("panel", "row1", panel.display[1]),
        ]
        signals.extend(("board", str(o), on) for o, on in self._outputs.items())
        return signals

    def _emit(self, scope: str, signal: str, value: object) -> None:
        t_ns = self._scheduler.now_ns
        for probe in self._probes:
            probe(t_ns, scope, signal, value)


def _nothing(on: bool) -> None:
    return None
