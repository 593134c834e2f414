"""What ``printer-emu serve`` is asked to do (:class:`ServeOptions`), and the error for a
user's mistake (:class:`ServeError`): the meeting point of the command line
(:mod:`emulator.cli`) and the server (:func:`emulator.device.serve`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_BOARD = "lp-2000"
DEFAULT_HOST = "127.0.0.1"


class ServeError(Exception):
    """A user's mistake (an unknown board, an address in use, a flash file in use): one
    line on stderr, exit status 2."""


@dataclass(frozen=True)
class ServeOptions:
    board: str = DEFAULT_BOARD
    """A board name or the path of a board file."""
    transport: str = "pty"
    """``pty``, ``tcp`` or ``rfc2217``."""
    host: str = DEFAULT_HOST
    """The address a socket listens on."""
    port: int = 0
    """The TCP port (0: any free one)."""
    baud: int | None = None
    """Pace the line like a UART at this rate (``None``: as fast as it goes)."""
    trace: Path | None = None
    """Trace the board into this file (``.vcd``, ``.jsonl``)."""
    flash: Path | None = None
    """The device's MCUboot flash (``None``: one in the user's state directory)."""
    sim: bool = True
    """Offer the simulation commands."""
    seed: int = 0
    """Seed of the board's random draws."""
    verbose: bool = False
    """Log sessions on stderr."""
