"""The HIL harness's view of a printer: the firmware on a board, driven by waiting on
structured events, never on console text.

:class:`PrinterHarness` wraps a :class:`~emulator.PrintRun` (the same machinery as
``printer-emu run``) so a test reads like the printer's manual::

    job = printer.submit(pages=10, coverage=5)
    printer.wait_for("toner_low", timeout_s=60)
    printer.run_until_idle(timeout_s=120)
    assert job.delivered == 10

Every timeout counts the board's own time: virtual time on the emulated board (so a
two-minute wait costs milliseconds), wall time on a serial device. A wait that times
out raises :class:`PrinterTimeout` with the states and the last events in its message.

On the network (:meth:`PrinterHarness.network`) the printer's front ends listen on
loopback while the test drives the board as before: a client (IPP, port 9100, SNMP)
talks to the printer from the test's thread or any other, and the harness's waits run
the board while the network task's jobs come in::

    with printer.network() as net:
        send_to_port_9100(net.raw_address, b"Hello\f")
        printer.wait_for("job_done", timeout_s=30)

The board's time must then follow the wall (clients cannot talk to a printer racing
through virtual time): a serial device always does; the emulated board does in a test
marked ``printer_network`` (the ``printer`` fixture ties its clock to the wall).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.run._print_run import BoardObservation, PrintRun
from emulator.run._scenario import JobSpec, load_scenario
from firmware import Job, StatusEvent
from hal import Board, FaultInjector, VirtualClock

if TYPE_CHECKING:
    from firmware.net import NetworkFrontEnd, PrinterStatus

_SECOND_NS = 1_000_000_000
_SETTLE_NS = 1_000_000


STATUS_EVENT_DETAILS: dict[str, frozenset[str]] = {
    kind: frozenset(keys.split()) for kind, keys in {
        "boot": "reset_cause", "self_test_failed": "reason", "state": "state",
        "job_queued": "job pages", "job_started": "job",
        "job_done": "job state delivered pages",
        "page_feeding": "job page sheet", "page_delivered": "job page sheet recovered",
        "page_spoiled": "job page sheet recovered", "misfeed": "job page attempt",
        "jam": "job page sheet at", "jam_cleared": "pages_requeued",
        "paper_out": "", "paper_loaded": "", "cover_open": "", "cover_closed": "",
        "link_down": "reason", "link_up": "reason",
        "toner_low": "reading_pct", "toner_empty": "reading_pct policy",
        "toner_replaced": "reading_pct", "fuser_ready": "reading_c", "fuser_cold": "",
        "fuser_error": "reason reading_c", "power_save": "", "wake": "",
        "watchdog_reset": "", "hang": "object",
    }.items()
}
"""The status events the firmware reports and their detail keys (`firmware._status`'s
table), so that ``wait_for`` can refuse a typo at once."""


class PrinterTimeout(AssertionError):
    """A wait ran out of (board) time. An AssertionError, so pytest reports it as the
    test's failure, with the message, not as an error in the harness."""


@dataclass(frozen=True)
class NetworkPrinter:
    """Where the printer's front ends listen (None: not started), and its status as the
    network task publishes it."""

    front_end: NetworkFrontEnd
    ipp_uri: str | None
    """``ipp://127.0.0.1:PORT/ipp/print``"""
    ipp_address: tuple[str, int] | None
    raw_address: tuple[str, int] | None
    snmp_address: tuple[str, int] | None

    @property
    def status(self) -> PrinterStatus:
        """The latest status the firmware published to its network task."""
        return self.front_end.board.snapshot


class PrinterHarness:
    """The firmware booted on ``board``; see the module docstring."""

    def __init__(self, board: Board, *, seed: int = 0,
                 observation: BoardObservation | None = None) -> None:
        self.board = board
        self.scheduler = board.scheduler
        self.seen: list[StatusEvent] = []
        self.run = PrintRun(board, seed=seed, observation=observation,
                            listeners=[self.seen.append])
        self.printer = self.run.printer
        self._cursor = 0

    # -- time --------------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        """Seconds since the harness started, in the board's time."""
        return (self.scheduler.now_ns - self.run.start_ns) / 1e9

    def run_for(self, seconds: float) -> None:
        """Let ``seconds`` of board time pass."""
        deadline = self.scheduler.now_ns + round(seconds * _SECOND_NS)
        if self.scheduler.is_virtual:
            self.scheduler.run_until(deadline)
        else:
            self.scheduler.run_until(lambda: self.scheduler.now_ns >= deadline,
                                     timeout_ns=round(seconds * _SECOND_NS))

    def run_until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Run until ``predicate()`` holds; :class:`PrinterTimeout` after ``timeout_s``."""
        timeout_ns = round(timeout_s * _SECOND_NS)
        if not self.scheduler.run_until(predicate, timeout_ns=timeout_ns) and not predicate():
            raise PrinterTimeout(f"{what}: not within {timeout_s:g} s of board time\n"
                                 + self.describe())

    def boot(self, timeout_s: float = 10.0) -> None:
        """Run until the firmware has booted and has nothing left to do at once."""
        kernel = self.printer.firmware.kernel
        self.run_until(lambda: not any(ao.queue for ao in kernel.objects), timeout_s,
                       "boot")

    # -- jobs --------------------------------------------------------------------------

    def submit(self, pages: int, coverage: float = 5.0) -> Job:
        """Queue a job of ``pages`` pages at ``coverage`` percent."""
        return self.run.add_job(JobSpec(pages=pages, coverage_pct=coverage))

    def submit_file(self, path: str | Path) -> Job:
        return self.run.add_job(JobSpec(file=Path(path)))

    def cancel(self, job: int | None = None) -> None:
        self.printer.cancel(job)

    def run_until_idle(self, timeout_s: float = 600.0) -> None:
        """Run until every job has finished and the engine is at rest."""
        self.run_until(lambda: self.printer.idle, timeout_s, "printer idle")

    # -- the network ---------------------------------------------------------------

    @contextmanager
    def network(self, *, ipp: bool = True, raw: bool = True, snmp: bool = False,
                host: str = "127.0.0.1") -> Iterator[NetworkPrinter]:
        """The printer's front ends listening on ``host`` (free ports) for the ``with``
        block; see the module docstring. ValueError on a board whose time does not
        follow the wall (an emulated board in a test not marked ``printer_network``)."""
        clock = self.scheduler.clock
        if isinstance(clock, VirtualClock) and clock.realtime_ratio is None:
            raise ValueError("the printer's network needs the board's time to follow the "
                             "wall: mark the test @pytest.mark.printer_network")
        # Here, not at the top: aiohttp and pysnmp cost every start half a second.
        from firmware.net import NetworkFrontEnd

        any_port = (host, 0)
        front_end = NetworkFrontEnd(self.printer, ipp=any_port if ipp else None,
                                    raw=any_port if raw else None,
                                    snmp=any_port if snmp else None)
        front_end.start()
        try:
            ipp_address = front_end.ipp_address
            uri_host = f"[{host}]" if ":" in host else host
            yield NetworkPrinter(
                front_end,
                None if ipp_address is None
                else f"ipp://{uri_host}:{ipp_address[1]}/ipp/print",
                ipp_address, front_end.raw_address, front_end.snmp_address)
        finally:
            front_end.close()

    # -- events ------------------------------------------------------------------------

    def wait_for(self, kind: str, timeout_s: float = 60.0, **match: Any) -> StatusEvent:
        """The next status event of ``kind`` (whose details equal ``match``) not yet
        returned by an earlier ``wait_for``; runs the board until it comes. A kind or a
        detail key the firmware never reports raises ValueError at once, naming the valid
        ones (else the wait would last its whole timeout)."""
        keys = STATUS_EVENT_DETAILS.get(kind)
        if keys is None:
            raise ValueError(f"wait_for: unknown event kind {kind!r} (kinds: "
                             f"{', '.join(sorted(STATUS_EVENT_DETAILS))})")
        unknown = sorted(set(match) - keys)
        if unknown:
            valid = ", ".join(sorted(keys)) or "none"
            raise ValueError(f"wait_for({kind!r}): unknown detail key {unknown[0]!r} "
                             f"(keys of {kind}: {valid})")
        found: list[StatusEvent] = []

        def arrived() -> bool:
            while self._cursor < len(self.seen):
                event = self.seen[self._cursor]
                self._cursor += 1
                if event.kind == kind and all(event.detail.get(k) == v
                                              for k, v in match.items()):
                    found.append(event)
                    return True
            return False

        detail = "".join(f" {k}={v!r}" for k, v in match.items())
        self.run_until(arrived, timeout_s, f"waiting for {kind}{detail}")
        return found[0]

    def events(self, kind: str | None = None) -> list[StatusEvent]:
        """Every status event so far (of ``kind``)."""
        return [e for e in self.seen if kind is None or e.kind == kind]

    @property
    def page_log(self) -> list[dict[str, Any]]:
        return self.run.page_log

    def delivered_pages(self, job: int | None = None) -> list[tuple[int, int]]:
        """(job, page) of every delivered page, in delivery order."""
        return [(p["job"], p["page"]) for p in self.run.page_log
                if job is None or p["job"] == job]

    def states(self) -> dict[str, str]:
        return self.printer.states()

    # -- faults and scenarios -------------------------------------------------------

    @property
    def faults(self) -> FaultInjector | None:
        return self.board.faults

    def play(self, scenario: str | Path, timeout_s: float = 3600.0) -> dict[str, Any]:
        """Run a scenario file (as ``printer-emu run --scenario``): its jobs, its
        actions at their moments, to the end; returns the ``--json`` record."""
        loaded = load_scenario(scenario)
        if loaded.actions and self.board.faults is None:
            raise PrinterTimeout(f"{scenario}: this board cannot inject faults")
        for spec in loaded.jobs:
            self.run.add_job(spec)
        self.run.add_actions(loaded.actions, loaded.source)
        self.run.run(max_run_ns=round(timeout_s * _SECOND_NS))
        return self.run.result()

    def describe(self, last: int = 15) -> str:
        """The active objects' states and the last events: what a failure report shows."""
        lines = ["states: " + ", ".join(f"{k}={v}" for k, v in self.states().items())]
        lines.append(f"last {min(last, len(self.seen))} events (t in s):")
        for event in self.seen[-last:]:
            t_s = (event.t_ns - self.run.start_ns) / 1e9
            detail = " ".join(f"{k}={v}" for k, v in event.detail.items())
            lines.append(f"  {t_s:12.6f}  {event.source:8} {event.kind} {detail}".rstrip())
        return "\n".join(lines)
