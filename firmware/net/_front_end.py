"""The printer's network task: IPP, AppSocket/PJL and SNMP on one asyncio loop in a thread
of its own.

Threads and what each touches
-----------------------------
* The scheduler's thread runs the firmware. The :class:`StatusBoard` lives there: it
  listens to the firmware's status events and publishes an immutable snapshot after
  each change; jobs are handed to the printer, cancelled and the panel blinked there,
  through ``scheduler.post_threadsafe``.
* The network thread runs one asyncio loop: the IPP server (aiohttp), the raw port and
  the SNMP agent. It reads the printer only from the board's latest snapshot (one
  reference, swapped whole), so a status query never touches an active object and no
  amount of polling gives the scheduler's thread more work. Each new snapshot is
  handed over in order (a thread-safe queue, and one wake-up of the loop for however
  many are queued) so subscriptions and PJL status see every change.

Use
---
Make it and :meth:`~NetworkFrontEnd.start` it on the scheduler's thread, or before the
scheduler runs; :meth:`~NetworkFrontEnd.close` it the same way (after the scheduler has
stopped is fine). The scheduler must be one that waits for posted work: a
:class:`hal.WallClock`, or a :class:`hal.VirtualClock` with a real-time ratio.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from firmware import Printer
from firmware.net._appsocket import AppSocketServer
from firmware.net._ipp_printer_attributes import PrinterDescription
from firmware.net._ipp_server import IppServer
from firmware.net._ipp_service import IppService
from firmware.net._job_table import JobTable
from firmware.net._printer_status import PrinterStatus, StatusBoard
from firmware.net._snmp import SnmpAgent
from hal import Output, VirtualClock

Address = tuple[str, int]

IDENTIFY_BLINKS: Final = 3
IDENTIFY_HALF_PERIOD_NS: Final = 250_000_000
_START_TIMEOUT_S: Final = 30.0


class _Identify:
    """Identify-Printer: the attention LED blinks, then shows what the panel wants again.
    Runs on the scheduler's thread."""

    def __init__(self, printer: Printer) -> None:
        self._printer = printer
        self._blinking = False

    def start(self) -> None:
        if not self._blinking:
            self._blinking = True
            self._step(0)

    def _step(self, n: int) -> None:
        board = self._printer.board
        if n < 2 * IDENTIFY_BLINKS:
            board.set_output(Output.LED_ATTENTION, n % 2 == 0)
            board.scheduler.call_later(IDENTIFY_HALF_PERIOD_NS, functools.partial(self._step,
                                                                                n + 1))
            return
        self._blinking = False
        board.set_output(Output.LED_ATTENTION,
                         self._printer.states().get("panel") == "attention")


class ListenError(OSError):
    """A front end could not listen: the message names it and its address, and why."""


async def _listen(name: str, address: Address, starting: Awaitable[None]) -> None:
    try:
        await starting
    except OSError as e:
        why = e.strerror or str(e)
        if "attempting to bind" in why:  # asyncio's wording repeats the address
            why = why.rsplit(": ", 1)[-1]
        host, port = address
        raise ListenError(e.errno, f"cannot listen for {name} on {host}:{port}: "
                          f"{why[:1].lower()}{why[1:]}") from e


class NetworkFrontEnd:
    """The printer's IPP, raw (AppSocket/PJL) and SNMP front ends; see the module
    docstring. Each of ``ipp``, ``raw``, ``snmp`` is a ``(host, port)`` to listen on
    (port 0: any free port, read back from the ``*_address`` properties) or None."""

    def __init__(self, printer: Printer, *, ipp: Address | None = None,
                 raw: Address | None = None, snmp: Address | None = None,
                 snmp_community: str = "public", location: str = "") -> None:
        self._printer = printer
        self._scheduler = printer.board.scheduler
        self._wanted = (ipp, raw, snmp)
        self._community = snmp_community
        self._location = location
        self.board = StatusBoard(printer)
        """The printer's published status (its ``snapshot`` is readable from any thread)."""
        self._identify = _Identify(printer)
        self._inbox: deque[PrinterStatus] = deque()
        self._wake_pending = False
        self._listeners: list[Callable[[PrinterStatus], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.ipp_address: Address | None = None
        self.raw_address: Address | None = None
        self.snmp_address: Address | None = None

    # -- life --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the status board and the network thread; returns once every front end
        listens (raises :class:`ListenError`, an OSError naming the front end and its
        address, if one cannot bind; ValueError for a clock that does not follow wall
        time: clients would wait on a printer racing through time)."""
        if self._thread is not None:
            return
        clock = self._scheduler.clock
        if isinstance(clock, VirtualClock) and clock.realtime_ratio is None:
            raise ValueError("the network front end needs a scheduler tied to wall time "
                             "(a WallClock, or a VirtualClock with a realtime_ratio)")
        self.board.on_publish.append(self._hand_over)
        self.board.start()
        self._thread = threading.Thread(target=self._run, name="printer-net", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise TimeoutError("the network front end did not start")
        if self._failure is not None:
            self._thread.join()
            self._thread = None
            self.board.stop()
            raise self._failure

    def close(self) -> None:
        """Stop listening, end the network thread, unsubscribe from the printer."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(_START_TIMEOUT_S)
        self._thread = None
        self.board.stop()
        if self._hand_over in self.board.on_publish:
            self.board.on_publish.remove(self._hand_over)

    def __enter__(self) -> NetworkFrontEnd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the scheduler's side ----------------------------------------------------------

    def _post(self, callback: Callable[[], object]) -> None:
        self._scheduler.post_threadsafe(callback)

    def _hand_over(self, status: PrinterStatus) -> None:
        """On the scheduler's thread: queue the snapshot, wake the loop once."""
        self._inbox.append(status)
        loop = self._loop
        if not self._wake_pending and loop is not None:
            self._wake_pending = True
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                self._inbox.clear()

    # -- the network thread --------------------------------------------------------------

    def _drain(self) -> None:
        self._wake_pending = False
        while self._inbox:
            status = self._inbox.popleft()
            for listener in self._listeners:
                listener(status)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # reported to start(), which re-raises it
            self._failure = e
        finally:
            self._loop = None
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ready.set()

    async def _serve(self) -> None:
        ipp, raw, snmp = self._wanted
        self._stop = asyncio.Event()
        description = PrinterDescription(self._printer.board.config,
                                         started_at=self.board.snapshot.changed_at,
                                         location=self._location)
        jobs = JobTable(self.board, self._post)
        service = IppService(self.board, jobs, description,
                             lambda: self._post(self._identify.start))
        self._listeners.append(lambda s: service.subscriptions.observe(s, jobs))
        servers: list[IppServer | AppSocketServer | SnmpAgent] = []
        try:
            if ipp is not None:
                ipp_server = IppServer(service, *ipp)
                servers.append(ipp_server)
                await _listen("IPP", ipp, ipp_server.start())
                self.ipp_address = ipp_server.address
            if raw is not None:
                raw_server = AppSocketServer(self.board, jobs, description, *raw)
                servers.append(raw_server)
                self._listeners.append(raw_server.observe)
                await _listen("raw", raw, raw_server.start())
                self.raw_address = raw_server.address
            if snmp is not None:
                agent = SnmpAgent(self.board, description, *snmp, community=self._community)
                servers.append(agent)
                await _listen("SNMP", snmp, agent.start())
                self.snmp_address = agent.address
            self._drain()
            self._ready.set()
            await self._stop.wait()
        finally:
            for server in reversed(servers):
                await server.close()
