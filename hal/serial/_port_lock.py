"""One host per device: the lock every host tool takes before it opens a device's port.

Contract
--------
* A device is named by :func:`device_key`: the resolved real path of a device file
  (``/dev/ttyUSB0`` and a symlink to it are one device), or ``scheme://host:port`` of a
  pyserial URL (its options after ``?`` do not make another device).
* :func:`lock_port` takes the device's lock or raises :class:`PortInUse`, whose message
  is one line naming the holder: ``/dev/pts/3 is in use by pid 4242 (printer-emu run)``.
  The lock is a ``flock`` on a file in :func:`lock_dir` that holds the holder's pid and
  what it is; the kernel releases a ``flock`` when its holder dies, so a dead holder's
  lock is taken over by the next opener, never left stale.
* Within one process the lock is re-entrant (the pytest plugin holds it for a test and
  the ``SerialBoard`` it makes takes it again); it is released when the last holder in
  the process releases it. Descriptors are close-on-exec: a child never inherits it.

``SerialBoard`` (through :class:`hal.serial.PortTransport`), ``printer-emu run --port``,
``printer-emu flash`` and the pytest plugin all take this one lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from hal.serial._errors import PortUnavailable

_LOCK_DIR_ENV = "PRINTER_EMU_LOCK_DIR"


class PortInUse(PortUnavailable):
    """Another process holds the device's lock (see the module docstring)."""

    def __init__(self, url: str, key: str, pid: int | None, holder: str) -> None:
        super().__init__(url, "in use")
        who = f"pid {pid}" if pid is not None else "another process"
        self.args = (f"{key} is in use by {who}" + (f" ({holder})" if holder else ""),)
        self.key = key
        self.pid = pid
        self.holder = holder


def device_key(url: str) -> str:
    """The name of the device ``url`` opens (see the module docstring)."""
    if "://" in url:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return os.path.realpath(url)


def lock_dir() -> Path:
    """Where the locks live: ``$PRINTER_EMU_LOCK_DIR``, else ``printer-emu-locks`` in the
    temp dir (one place for every user of the machine, like the devices themselves)."""
    override = os.environ.get(_LOCK_DIR_ENV)
    return Path(override) if override else Path(tempfile.gettempdir()) / "printer-emu-locks"


def _lock_path(key: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", key)[-60:]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return lock_dir() / f"{name}-{digest}.lock"


def _this_process() -> str:
    """What this process is, in a few words (``printer-emu run``, ``pytest``)."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if len(argv) >= 3 and argv[1] == "-m":
        words = [argv[2], *argv[3:4]]
    else:
        words = [Path(sys.argv[0]).name, *sys.argv[1:2]]
    words = ["printer-emu" if w == "emulator" else w for w in words]
    return " ".join(w for w in words if w and not w.startswith("-"))


class PortLock:
    """A held device lock; :meth:`release` (or leaving the ``with``) lets it go."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._released = False

    def release(self) -> None:
        """Let the lock go (idempotent)."""
        if self._released:
            return
        self._released = True
        _release(self.key)

    def __enter__(self) -> PortLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


_held: dict[str, list[int]] = {}
"""key -> [descriptor, holders in this process]."""
_held_mutex = threading.Lock()


def _open_lock_file(path: Path) -> int:
    directory = path.parent
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # shared by every user, like /tmp itself
            directory.chmod(0o1777)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    with contextlib.suppress(OSError):  # another user's tool must be able to take it over
        os.fchmod(fd, 0o666)
    return fd


def _read_holder(fd: int) -> tuple[int | None, str]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace")
    pid_text, _, holder = text.partition("\n")
    pid = int(pid_text) if pid_text.strip().isdigit() else None
    return pid, holder.strip()


def lock_port(url: str, holder: str | None = None) -> PortLock:
    """Take the lock of the device ``url`` opens, or raise :class:`PortInUse` (see the
    module docstring). ``holder`` says what the taker is (default: this process's
    command, e.g. ``printer-emu run``)."""
    key = device_key(url)
    with _held_mutex:
        mine = _held.get(key)
        if mine is not None:
            mine[1] += 1
            return PortLock(key)
        path = _lock_path(key)
        try:
            fd = _open_lock_file(path)
        except OSError as exc:
            raise PortUnavailable(url, f"cannot take its lock {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            try:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise PortUnavailable(url, f"cannot take its lock {path}: {exc}") from exc
                pid, who = _read_holder(fd)
            finally:
                os.close(fd)
            raise PortInUse(url, key, pid, who) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{holder or _this_process()}\n".encode(), 0)
        _held[key] = [fd, 1]
        return PortLock(key)


def _release(key: str) -> None:
    with _held_mutex:
        mine = _held.get(key)
        if mine is None:
            return
        mine[1] -= 1
        if mine[1] == 0:
            del _held[key]
            os.close(mine[0])  # closing releases the flock


__all__ = ["PortInUse", "PortLock", "device_key", "lock_dir", "lock_port"]
