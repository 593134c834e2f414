"""``printer-emu serve``: the virtual device on a pty, a TCP port or RFC 2217.

An :class:`~emulator.board.EmulatedBoard` runs on a :class:`~hal.Scheduler` with a
:class:`~hal.SelectorClock` (wall time, keeping the instants: a physics timer the host's
CPU runs late still stamps its edges at the instant the board moved, and the board's
clock never reads past an edge still owed), behind the device end of the serial protocol
(:class:`~emulator.device.VirtualDevice`), served by a :mod:`server
<emulator.device._servers>` on the chosen transport. The first line on stdout, flushed,
is where a host connects: the pty's path (``/dev/pts/N``), ``socket://127.0.0.1:PORT``
or ``rfc2217://127.0.0.1:PORT`` (port 0 asks for a free port; the real one is printed).
Sockets bind 127.0.0.1 unless told otherwise; bound to any other address, ``serve``
warns in one line that the port, flashing and simulation commands included, is open to
the network without authentication. Nothing else is written to stdout; logs go to
stderr.

Threads: the device is one event loop. The scheduler's thread runs the board and the
device, and is also the line's I/O loop (its clock waits in one ``select(2)`` on the
connection's descriptor and the next timer). With ``--baud`` a writer thread paces what
the device sends. The main thread waits for SIGINT/SIGTERM and stops the scheduler
(``post_threadsafe``, which wakes the ``select``), then shuts everything down, says so
in one line on stderr (``stopped by SIGTERM``, with or without ``-v``) and exits with
status 0.

``baud`` paces bytes at the line rate of a UART (N/10 bytes a second, 8N1) in both
directions, so timing and timeouts behave as on a real line; the device's link timers
are sized for it. ``trace`` records the board (VCD or JSONL, by extension). The device
has an MCUboot flash (:mod:`emulator.device._flash_claim`): SMP lines on the same port
reach it (``printer-emu flash --port ...``), and an SMP reset reboots the device.
``sim=False`` makes a device without the simulation commands (as a real one: its HELLO
does not announce ``"sim"``).

The command line is :mod:`emulator.cli` (``printer-emu serve --help``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import select
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from boards import BoardFileError, load_board
from emulator.board import EmulatedBoard
from emulator.device._flash_claim import open_flash
from emulator.device._log_limit import RateLimit
from emulator.device._serve_options import ServeError, ServeOptions
from emulator.device._servers import PtyServer, Server, TcpServer
from emulator.device._virtual_device import VirtualDevice
from hal import Scheduler, SelectorClock

_log = logging.getLogger("printer_emu.serve")

EXIT_OK = 0
EXIT_FAILED = 1


def serve(options: ServeOptions) -> int:
    """Run the server until SIGINT or SIGTERM; the exit status. Raises
    :class:`ServeError` for a user's mistake, before anything is printed on stdout."""
    # One warning per kind per 10 s: a client sending garbage cannot flood the log.
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RateLimit())
    logging.basicConfig(
        handlers=[handler],
        level=logging.INFO if options.verbose else logging.WARNING,
        format="printer-emu serve: %(message)s",
    )
    try:
        config = load_board(options.board)
    except BoardFileError as exc:
        raise ServeError(str(exc)) from None

    flash, flash_lock = open_flash(config, options.flash)

    clock = SelectorClock()
    scheduler = Scheduler(clock, keep_instants=True)
    board = EmulatedBoard(config, scheduler, seed=options.seed)
    recorder = None
    server: Server | None = None
    device = None
    try:
        if options.trace is not None:
            from emulator.trace import start_board_trace

            try:
                recorder = start_board_trace(board, options.trace)
            except (OSError, ValueError) as exc:
                raise ServeError(f"--trace {options.trace}: {exc}") from None
        device = VirtualDevice(board, sim=options.sim, flash=flash, baud=options.baud)
        if options.transport == "pty":
            server = PtyServer(device, scheduler, clock, options.baud)
        else:
            server = TcpServer(
                device,
                scheduler,
                clock,
                options.baud,
                options.host,
                options.port,
                rfc2217=options.transport == "rfc2217",
            )
        if options.transport != "pty" and not _loopback(options.host):
            _log.warning("listening on %s, not a loopback address: anyone on the network "
                         "can flash this device and run its simulation commands",
                         options.host)
        return _run(scheduler, server)
    finally:
        if server is not None:
            server.close()
        if device is not None:
            device.close()
        if recorder is not None:
            recorder.stop()
        flash.close()
        flash_lock.close()  # releases the flock
        clock.close()


def _loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything: warn


def _run(scheduler: Scheduler, server: Server) -> int:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    stopping: list[int] = []
    failed: list[BaseException] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Only what is safe in a signal handler: the main thread does the rest.
        stopping.append(signum)
        with contextlib.suppress(OSError):
            os.write(wake_w, b"s")

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: the caller handles it
            previous[signum] = signal.signal(signum, on_signal)

    def run_scheduler() -> None:
        try:
            scheduler.run()
        except BaseException as exc:
            failed.append(exc)
            _log.exception("the device stopped on an error")
        finally:
            with contextlib.suppress(OSError):
                os.write(wake_w, b"x")

    thread = threading.Thread(target=run_scheduler, name="serve-scheduler", daemon=True)
    try:
        print(server.url, flush=True)
        thread.start()
        server.start()
        while not stopping and not failed and thread.is_alive():
            with contextlib.suppress(InterruptedError):
                select.select([wake_r], [], [], 1.0)
        if stopping:
            # One line even without -v: a supervisor's log shows why the device went.
            print(f"printer-emu serve: stopped by {signal.Signals(stopping[0]).name}",
                  file=sys.stderr, flush=True)
        _log.info("shutting down")
    finally:
        # A stop() that lands before run() has started is forgotten by run(): repeat it.
        give_up = time.monotonic() + 5.0
        while thread.is_alive() and time.monotonic() < give_up:
            scheduler.stop()
            thread.join(timeout=0.1)
        for restored, handler in previous.items():
            signal.signal(restored, handler)
        os.close(wake_r)
        os.close(wake_w)
    return EXIT_FAILED if failed else EXIT_OK
