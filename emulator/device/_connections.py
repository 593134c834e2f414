"""One client's byte stream, as ``printer-emu serve`` writes to it: the pty master, or a
TCP socket (optionally speaking RFC 2217's Telnet).

The scheduler's thread writes (:meth:`Connection.send`); the server reads. A write never
blocks for long: bytes a client does not read within :data:`WRITE_STALL_S` are dropped,
as a UART drops them (the link retransmits).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import termios
import threading
import time
from typing import Any

from hal.serial import PtyYield

WRITE_STALL_S = 0.5
"""How long a write waits for a reader that does not read before the bytes are dropped."""
_IAC = b"\xff"


class Connection:
    """One client's byte stream (the scheduler's thread writes, an I/O thread reads)."""

    name = "connection"

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _write_fd(fd: int, data: bytes) -> bool:
    """Write all of ``data`` to a non-blocking fd; False if it had to be dropped (no
    reader, or one that has not read for :data:`WRITE_STALL_S`)."""
    view = memoryview(data)
    deadline = 0.0
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            now = time.monotonic()
            if not deadline:
                deadline = now + WRITE_STALL_S
            elif now >= deadline:
                return False
            select.select([], [fd], [], deadline - now)
            continue
        except OSError:
            return False  # EIO: nobody has the pty open; EBADF: closed meanwhile
        view = view[written:]
    return True


class PtyConnection(Connection):
    """The pty master. After each write the writing thread yields the CPU once, while
    yields are cheap (:class:`hal.serial.PtyYield`): Linux moves a pty's bytes from
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


class SocketConnection(Connection):
    """A client's TCP socket; with RFC 2217, the device's bytes escaped for Telnet (and
    the client's Telnet commands answered by :attr:`port_manager`)."""

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
                        deadline = now + WRITE_STALL_S
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


class PortState:
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


def rfc2217_data(port_manager: Any, data: bytes) -> bytes:
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
