"""The host's line to a device: a pyserial port read by one thread, written without
blocking the scheduler.

* One **reader thread** reads the port and hands every chunk to the scheduler's thread
  with :meth:`Scheduler.post_threadsafe`; nothing else crosses threads on the way in.
* Writes never block the scheduler: on a plain serial device or pty the bytes go out
  with one non-blocking ``write(2)`` when the line is idle (on a Linux pty followed by
  one ``sched_yield`` while that is cheap, see :mod:`hal.serial._pty_yield`); whatever does
  not fit, and everything on other kinds of port (sockets, RFC 2217) or on a *paced*
  line, goes to a **writer thread** (which coalesces what a slow line has not taken yet).
  ``pace=True`` makes the writer emulate a UART at ``baud`` (:class:`LinePacer`; a pty
  or a socket ignores the baud rate). ``socket://`` ports get ``TCP_NODELAY`` (pyserial
  leaves Nagle's algorithm on, which delays small frames by tens of milliseconds).
* After the line fails, the reader thread reopens it every ``reopen_interval_s``.
* **One host per device**: the transport holds the device's lock
  (:func:`hal.serial.lock_port`) from construction to :meth:`PortTransport.close`, and
  opens a device file (a tty, a pty) with pyserial's ``exclusive=True`` (a ``flock`` on
  it); URLs (``socket://``, ``rfc2217://``) have no such option, the lock serves them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import serial

from hal import Scheduler
from hal.serial._errors import PortUnavailable
from hal.serial._pacer import LinePacer
from hal.serial._port_lock import lock_port
from hal.serial._pty_yield import PtyYield

log = logging.getLogger("printer_emu.serial_board")

_READ_BYTES = 65536


class Transport(Protocol):
    """Bytes to and from the device. ``start`` hands it three callbacks that it must
    call **on the scheduler's thread** (a threaded transport posts them with
    :meth:`Scheduler.post_threadsafe`): ``on_bytes(data)`` for what arrived,
    ``on_lost(error)`` when the line failed, ``on_reopened()`` when it works again.
    ``write`` is called on the scheduler's thread and must not block it."""

    @property
    def name(self) -> str: ...

    def start(
        self,
        on_bytes: Callable[[bytes], None],
        on_lost: Callable[[Exception], None],
        on_reopened: Callable[[], None],
    ) -> None: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


def is_linux_pty(fd: int | None) -> bool:
    """Whether ``fd`` is a Linux pty (whose bytes reach the reader via a kernel worker)."""
    if fd is None or not sys.platform.startswith("linux"):
        return False
    try:
        return os.ttyname(fd).startswith("/dev/pts/")
    except OSError:
        return False


def open_port(url: str, baud: int | None, timeout_s: float) -> Any:
    """``serial.serial_for_url(url)``, with ``TCP_NODELAY`` on a ``socket://`` port and
    ``exclusive=True`` on a device file. Raises :class:`PortUnavailable`."""
    kwargs: dict[str, Any] = {"timeout": timeout_s}
    if "://" not in url:
        kwargs["exclusive"] = True
    if baud is not None:
        kwargs["baudrate"] = baud
    try:
        port = serial.serial_for_url(url, **kwargs)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortUnavailable(url, str(exc) or type(exc).__name__) from exc
    # pyserial's socket:// leaves Nagle's algorithm on: a small frame would wait for the
    # peer's delayed ack (tens of ms), far beyond the firmware's edge margins.
    sock = getattr(port, "_socket", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return port


class PortTransport:
    """A pyserial port with a reader thread and, where needed, a writer thread (see the
    module docstring).

    Raises :class:`PortUnavailable` when the port cannot be opened. After the line fails
    it is reopened every ``reopen_interval_s`` until :meth:`close` (``reopen=False``:
    never).

    On a Linux pty the scheduler's thread yields the CPU once after each direct
    ``write(2)``, while yields are cheap (:class:`hal.serial.PtyYield`: the kernel moves
    a pty's bytes from a worker that otherwise waits for our bookkeeping after the
    write)."""

    _READ_TIMEOUT_S = 0.05

    def __init__(
        self,
        url: str,
        scheduler: Scheduler,
        *,
        baud: int | None = None,
        pace: bool = False,
        reopen: bool = True,
        reopen_interval_s: float = 0.25,
    ) -> None:
        if pace and not baud:
            raise ValueError("pace=True needs a baud rate")
        self._url = url
        self._scheduler = scheduler
        self._baud = baud
        self._pacer = LinePacer.for_baud(baud) if pace and baud else None
        self._reopen = reopen
        self._reopen_interval_s = reopen_interval_s
        self._port: Any
        self._write_fd: int | None
        """The descriptor :meth:`write` writes to directly, or ``None`` (writer thread)."""
        self._yield_after_write: PtyYield
        self.bytes_read = 0
        self._bytes_read_at_open = 0
        """What had been read when the line was (re)opened: none since means busy."""
        self._device_lock = lock_port(url)
        try:
            self._adopt(open_port(url, baud, self._READ_TIMEOUT_S))
        except BaseException:
            self._device_lock.release()
            raise
        # write() takes the plain lock, not the Condition (Python __enter__): ~5-10 us after idle.
        self._mutex = threading.Lock()
        self._lock = threading.Condition(self._mutex)
        self._queue: deque[bytes] = deque()
        self._writing = False
        self._line_ok = True
        self._closing = threading.Event()
        self._abort_r, self._abort_w = os.pipe()
        self._reader: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._on_bytes: Callable[[bytes], None]
        self._on_lost: Callable[[Exception], None]
        self._on_reopened: Callable[[], None]
        self.bytes_written = 0
        self.bytes_dropped = 0
        """Written while the line was down (lost, as they would be on a cut cable)."""

    @property
    def name(self) -> str:
        return self._url

    @property
    def port(self) -> Any:
        """The pyserial object in use (it changes when the line is reopened)."""
        return self._port

    def _adopt(self, port: Any) -> None:
        """Make ``port`` the line, with what the write path derives from it."""
        self._port = port
        self._bytes_read_at_open = self.bytes_read
        fd = self._fd()
        self._write_fd = None if self._pacer is not None else fd
        self._yield_after_write = PtyYield(is_linux_pty(fd))

    def _fd(self) -> int | None:
        """The file descriptor to read and write directly: plain posix serial ports and
        ptys only (``spy://`` and the rest keep their own logic in read/write)."""
        port = self._port
        if type(port) is serial.Serial and getattr(port, "fd", None) is not None:
            return int(port.fd)
        return None

    def start(
        self,
        on_bytes: Callable[[bytes], None],
        on_lost: Callable[[Exception], None],
        on_reopened: Callable[[], None],
    ) -> None:
        self._on_bytes = on_bytes
        self._on_lost = on_lost
        self._on_reopened = on_reopened
        self._reader = threading.Thread(
            target=self._read_loop, name=f"serial-reader {self._url}", daemon=True
        )
        self._writer = threading.Thread(
            target=self._write_loop, name=f"serial-writer {self._url}", daemon=True
        )
        self._reader.start()
        self._writer.start()

    # -- writing (scheduler thread in, writer thread out) -----------------------------

    def write(self, data: bytes) -> None:
        with self._mutex:
            if not self._line_ok:  # the line failed, or close() began
                self.bytes_dropped += len(data)
                return
            fd = self._write_fd
            written = False
            if fd is not None and not self._queue and not self._writing:
                try:
                    n = os.write(fd, data)
                except BlockingIOError:
                    n = 0
                except OSError:
                    self.bytes_dropped += len(data)
                    return  # the line is gone; the reader reports it
                self.bytes_written += n
                written = n >= len(data)
                if not written:
                    data = data[n:]
            if not written:
                self._queue.append(data)
                self._lock.notify()
                return
        self._yield_after_write()  # let the pty's worker move the bytes now

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing.is_set():
                    self._lock.wait()
                if self._closing.is_set():
                    return
                data = b"".join(self._queue)
                self._queue.clear()
                self._writing = True
                port = self._port
            try:
                if self._pacer is not None:
                    self._pacer.send(data, port.write, self._closing.wait)
                else:
                    port.write(data)
                self.bytes_written += len(data)
            except Exception as exc:  # the line failed: the reader reports it
                log.debug("write to %s failed: %s", self._url, exc)
            finally:
                with self._lock:
                    self._writing = False

    # -- reading (reader thread) --------------------------------------------------------

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            try:
                fd = self._fd()
                if fd is not None:
                    self._read_fd(fd)
                    continue
                data = self._read_port()
            except Exception as exc:
                if self._closing.is_set():
                    return
                self._line_lost(self._busy_or(exc))
                if not self._reopen or not self._reopen_line():
                    return
                continue
            if data:
                self.bytes_read += len(data)
                self._scheduler.post_threadsafe(functools.partial(self._on_bytes, data))

    def _busy_or(self, exc: Exception) -> Exception:
        """A network device that closes the connection before saying a word is busy
        (``serve --tcp``'s rule: another host is connected); otherwise ``exc``."""
        if "://" in self._url and self.bytes_read == self._bytes_read_at_open:
            busy: Exception = serial.SerialException(
                f"device at {self._url} is busy (another host is connected)")
            return busy
        return exc

    def _read_fd(self, fd: int) -> None:
        """Read a plain serial device or pty: returns when :meth:`close` aborts the
        wait, raises when the line fails. After handing bytes to the scheduler it goes
        straight back to ``select(2)``, which releases the GIL the woken scheduler
        thread needs next."""
        while True:
            ready, _, _ = select.select([fd, self._abort_r], (), ())
            if self._abort_r in ready:
                return
            try:
                data = os.read(fd, _READ_BYTES)
            except BlockingIOError:
                continue
            if not data:
                raise serial.SerialException("device disconnected (end of file)")
            self.bytes_read += len(data)
            self._scheduler.post_threadsafe(functools.partial(self._on_bytes, data))

    def _read_port(self) -> bytes:
        """Read any other pyserial port (its own timeout bounds the wait)."""
        port = self._port
        data = bytes(port.read(1))
        if data:
            waiting = port.in_waiting
            if waiting:
                data += bytes(port.read(waiting))
        return data

    def _line_lost(self, exc: Exception) -> None:
        with self._lock:
            self._line_ok = False
            self._queue.clear()
        # Tell the scheduler first: closing can take a while (pyserial's socket:// close
        # sleeps 0.3 s "for quick reconnects"), and the firmware must know at once.
        self._scheduler.post_threadsafe(functools.partial(self._on_lost, exc))
        with contextlib.suppress(Exception):
            self._port.close()

    def _reopen_line(self) -> bool:
        while not self._closing.wait(self._reopen_interval_s):
            try:
                port = open_port(self._url, self._baud, self._READ_TIMEOUT_S)
            except PortUnavailable:
                continue
            with self._lock:
                if self._closing.is_set():
                    with contextlib.suppress(Exception):
                        port.close()
                    return False
                self._adopt(port)
                self._line_ok = True
            self._scheduler.post_threadsafe(self._on_reopened)
            return True
        return False

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop both threads and close the port. Idempotent."""
        if self._closing.is_set():
            return
        with self._lock:
            self._closing.set()
            self._line_ok = False
            self._lock.notify_all()
        with contextlib.suppress(OSError):
            os.write(self._abort_w, b"x")
        port = self._port
        cancel = getattr(port, "cancel_read", None)
        if cancel is not None:
            with contextlib.suppress(Exception):
                cancel()
        for thread in (self._reader, self._writer):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=2.0)
        with contextlib.suppress(Exception):
            self._port.close()
        for fd in (self._abort_r, self._abort_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._device_lock.release()

