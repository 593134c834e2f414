"""``printer-emu serve``: the virtual device on a pty, a TCP port or RFC 2217.

Usage::

    printer-emu serve [--board NAME] [--pty | --tcp [HOST:]PORT | --rfc2217 [HOST:]PORT]
                      [--bind ADDR] [--baud N] [--trace FILE] [--flash FILE] [--no-sim]
                      [--seed N] [--verbose]

An :class:`~emulator.board.EmulatedBoard` runs on a :class:`~hal.Scheduler` with a
:class:`~hal._selector_clock.SelectorClock` (wall time), behind the device end of the
serial protocol (:class:`~emulator.device._virtual_device.VirtualDevice`). The first line on stdout,
flushed, is where a host connects: the pty's path (``/dev/pts/N``), ``socket://127.0.0.1:PORT`` or
``rfc2217://127.0.0.1:PORT`` (port 0 asks for a free port; the real one is printed).
Sockets bind 127.0.0.1 unless ``--bind`` (or a host in ``--tcp``/``--rfc2217``) says
otherwise. Nothing else is written to stdout; logs go to stderr.

Threads: the device is one event loop. The scheduler's thread runs the board and the
device, and is also the line's I/O loop: its clock waits in one ``select(2)`` on the
connection's descriptor and the next timer, and when bytes come it reads them and feeds
the device on the same thread, which writes its answer to the line itself (no reader
thread, so no hand-off between threads on a request's way through). With ``--baud`` a
writer thread paces what the device sends. The main thread waits for SIGINT/SIGTERM and
stops the scheduler (``post_threadsafe``, which wakes the ``select``), then shuts
everything down (exit status 0).

Transports:

* ``--pty`` (the default): a raw pty; the host opens the printed path. While no client
  has it open the master reads EIO at once, so it is looked at every 20 ms instead of
  watched; a client is there when the read says ``EAGAIN`` or brings bytes. A client that
  closes the pty is noticed (the master reads EIO) and ends the session (the device
  makes itself safe); what the device would write meanwhile is dropped, not left for the
  next client. The next client gets a fresh session (a new HELLO), as does a host that
  sends a new HELLO on the open pty.
* ``--tcp``: one client at a time (others wait in the listen backlog until it leaves);
  each connection is a fresh session. A client that disconnects does not stop the server.
* ``--rfc2217``: the TCP server speaking Telnet/RFC 2217 through pyserial's
  ``serial.rfc2217.PortManager``, so ``serial.serial_for_url("rfc2217://...")`` works.
  Line settings a client asks for (baud rate, parity, ...) are acknowledged and ignored:
  ``--baud`` alone paces the line.

``--baud N`` paces bytes at the line rate of a UART (N/10 bytes a second, 8N1) in both
directions, so timing and timeouts behave as on a real line; the device's link timers
are sized for it. ``--trace FILE`` records the board (VCD or JSONL, by extension).
``--flash FILE`` gives the device an MCUboot flash in ``FILE`` (created erased): SMP
lines on the same port reach it (``printer-emu flash --port ...``), and an SMP reset
reboots the device. ``--no-sim`` makes a device without the simulation commands (as a
real one: its HELLO does not announce ``"sim"``).

User mistakes (an unknown board, an address in use, a bad ``--baud``) are one line on
stderr and exit status 2.

Wiring into the CLI (``emulator/cli/_main.py``, in ``build_parser``)::

    from emulator.device._serve import register as _register_serve
    _register_serve(sub)

``python -m emulator.device._serve ...`` runs the same command stand-alone.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import logging
import os
import select
import signal
import socket
import sys
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from hal import Scheduler
from hal._selector_clock import SelectorClock
from hal.serial._pty_yield import PtyYield

if TYPE_CHECKING:
    from boards import BoardConfig
    from emulator.device._virtual_device import VirtualDevice

_log = logging.getLogger("printer_emu.serve")

DEFAULT_BOARD = "lp-2000"
DEFAULT_HOST = "127.0.0.1"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_POLL_NS = 20_000_000
"""How often the pty server looks for a client while none has the pty open."""
_READ_BYTES = 65536
_WRITE_STALL_S = 0.5
"""How long a write waits for a reader that does not read before the bytes are dropped
(a UART drops them too; the link retransmits)."""
_PACE_SLICE_S = 0.002
"""With --baud, bytes move in slices of this much line time."""
_IAC = b"\xff"
_DESCRIPTION = (
    "Run an emulated board behind the serial board protocol on a pty, a TCP port or "
    "RFC 2217; the first line on stdout says where to connect."
)


class ServeError(Exception):
    """A user's mistake: one line on stderr, exit status 2."""


# -- options ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeOptions:
    board: str = DEFAULT_BOARD
    transport: str = "pty"
    """``pty``, ``tcp`` or ``rfc2217``."""
    host: str = DEFAULT_HOST
    port: int = 0
    baud: int | None = None
    trace: Path | None = None
    flash: Path | None = None
    sim: bool = True
    seed: int = 0
    verbose: bool = False


def _parse_address(text: str, what: str) -> tuple[str | None, int]:
    """``PORT``, ``HOST:PORT`` or ``[V6HOST]:PORT``."""
    host: str | None = None
    port_text = text
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or not text[close + 1 :].startswith(":"):
            raise ServeError(f"{what}: expected [HOST]:PORT, got {text!r}")
        host, port_text = text[1:close], text[close + 2 :]
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
    try:
        port = int(port_text)
    except ValueError:
        raise ServeError(f"{what}: expected [HOST:]PORT, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise ServeError(f"{what}: port must be in 0..65535, got {port}")
    return (host or None), port


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``serve`` options, on any parser."""
    p.add_argument(
        "--board", default=DEFAULT_BOARD, help=f"board name or TOML path (default {DEFAULT_BOARD})"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--pty", action="store_true", help="serve on a new pty and print its path (the default)"
    )
    where.add_argument(
        "--tcp",
        metavar="[HOST:]PORT",
        help="serve on a TCP port (0: any free port) and print socket://...",
    )
    where.add_argument(
        "--rfc2217",
        metavar="[HOST:]PORT",
        help="serve RFC 2217 on a TCP port and print rfc2217://...",
    )
    p.add_argument("--bind", metavar="ADDR", help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument(
        "--baud",
        type=int,
        metavar="N",
        help="pace bytes like a UART at N baud (N/10 bytes a second, both ways)",
    )
    p.add_argument("--trace", type=Path, metavar="FILE", help="trace the board (.vcd, .jsonl)")
    p.add_argument(
        "--flash",
        type=Path,
        metavar="FILE",
        help="MCUboot flash file (created erased); enables SMP on the port",
    )
    p.add_argument(
        "--no-sim",
        dest="sim",
        action="store_false",
        help="do not offer the simulation commands (as a real device)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the board's random draws")
    p.add_argument("-v", "--verbose", action="store_true", help="log sessions on stderr")


def options_from(args: argparse.Namespace) -> ServeOptions:
    """Check the parsed arguments; raises :class:`ServeError`."""
    transport, address = "pty", None
    if args.tcp is not None:
        transport, address = "tcp", _parse_address(args.tcp, "--tcp")
    elif args.rfc2217 is not None:
        transport, address = "rfc2217", _parse_address(args.rfc2217, "--rfc2217")
    host = args.bind or DEFAULT_HOST
    port = 0
    if address is not None:
        given, port = address
        if given is not None:
            if args.bind is not None and args.bind != given:
                raise ServeError(f"--bind {args.bind} contradicts --{transport} {given}:{port}")
            host = given
    elif args.bind is not None:
        raise ServeError("--bind needs --tcp or --rfc2217")
    if args.baud is not None and not 0 < args.baud <= 100_000_000:
        raise ServeError(f"--baud: expected a rate in 1..100000000, got {args.baud}")
    return ServeOptions(
        board=args.board,
        transport=transport,
        host=host,
        port=port,
        baud=args.baud,
        trace=args.trace,
        flash=args.flash,
        sim=args.sim,
        seed=args.seed,
        verbose=args.verbose,
    )


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``serve`` subcommand to ``printer-emu``'s subparsers."""
    p = subparsers.add_parser(
        "serve",
        help="serve an emulated board as a serial device (pty, TCP, RFC 2217)",
        description=_DESCRIPTION,
    )
    add_arguments(p)
    p.set_defaults(handler=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        return serve(options_from(args))
    except ServeError as exc:
        print(f"printer-emu: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ServeError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m emulator.device._serve``: the ``serve`` command on its own."""
    parser = _Parser(prog="printer-emu serve", description=_DESCRIPTION)
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
        return serve(options_from(args))
    except ServeError as exc:
        print(f"printer-emu: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


# -- line pacing -----------------------------------------------------------------------


class _Pacer:
    """One direction of a UART: bytes cannot cross faster than ``rate`` bytes a second."""

    def __init__(self, rate_bytes_per_s: float) -> None:
        self.rate = rate_bytes_per_s
        self.slice_bytes = max(1, int(rate_bytes_per_s * _PACE_SLICE_S))
        self._free_at = 0.0

    def restart(self) -> None:
        self._free_at = 0.0

    def reserve(self, size_bytes: int) -> float:
        """Put ``size_bytes`` more on the line; the seconds until their last byte has
        crossed (absolute deadlines, so a late wake-up does not accumulate)."""
        now = time.monotonic()
        self._free_at = max(self._free_at, now) + size_bytes / self.rate
        return self._free_at - now

    def reserve_ns(self, size_bytes: int) -> int:
        return round(self.reserve(size_bytes) * 1e9)

    def cross(self, size_bytes: int) -> None:
        """Sleep until ``size_bytes`` more have crossed the line."""
        delay = self.reserve(size_bytes)
        if delay > 0:
            time.sleep(delay)


class _PacedWriter:
    """A thread that writes what the device sends at the line rate."""

    def __init__(self, rate_bytes_per_s: float) -> None:
        self._pacer = _Pacer(rate_bytes_per_s)
        self._queue: deque[tuple[Callable[[bytes], None], bytes] | None] = deque()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="serve-paced-writer", daemon=True)
        self._thread.start()

    def put(self, sink: Callable[[bytes], None], data: bytes) -> None:
        with self._ready:
            self._queue.append((sink, data))
            self._ready.notify()

    def close(self) -> None:
        with self._ready:
            self._queue.clear()
            self._queue.append(None)
            self._ready.notify()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        size = self._pacer.slice_bytes
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                item = self._queue.popleft()
            if item is None:
                return
            sink, data = item
            for start in range(0, len(data), size):
                piece = data[start : start + size]
                self._pacer.cross(len(piece))
                sink(piece)


# -- connections --------------------------------------------------------------------------


class _Connection:
    """One client's byte stream (the scheduler's thread writes, an I/O thread reads)."""

    name = "connection"

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _write_fd(fd: int, data: bytes) -> bool:
    """Write all of ``data`` to a non-blocking fd; False if it had to be dropped (no
    reader, or one that has not read for :data:`_WRITE_STALL_S`)."""
    try:
        written = os.write(fd, data)  # the usual case: a frame or two, taken at once
    except BlockingIOError:
        written = 0
    except OSError:
        return False  # EIO: nobody has the pty open; EBADF: closed meanwhile
    if written == len(data):
        return True
    view = memoryview(data)[written:]
    deadline = 0.0
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            now = time.monotonic()
            if not deadline:
                deadline = now + _WRITE_STALL_S
            elif now >= deadline:
                return False
            select.select([], [fd], [], deadline - now)
            continue
        except OSError:
            return False  # EIO: nobody has the pty open; EBADF: closed meanwhile
        view = view[written:]
    return True


class _PtyConnection(_Connection):
    """The pty master. After each write the writing thread yields the CPU once, while
    yields are cheap (:class:`hal.serial._pty_yield.PtyYield`): Linux moves a pty's bytes from
    a kernel worker that otherwise waits for the device's bookkeeping after an answer
    (link timers, the loop's way back to ``select``)."""

    name = "pty"

    def __init__(self, master: int) -> None:
        self.fd = master
        self.dropped_bytes = 0
        self.yield_after_write = PtyYield()

    def send(self, data: bytes) -> None:
        if _write_fd(self.fd, data):
            self.yield_after_write()
        else:
            self.dropped_bytes += len(data)

    def close(self) -> None:
        # The pty stays; what was written after the client left must not greet the next.
        with contextlib.suppress(OSError):
            termios.tcflush(self.fd, termios.TCOFLUSH)


class _SocketConnection(_Connection):
    def __init__(self, sock: socket.socket, peer: str, rfc2217: bool) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.name = peer
        self.rfc2217 = rfc2217
        self.port_manager: Any = None
        self._lock = threading.Lock()
        self._closed = False

    def send(self, data: bytes) -> None:
        if self.rfc2217:
            data = data.replace(_IAC, _IAC + _IAC)
        self.write(data)

    def write(self, data: bytes) -> None:
        """Raw bytes to the socket; thread-safe (RFC 2217's PortManager calls it from the
        reader thread for Telnet negotiation)."""
        with self._lock:
            if self._closed:
                return
            view = memoryview(data)
            deadline = 0.0
            while view:
                try:
                    sent = self.sock.send(view)
                except BlockingIOError:
                    now = time.monotonic()
                    if not deadline:
                        deadline = now + _WRITE_STALL_S
                    elif now >= deadline:
                        return
                    select.select([], [self.sock], [], deadline - now)
                    continue
                except OSError:
                    return  # the peer is gone; the reader sees it and ends the session
                view = view[sent:]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()


class _PortState:
    """The serial port behind RFC 2217's PortManager: settings a client sets and reads
    back, modem lines that are always ready. Nothing here touches the device."""

    name = "printer-emu"

    def __init__(self, baudrate: int) -> None:
        self.baudrate = baudrate
        self.bytesize = 8
        self.parity = "N"
        self.stopbits = 1
        self.xonxoff = False
        self.rtscts = False
        self.break_condition = False
        self.dtr = True
        self.rts = True
        self.cts = True
        self.dsr = True
        self.ri = False
        self.cd = True

    def reset_input_buffer(self) -> None:
        return None

    def reset_output_buffer(self) -> None:
        return None


def _rfc2217_data(port_manager: Any, data: bytes) -> bytes:
    """The serial data in what an RFC 2217 client sent (Telnet commands answered by the
    PortManager). Bytes between IACs skip pyserial's per-byte filter."""
    from serial.rfc2217 import M_NORMAL

    out = bytearray()
    pos, n = 0, len(data)
    while pos < n:
        if port_manager.mode == M_NORMAL and port_manager.suboption is None:
            iac = data.find(_IAC, pos)
            if iac < 0:
                out += data[pos:]
                break
            out += data[pos:iac]
            pos = iac
        out += b"".join(port_manager.filter(data[pos : pos + 1]))
        pos += 1
    return bytes(out)


# -- servers -------------------------------------------------------------------------------


class _Server:
    """Moves bytes between the connection and the device, on the scheduler's thread.

    The scheduler runs on a :class:`~hal._selector_clock.SelectorClock`: the server
    watches its descriptors (the pty master, the listening socket, the client's socket)
    there, and the clock runs the server's handlers when they are readable; a handler
    reads and feeds the device directly. The device, ``_conn`` and the clock's watch list
    belong to the scheduler's thread; :meth:`start` posts the first watch there. With
    ``--baud``, what is read reaches the device when its last byte would have crossed the
    line (a scheduler timer; the descriptor is not read meanwhile, as a UART's FIFO
    pushes back), and what the device sends goes through the paced writer thread."""

    url = ""

    def __init__(
        self, device: VirtualDevice, scheduler: Scheduler, clock: SelectorClock, baud: int | None
    ) -> None:
        self._device = device
        self._scheduler = scheduler
        self._clock = clock
        self._conn: _Connection | None = None
        rate = baud / 10 if baud else None  # 8N1: ten bits a byte
        self._in_pacer = _Pacer(rate) if rate else None
        self._writer = _PacedWriter(rate) if rate else None
        self._read_bytes = self._in_pacer.slice_bytes if self._in_pacer else _READ_BYTES

    def start(self) -> None:
        """Begin serving (from any thread: the work is posted to the scheduler's)."""
        self._scheduler.post_threadsafe(self._start)

    def _start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Once the scheduler has stopped: close what the server opened."""
        if self._writer is not None:
            self._writer.close()

    # The scheduler's thread, all of it.

    def _made(self, conn: _Connection) -> None:
        _log.info("client connected (%s)", conn.name)
        if self._in_pacer is not None:
            self._in_pacer.restart()
        self._conn = conn
        # Unpaced, the device writes to the connection itself: one call less per answer.
        self._device.connection_made(self._send if self._writer is not None else conn.send)

    def _lost(self, conn: _Connection) -> None:
        if self._conn is conn:
            _log.info("client gone (%s)", conn.name)
            self._conn = None
            self._device.connection_lost()
        conn.close()

    def _deliver(self, conn: _Connection, fd: int, handler: Callable[[], None],
                 data: bytes) -> None:
        """Hand ``data`` read from ``fd`` to the device: now, or with ``--baud`` once it
        has crossed the line (``fd`` unwatched until then, ``handler`` watches it
        again)."""
        pacer = self._in_pacer
        if pacer is None:
            self._device.receive(data)
            return
        delay_ns = pacer.reserve_ns(len(data))
        if delay_ns <= 0:
            self._device.receive(data)
            return
        self._clock.unwatch(fd)
        self._scheduler.call_later(delay_ns, partial(self._arrived, conn, fd, handler, data))

    def _arrived(self, conn: _Connection, fd: int, handler: Callable[[], None],
                 data: bytes) -> None:
        if self._conn is not conn:
            return  # the session ended while the bytes were on the line
        self._device.receive(data)
        if self._conn is conn:  # receiving may not end it, but be sure
            self._clock.watch(fd, handler)

    def _send(self, data: bytes) -> None:
        """The device's writer on a paced line: through the paced writer thread."""
        conn = self._conn
        writer = self._writer
        if conn is not None and writer is not None:
            writer.put(conn.send, data)


class _PtyServer(_Server):
    """The pty master, watched while a client has the slave open. Without a client the
    master reads EIO at once (readable for ever), so it is not watched then: a timer
    looks every :data:`_POLL_S` whether a client has come (the read says ``EAGAIN``)."""

    def __init__(
        self, device: VirtualDevice, scheduler: Scheduler, clock: SelectorClock, baud: int | None
    ) -> None:
        super().__init__(device, scheduler, clock, baud)
        master, slave = os.openpty()
        self.path = os.ttyname(slave)
        # Raw on the master: the pair's line discipline (no echo, no CR/LF translation)
        # stays raw for every client that opens the slave after we close ours. We keep no
        # slave open, so a client that closes it shows as EIO on the master.
        tty.setraw(master)
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        self._pty = _PtyConnection(master)
        self._failed = False
        self.url = self.path

    def close(self) -> None:
        super().close()
        with contextlib.suppress(OSError):
            os.close(self._master)

    def _start(self) -> None:
        self._look_for_client()

    def _read(self) -> bytes | None:
        """What the master holds: bytes, ``b""`` when no client has the slave open, or
        ``None`` when a client is there and quiet."""
        try:
            return os.read(self._master, self._read_bytes)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EINTR):
                # Not a pty any more (closed under us): stop serving it.
                _log.error("pty read failed: %s", exc)
                self._clock.unwatch(self._master)
                self._failed = True
                return None
            return b""

    def _look_for_client(self) -> None:
        data = self._read()
        if self._failed:
            return
        if data == b"":
            self._scheduler.call_later(_POLL_NS, self._look_for_client)
            return
        self._made(self._pty)
        self._clock.watch(self._master, self._on_readable)
        if data is not None:
            self._deliver(self._pty, self._master, self._on_readable, data)

    def _on_readable(self) -> None:
        data = self._read()
        if data is None:
            return
        if not data:  # the client closed the slave
            self._clock.unwatch(self._master)
            self._lost(self._pty)
            self._scheduler.call_later(_POLL_NS, self._look_for_client)
            return
        self._deliver(self._pty, self._master, self._on_readable, data)


class _TcpServer(_Server):
    """The listening socket is watched while no client is connected; one client at a
    time (others wait in the listen backlog until it leaves), its socket watched while
    it is there."""

    def __init__(
        self,
        device: VirtualDevice,
        scheduler: Scheduler,
        clock: SelectorClock,
        baud: int | None,
        host: str,
        port: int,
        rfc2217: bool,
    ) -> None:
        super().__init__(device, scheduler, clock, baud)
        self._rfc2217 = rfc2217
        self._baud = baud or 115200
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._listener = socket.create_server((host, port), family=family, backlog=4)
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._listener.setblocking(False)
        bound_host, bound_port = self._listener.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"{'rfc2217' if rfc2217 else 'socket'}://{shown}:{bound_port}"
        self._current: _SocketConnection | None = None

    def close(self) -> None:
        super().close()
        if self._current is not None:
            self._current.close()
        self._listener.close()

    def _start(self) -> None:
        self._clock.watch(self._listener.fileno(), self._on_accept)

    def _on_accept(self) -> None:
        try:
            sock, peer = self._listener.accept()
        except OSError:  # BlockingIOError: the client gave up meanwhile
            return
        self._clock.unwatch(self._listener.fileno())
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _SocketConnection(sock, f"{peer[0]}:{peer[1]}", self._rfc2217)
        self._current = conn
        if self._rfc2217:
            from serial.rfc2217 import PortManager

            # Its constructor starts the Telnet negotiation through conn.write.
            conn.port_manager = PortManager(_PortState(self._baud), conn)
        self._made(conn)
        self._clock.watch(conn.fd, partial(self._on_readable, conn))

    def _on_readable(self, conn: _SocketConnection) -> None:
        try:
            data = conn.sock.recv(self._read_bytes)
        except BlockingIOError:
            return
        except (OSError, ValueError):
            data = b""
        if not data:  # the client closed the connection (or it failed)
            self._end(conn)
            return
        pm = conn.port_manager
        if pm is not None:
            try:
                data = _rfc2217_data(pm, data)
            except Exception:  # a client's Telnet that pyserial cannot take: drop it,
                _log.exception("RFC 2217 from %s", conn.name)  # not the device
                self._end(conn)
                return
            if not data:
                return
        self._deliver(conn, conn.fd, partial(self._on_readable, conn), data)

    def _end(self, conn: _SocketConnection) -> None:
        self._clock.unwatch(conn.fd)  # before it is closed
        self._lost(conn)  # closes it
        if self._current is conn:
            self._current = None
        self._clock.watch(self._listener.fileno(), self._on_accept)


# -- the process -------------------------------------------------------------------------


_MAX_DEFAULT_FLASHES = 64


def default_flash_dir() -> Path:
    """Where devices keep their flash when ``--flash`` is not given: the user's state
    directory."""
    import platformdirs

    return Path(platformdirs.user_state_dir("printer-emu"))


def _lock(path: Path) -> IO[str] | None:
    """An exclusive flock on ``path``'s lock file, or None if another process holds it.
    The kernel drops it when the holder dies: no stale locks."""
    lock: IO[str] = open(path.with_name(path.name + ".lock"), "w")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def _claim_flash(board: str, path: Path | None) -> tuple[Path, IO[str]]:
    """The flash file to use, locked. Without ``--flash``: ``<board>.flash`` in the
    state directory, or, while another device of that board runs, ``<board>-2.flash``
    and so on — each device instance keeps its own flash across restarts."""
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = _lock(path)
            if lock is None:
                raise ServeError(f"--flash {path}: in use by another printer-emu serve")
            return path, lock
        directory = default_flash_dir()
        directory.mkdir(parents=True, exist_ok=True)
        for n in range(1, _MAX_DEFAULT_FLASHES + 1):
            candidate = directory / (f"{board}.flash" if n == 1 else f"{board}-{n}.flash")
            lock = _lock(candidate)
            if lock is not None:
                return candidate, lock
    except OSError as exc:
        raise ServeError(f"flash in {exc.filename}: {exc.strerror}") from None
    raise ServeError(f"{_MAX_DEFAULT_FLASHES} devices of board {board} already run here; "
                     "give this one --flash FILE")


def _open_flash(config: BoardConfig, path: Path | None) -> tuple[Any, IO[str]]:
    """The device's MCUboot flash (policy from the board file's ``[flash]`` table),
    locked for this process; a file made here gets the factory image (unless the board
    names a signing key: only its owner can sign one)."""
    from emulator.flash._device import FlashDevice
    from emulator.flash._factory_image import factory_image
    from emulator.flash._mcuboot import BootPolicy
    from emulator.flash._storage import FlashError, FlashLayout

    flash_cfg = config.flash
    flash_path, lock = _claim_flash(config.name, path)
    _log.info("flash: %s", flash_path)
    fresh = not flash_path.exists() or flash_path.stat().st_size == 0
    keys = (Path(flash_cfg.signing_key).read_bytes(),) if flash_cfg.signing_key else ()
    try:
        policy = BootPolicy(trusted_keys_pem=keys, vendor=flash_cfg.vendor or None,
                            board=config.name if flash_cfg.vendor else None)
        layout = FlashLayout(flash_cfg.sector_size_bytes, flash_cfg.slot_sectors)
        flash = FlashDevice(flash_path, layout=layout, policy=policy)
        if fresh and not keys:
            flash.provision(factory_image(flash_cfg.vendor or "printer-emu", config.name))
    except (OSError, ValueError, FlashError) as exc:
        lock.close()
        raise ServeError(f"--flash {flash_path}: {exc}") from None
    return flash, lock


def serve(options: ServeOptions) -> int:
    """Run the server until SIGINT or SIGTERM; the exit status. Raises
    :class:`ServeError` for a user's mistake, before anything is printed on stdout."""
    from boards import BoardFileError, load_board
    from emulator.board import EmulatedBoard
    from emulator.device._virtual_device import VirtualDevice

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if options.verbose else logging.WARNING,
        format="printer-emu serve: %(message)s",
    )
    try:
        config = load_board(options.board)
    except BoardFileError as exc:
        raise ServeError(str(exc)) from None

    flash, flash_lock = _open_flash(config, options.flash)

    clock = SelectorClock()
    scheduler = Scheduler(clock)
    board = EmulatedBoard(config, scheduler, seed=options.seed)
    recorder = None
    server: _Server | None = None
    device = None
    try:
        if options.trace is not None:
            from emulator.trace._recorder import start_board_trace

            try:
                recorder = start_board_trace(board, options.trace)
            except (OSError, ValueError) as exc:
                raise ServeError(f"--trace {options.trace}: {exc}") from None
        device = VirtualDevice(board, sim=options.sim, flash=flash, baud=options.baud)
        if options.transport == "pty":
            server = _PtyServer(device, scheduler, clock, options.baud)
        else:
            server = _TcpServer(
                device,
                scheduler,
                clock,
                options.baud,
                options.host,
                options.port,
                rfc2217=options.transport == "rfc2217",
            )
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


def _run(scheduler: Scheduler, server: _Server) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
