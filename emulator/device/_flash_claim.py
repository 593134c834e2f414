"""The virtual device's flash: which file, locked for one process, made with the factory
image when new.

Each device instance keeps its own flash across restarts: ``--flash FILE``, or
``<board>.flash`` in the user's state directory (``<board>-2.flash`` and so on while
another device of that board runs). The lock is an exclusive ``flock`` on the flash file
itself, so it holds per file, not per name: a symlink or a hard link to a flash another
``serve`` has is refused too. The kernel drops it when the holder dies, so no lock goes
stale. ``--flash`` never creates directories: a path in a directory that does not exist
is a typo to report, not one to make.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING

from boards import BoardConfig
from emulator.device._serve_options import ServeError

if TYPE_CHECKING:
    from emulator.flash import BootPolicy, FlashDevice

_log = logging.getLogger("printer_emu.serve")

_MAX_DEFAULT_FLASHES = 64
_PROC_LOCKS = Path("/proc/locks")


def default_flash_dir() -> Path:
    """Where devices keep their flash when ``--flash`` is not given: the user's state
    directory."""
    import platformdirs

    return Path(platformdirs.user_state_dir("printer-emu"))


def _lock(path: Path) -> IO[bytes] | None:
    """An exclusive flock on the flash file ``path`` itself (created empty if new), or
    None if another process holds it: the lock belongs to the file (its inode), whatever
    name or link reaches it."""
    handle: IO[bytes] = open(path, "ab")  # noqa: SIM115 - held for the device's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def lock_holder(path: Path) -> int | None:
    """The process id holding a flock on the file ``path``, as Linux's ``/proc/locks``
    tells it (None where it cannot be told)."""
    try:
        st = path.stat()
        text = _PROC_LOCKS.read_text()
    except OSError:
        return None
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == wanted:
            try:
                return int(fields[4])
            except ValueError:
                return None
    return None


def _in_use(path: Path) -> ServeError:
    pid = lock_holder(path)
    holder = f"printer-emu serve (pid {pid})" if pid is not None else "printer-emu serve"
    resolved = path.resolve()
    same = f" ({path} is {resolved})" if resolved != path.absolute() else ""
    return ServeError(f"--flash {path}: the file is in use by another {holder}{same}")


def _claim_flash(board: str, path: Path | None) -> tuple[Path, IO[bytes]]:
    """The flash file to use, locked. Without ``--flash``: ``<board>.flash`` in the
    state directory, or, while another device of that board runs, ``<board>-2.flash``
    and so on — each device instance keeps its own flash across restarts."""
    if path is not None:
        if not path.parent.is_dir():
            raise ServeError(f"--flash {path}: no directory {path.parent}")
        if path.exists() and not path.is_file():  # a FIFO would block the open
            raise ServeError(f"--flash {path}: not a regular file")
        try:
            lock = _lock(path)
        except OSError as exc:
            raise ServeError(f"--flash {path}: {exc.strerror}") from None
        if lock is None:
            raise _in_use(path)
        return path, lock
    directory = default_flash_dir()
    try:
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


def _boot_policy(config: BoardConfig) -> BootPolicy:
    """The board file's ``[flash]`` policy; a signing key that cannot be read or used is
    the board file's mistake, said so."""
    from emulator.flash import BootPolicy

    flash_cfg = config.flash
    keys: tuple[bytes, ...] = ()
    try:
        if flash_cfg.signing_key:
            keys = (Path(flash_cfg.signing_key).read_bytes(),)
        return BootPolicy(trusted_keys_pem=keys, vendor=flash_cfg.vendor or None,
                          board=config.name if flash_cfg.vendor else None)
    except (OSError, ValueError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = config.source or config.name
        raise ServeError(f"{where}: [flash] signing_key {flash_cfg.signing_key}: "
                         f"{detail}") from None


def open_flash(config: BoardConfig, path: Path | None) -> tuple[FlashDevice, IO[bytes]]:
    """The device's MCUboot flash (policy from the board file's ``[flash]`` table),
    locked for this process; a file made here gets the factory image (unless the board
    names a signing key: only its owner can sign one)."""
    # Imported here: SMP's and MCUboot's libraries take ~0.3 s, which every other
    # printer-emu command (all import this package) would pay.
    from emulator.flash import FlashDevice, FlashError, FlashLayout, factory_image

    policy = _boot_policy(config)  # before the claim: a board's mistake creates no file
    flash_cfg = config.flash
    flash_path, lock = _claim_flash(config.name, path)
    _log.info("flash: %s", flash_path)
    fresh = flash_path.stat().st_size == 0
    try:
        layout = FlashLayout(flash_cfg.sector_size_bytes, flash_cfg.slot_sectors)
        flash = FlashDevice(flash_path, layout=layout, policy=policy)
        if fresh and not policy.requires_signature:
            flash.provision(factory_image(flash_cfg.vendor or "printer-emu", config.name))
    except (OSError, ValueError, FlashError) as exc:
        lock.close()
        raise ServeError(f"--flash {flash_path}: {exc}") from None
    return flash, lock
