"""The virtual device's flash: which file, locked for one process, made with the factory
image when new.

Each device instance keeps its own flash across restarts: ``--flash FILE``, or
``<board>.flash`` in the user's state directory (``<board>-2.flash`` and so on while
another device of that board runs). An exclusive ``flock`` on a lock file beside it says
which process has it; the kernel drops it when the holder dies, so no lock goes stale.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import IO, TYPE_CHECKING

from boards import BoardConfig
from emulator.device._serve_options import ServeError

if TYPE_CHECKING:
    from emulator.flash import FlashDevice

_log = logging.getLogger("printer_emu.serve")

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


def open_flash(config: BoardConfig, path: Path | None) -> tuple[FlashDevice, IO[str]]:
    """The device's MCUboot flash (policy from the board file's ``[flash]`` table),
    locked for this process; a file made here gets the factory image (unless the board
    names a signing key: only its owner can sign one)."""
    # Imported here: SMP's and MCUboot's libraries take ~0.3 s, which every other
    # printer-emu command (all import this package) would pay.
    from emulator.flash import BootPolicy, FlashDevice, FlashError, FlashLayout, factory_image

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
