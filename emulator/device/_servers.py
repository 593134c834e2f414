"""The servers of ``printer-emu serve``: bytes between a client's connection and the
virtual device, on the scheduler's thread.

The scheduler runs on a :class:`~hal.SelectorClock`: a server watches its descriptors
(the pty master, the listening socket, the client's socket) there, and the clock runs
the server's handlers when they are readable; a handler reads and feeds the device
directly, which writes its answer to the connection itself (no hand-off between threads
on a request's way through).

* :class:`PtyServer`: a raw pty; the host opens the printed path. While no client has
  it open the master reads EIO at once, so it is looked at every 20 ms instead of
  watched; a client is there when the read says ``EAGAIN`` or brings bytes. A client
  that closes the pty is noticed (EIO) and ends the session.
* :class:`TcpServer`: one client at a time; each connection is a fresh session. A
  second client while one is served is **busy**: its connection is accepted and closed
  at once, before a byte is written (the host reports the device busy) — unless the
  first one has closed and only its last bytes and EOF were still unread (a host that
  reconnects at once): those are read and its session ended first. A client that
  has said nothing valid (no frame of the link, no SMP line) for the link's dead time is
  dropped, so an idle client cannot hold the device. With RFC 2217 it speaks Telnet
  through pyserial's ``serial.rfc2217.PortManager``.

With ``--baud`` both directions are paced by a :class:`~hal.serial.LinePacer` (8N1):
what is read reaches the device when its last byte would have crossed the line (a
scheduler timer; the descriptor is not read meanwhile, as a UART's FIFO pushes back),
and what the device sends goes through a writer thread that paces it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
import tty
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from emulator.device._connections import (
    Connection,
    PortState,
    PtyConnection,
    SocketConnection,
    rfc2217_data,
)
from emulator.device._serve_options import ServeError
from hal import Scheduler, SelectorClock
from hal.serial import LinePacer

if TYPE_CHECKING:
    from emulator.device._virtual_device import VirtualDevice

_log = logging.getLogger("printer_emu.serve")

_POLL_NS = 20_000_000
"""How often the pty server looks for a client while none has the pty open."""
_READ_BYTES = 65536


class _PacedWriter:
    """A thread that writes what the device sends at the line rate."""

    def __init__(self, baud: int) -> None:
        self._pacer = LinePacer.for_baud(baud)
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
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                item = self._queue.popleft()
            if item is None:
                return
            sink, data = item
            self._pacer.send(data, sink)


class Server:
    """Moves bytes between the connection and the device (see the module docstring).
    The device, the connection and the clock's watch list belong to the scheduler's
    thread; :meth:`start` posts the first watch there."""

    url = ""

    def __init__(
        self, device: VirtualDevice, scheduler: Scheduler, clock: SelectorClock, baud: int | None
    ) -> None:
        self._device = device
        self._scheduler = scheduler
        self._clock = clock
        self._conn: Connection | None = None
        self._in_pacer = LinePacer.for_baud(baud) if baud else None
        self._writer = _PacedWriter(baud) if baud else None
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

    def _made(self, conn: Connection) -> None:
        _log.info("client connected (%s)", conn.name)
        if self._in_pacer is not None:
            self._in_pacer.restart()
        self._conn = conn
        # Unpaced, the device writes to the connection itself; paced, to the writer thread.
        self._device.connection_made(self._send if self._writer is not None else conn.send)

    def _lost(self, conn: Connection) -> None:
        if self._conn is conn:
            _log.info("client gone (%s)", conn.name)
            self._conn = None
            self._device.connection_lost()
        conn.close()

    def _deliver(self, conn: Connection, fd: int, handler: Callable[[], None],
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

    def _arrived(self, conn: Connection, fd: int, handler: Callable[[], None],
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


class PtyServer(Server):
    """The pty master, watched while a client has the slave open. Without a client the
    master reads EIO at once (readable for ever), so it is not watched then: a timer
    looks every :data:`_POLL_NS` whether a client has come (the read says ``EAGAIN``)."""

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
        self._pty = PtyConnection(master)
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


_DRAIN_READS = 4
"""Reads of a closing client's last bytes before a newcomer is told busy."""


def _peer_state(sock: socket.socket) -> str:
    """``open`` (nothing to read), ``data`` (bytes to read) or ``closed`` (EOF next)."""
    try:
        return "closed" if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"" else "data"
    except BlockingIOError:
        return "open"
    except OSError:
        return "closed"


class TcpServer(Server):
    """The listening socket is always watched; one client at a time, its socket watched
    while it is there; a second one is refused, an idle one dropped (see the module
    docstring)."""

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
        self._current: SocketConnection | None = None

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
        self._finish_if_gone()
        if self._current is not None:
            # Busy: closed before a byte is written, which the host reports as busy.
            _log.info("busy: refused %s:%s (%s is connected)", peer[0], peer[1],
                      self._current.name)
            sock.close()
            return
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = SocketConnection(sock, f"{peer[0]}:{peer[1]}", self._rfc2217)
        self._current = conn
        if self._rfc2217:
            from serial.rfc2217 import PortManager

            # Its constructor starts the Telnet negotiation through conn.write.
            conn.port_manager = PortManager(PortState(self._baud), conn)
        self._made(conn)
        self._clock.watch(conn.fd, partial(self._on_readable, conn))
        self._scheduler.call_later(self._device.dead_after_ns, partial(self._check_idle, conn))

    def _finish_if_gone(self) -> None:
        """Before a newcomer is told busy: if the current client has closed and we had not
        read it yet (a host that closes and reconnects at once), read what it sent and
        end its session. Bounded: at most a few reads; not on a paced line, whose reads
        wait for the line."""
        if self._in_pacer is not None:
            return
        for _ in range(_DRAIN_READS):
            conn = self._current
            if conn is None:
                return
            state = _peer_state(conn.sock)
            if state == "open":
                return
            if state == "closed":
                self._end(conn)
                return
            self._on_readable(conn)  # bytes before its EOF: the device gets them first

    def _check_idle(self, conn: SocketConnection) -> None:
        """Drop ``conn`` if it has said nothing valid for the link's dead time."""
        if self._current is not conn:
            return
        device = self._device
        quiet_until_ns = device.valid_heard_ns + device.dead_after_ns
        if self._scheduler.now_ns < quiet_until_ns:
            self._scheduler.call_at(quiet_until_ns, partial(self._check_idle, conn))
            return
        _log.info("dropped %s: nothing valid for %d ms", conn.name,
                  device.dead_after_ns // 1_000_000)
        self._end(conn)

    def _on_readable(self, conn: SocketConnection) -> None:
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
                data = rfc2217_data(pm, data)
            except Exception as exc:
                # A client's Telnet pyserial cannot take (a short suboption is a
                # struct.error): drop the client, not the device; one line, no traceback.
                _log.warning("RFC 2217 from %s: malformed Telnet (%s: %s); dropped",
                             conn.name, type(exc).__name__, exc)
                self._end(conn)
                return
            if not data:
                return
        self._deliver(conn, conn.fd, partial(self._on_readable, conn), data)

    def _end(self, conn: SocketConnection) -> None:
        self._clock.unwatch(conn.fd)  # before it is closed
        self._lost(conn)  # closes it
        if self._current is conn:
            self._current = None
