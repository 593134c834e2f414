"""A device child ahead of the host's other work: a board has a CPU of its own.

A device emulated on the host's CPU (``printer-emu serve``, QEMU, the C device's host
build) shares it with the host that drives it and with whatever else runs there. Starved,
it falls behind its own clock: ``serve`` keeps its instants exact (a late callback reads
the instant it was due), so a request it answers late is stamped early, and the host's
measure of how fast a command reaches the device reads a delivery quicker than the line
gives; a pickup paced by it then reaches the device early, into the last sheet's throat.
QEMU's UART moves a byte a turn of its loop, and a starved one answers in seconds.
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
