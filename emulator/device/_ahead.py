"""A device child ahead of the host's other work: a board has a CPU of its own.

A device emulated on the host's CPU shares it with the host that drives it and with
whatever else runs there. QEMU's UART moves a byte a turn of its loop, and a starved
QEMU answered a 500-byte request in over 5 s; the C device's host build carries out a
pickup when it reads the command, and one kept off its core for 34 ms fed a sheet a
third of devkit's pitch late. The C devices the tests and benchmarks start
(``benchmarks/mcu_device.py``), and the HIL host that drives them, go ahead.

``printer-emu serve`` does not: its instants are exact however late it runs (a late
callback reads the instant it was due), and the suite runs many of them; with them ahead
too, in the one loaded run made so, QEMU's mps2 missed devkit's pitch.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Any, Final

AHEAD_NICE: Final = -10
"""The niceness a device child runs at, where the host allows it (``root``, or
``CAP_SYS_NICE``)."""


def run_ahead(process: subprocess.Popen[Any]) -> bool:
    """Give ``process`` and its process group (a child started with
    ``start_new_session=True``, every thread it has and will make) :data:`AHEAD_NICE`.
    Where the host does not allow it, the device runs as it is; returns whether it was
    done."""
    with contextlib.suppress(PermissionError, ProcessLookupError):
        os.setpriority(os.PRIO_PGRP, process.pid, AHEAD_NICE)
        return True
    return False


__all__ = ["AHEAD_NICE", "run_ahead"]
