"""The printer: every active object composed on one board, and the firmware's face.

``Printer(board)`` boots the firmware on ``board`` at once (self-test, then idle) and
re-boots it after every board reset (the watchdog's, or a serial device's own), keeping
its job memory and its status subscribers across the reset. The firmware touches the
board only through :class:`hal.Board`: it never knows which board it runs on.

Boot order: kernel and active objects are made, ISRs attached, then the self-test reads
the thermistor (plausible range) and the sensors (at rest); the engine then asks the
spooler for work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from firmware._cover import CoverInterlock, safety_cut
from firmware._engine import Engine
from firmware._fuser import Fuser
from firmware._jobs import Job, JobStore, pages_from_text, read_job_file
from firmware._kernel import ActiveObject, Kernel, StatusListener
from firmware._panel import ROUTED_KINDS, Panel
from firmware._spooler import Spooler
from firmware._status import StatusEvent
from firmware._supervisor import Supervisor
from firmware._toner import TonerMonitor
from firmware._tray import Tray
from hal import (
    AnalogChannel,
    Board,
    DigitalInput,
    IrqEvent,
    Isr,
    LinkChange,
    ResetCause,
    WindowCrossing,
)


class Firmware:
    """One boot of the firmware: a kernel and its active objects. A board reset ends it
    (:meth:`shutdown`) and the :class:`Printer` makes a new one."""

    def __init__(self, board: Board, store: JobStore, listeners: Iterable[StatusListener]):
        self.board = board
        self.store = store
        self.kernel = Kernel(board)
        for listener in listeners:
            self.kernel.subscribe(listener)
        k = self.kernel
        self.spooler = Spooler(k, store)
        self.fuser = Fuser(k)
        self.engine = Engine(k, self.spooler, self.fuser, store)
        self.toner = TonerMonitor(k)
        self.tray = Tray(k)
        self.cover = CoverInterlock(k)
        self.panel = Panel(k)
        self.spooler.engine = self.engine
        self.fuser.engine = self.engine
        self.toner.engine = self.engine
        self.tray.engine = self.engine
        self.cover.listeners = [self.engine, self.fuser]
        self.panel.spooler = self.spooler
        self.panel.toner = self.toner
        for ao in (self.cover, self.fuser, self.engine, self.spooler, self.tray,
                   self.toner, self.panel):
            k.add(ao)
        self.supervisor = Supervisor(k)
        k.subscribe(self._route_to_panel)

    def _route_to_panel(self, event: StatusEvent) -> None:
        if event.kind not in ROUTED_KINDS:
            return
        if event.kind == "state" and event.source != "engine":
            return
        detail = dict(event.detail, source=event.source)
        self.panel.post("status", kind=event.kind, detail=detail)

    # -- ISRs: they read what they must and post; the cover's cuts power first ----------

    def _attach_isrs(self) -> None:
        board, irq, store = self.board, self.board.irq, self.store
        engine, tray, panel = self.engine, self.tray, self.panel

        def feed_isr(e: IrqEvent) -> None:
            engine.post("feed_edge", level=bool(e.value), t_ns=e.board_t_ns)

        def exit_isr(e: IrqEvent) -> None:
            # A trailing edge with the cover shut is a sheet leaving for the output tray:
            # counted in the job memory, so a reset before the engine sees it loses no
            # page and prints none twice (see JobStore.recover).
            if not e.value and not board.read_input(DigitalInput.COVER_OPEN):
                store.exits_captured += 1
            engine.post("exit_edge", level=bool(e.value), t_ns=e.board_t_ns)

        def paper_isr(e: IrqEvent) -> None:
            tray.post("paper", level=bool(e.value))

        def button_isr(e: IrqEvent) -> None:
            panel.post("button", name=e.name, level=bool(e.value))

        def window_isr(target: ActiveObject) -> Isr:
            def isr(e: IrqEvent) -> None:
                crossing = e.value
                assert isinstance(crossing, WindowCrossing)
                target.post("crossing", crossing=crossing.crossing, reading=crossing.reading)

            return isr

        def link_isr(e: IrqEvent) -> None:
            change = e.value
            assert isinstance(change, LinkChange)
            # Without the link the firmware can neither see nor drive the board: power
            # off as the interlock does (the board's own failsafe does the same on its
            # side), freeze the paper path, and run it out when the link is back.
            if not change.up:
                safety_cut(self.board)
            self.kernel.publish("link_up" if change.up else "link_down", source="firmware",
                                reason=change.reason)
            self.engine.post("link_restored" if change.up else "link_lost")
            self.fuser.post("cover_closed" if change.up else "cover_opened")

        irq.attach("feed_sensor", feed_isr)
        irq.attach("exit_sensor", exit_isr)
        irq.attach("paper_present", paper_isr)
        irq.attach("button_cancel", button_isr)
        irq.attach("button_continue", button_isr)
        irq.attach("cover_open", self.cover.isr)
        irq.attach("toner", window_isr(self.toner))
        irq.attach("fuser", window_isr(self.fuser))
        irq.attach("link", link_isr)

    def boot(self) -> None:
        board = self.board
        cause = board.reset_cause
        self.kernel.publish("boot", source="firmware", reset_cause=cause.value)
        if cause is ResetCause.WATCHDOG:
            self.kernel.publish("watchdog_reset", source="firmware")
        self._attach_isrs()
        self.supervisor.start()
        fuser_cfg = board.config.fuser
        reading_c = board.read_analog(AnalogChannel.FUSER_C)
        self.panel.start()
        self.tray.start()
        self.toner.start()
        if not fuser_cfg.plausible_min_c <= reading_c <= fuser_cfg.plausible_max_c:
            self.kernel.publish("self_test_failed", source="firmware",
                                reason=f"thermistor reads {reading_c:.1f} C")
            self.fuser.fail_self_test()
        sheet_seen = board.read_input(DigitalInput.FEED_SENSOR) or board.read_input(
            DigitalInput.EXIT_SENSOR)
        if board.read_input(DigitalInput.COVER_OPEN):
            self.spooler.start()
            self.cover.notify(True)
        elif sheet_seen or self.spooler.store.sheets:
            # A reset mid-job left sheets in the path: run them out, then settle which
            # pages came out imaged (delivered) and which are printed again.
            if sheet_seen:
                self.kernel.publish("self_test_failed", source="firmware",
                                    reason="a sheet is in the paper path")
            self.engine.start_with_purge()
            self.fuser.post("warm_up")
            return
        else:
            self.spooler.start()
        self.engine.start()
        self.fuser.post("warm_up")

    def shutdown(self) -> None:
        self.kernel.shutdown()

    def states(self) -> dict[str, str]:
        return {ao.NAME: ao.state for ao in self.kernel.objects}


class Printer:
    """The firmware on a board, across resets. The public face of ``firmware``."""

    def __init__(self, board: Board, listeners: Iterable[StatusListener] = ()) -> None:
        """``listeners`` are subscribed before the first boot, so they see its ``boot``
        and self-test reports too (:meth:`subscribe` sees what comes after)."""
        self.board = board
        self.jobs = JobStore()
        self._listeners: list[StatusListener] = list(listeners)
        self.boots = 0
        self.firmware = self._boot()
        board.set_reset_handler(self._on_reset)

    def _boot(self) -> Firmware:
        self.boots += 1
        firmware = Firmware(self.board, self.jobs, self._listeners)
        firmware.boot()
        return firmware

    def _on_reset(self, cause: ResetCause) -> None:
        self.firmware.shutdown()
        self.firmware = self._boot()

    # -- the host's side -------------------------------------------------------------

    def subscribe(self, listener: StatusListener) -> None:
        """``listener(event)`` for every status event from now on, across resets."""
        self._listeners.append(listener)
        self.firmware.kernel.subscribe(listener)

    def unsubscribe(self, listener: StatusListener) -> None:
        self._listeners.remove(listener)
        self.firmware.kernel.unsubscribe(listener)

    def submit(self, pages: int, coverage_pct: float, name: str = "") -> Job:
        """Queue a job of ``pages`` pages at ``coverage_pct``. Returns its record."""
        if pages < 1:
            raise ValueError(f"a job needs at least one page, got {pages}")
        if not 0.0 <= coverage_pct <= 100.0:
            raise ValueError(f"coverage_pct must be within [0, 100], got {coverage_pct}")
        return self._add(name or f"{pages} pages at {coverage_pct:g}%",
                         (float(coverage_pct),) * pages)

    def submit_pages(self, page_coverage_pct: Sequence[float], name: str) -> Job:
        """Queue a job of one page per coverage, in order (a document measured page by
        page, e.g. by the network task). Raises ValueError as :meth:`submit` does."""
        coverage = tuple(float(c) for c in page_coverage_pct)
        if not coverage:
            raise ValueError("a job needs at least one page, got 0")
        if not all(0.0 <= c <= 100.0 for c in coverage):
            raise ValueError("every page's coverage_pct must be within [0, 100]")
        return self._add(name, coverage)

    def submit_text(self, text: str, name: str = "text") -> Job:
        return self._add(name, pages_from_text(text))

    def submit_file(self, path: str | Path) -> Job:
        """Queue a text file (raises :class:`~firmware.JobFileError` if unreadable)."""
        return self._add(Path(path).name, read_job_file(path))

    def _add(self, name: str, coverage: tuple[float, ...]) -> Job:
        job = self.jobs.add(name, coverage)
        self.firmware.spooler.post("job_added", job=job.id)
        return job

    def cancel(self, job: int | None = None) -> None:
        """Cancel ``job`` (default: the one printing now)."""
        self.firmware.spooler.post("cancel", job=job)

    def states(self) -> dict[str, str]:
        """Each active object's current state."""
        return self.firmware.states()

    def hang(self, name: str) -> None:
        """Fault injection: active object ``name`` stops taking events, as a task stuck
        in a loop would. The watchdog is expected to reset the board."""
        ao = self.firmware.kernel.find(name)
        ao.hung = True
        self.firmware.kernel.publish("hang", source="firmware", object=name)

    @property
    def idle(self) -> bool:
        """Every job finished and the engine at rest."""
        jobs_done = all(job.finished for job in self.jobs.jobs.values())
        return jobs_done and self.firmware.engine.state in ("standby", "failed")
