"""Reading what a child process announces on its stdout, with a deadline: the address a
device prints when it is ready (``printer-emu serve``'s first line, the pty QEMU or the
C host build names). Shared by :class:`~emulator.device.ServeProcess` and the benchmarks'
C devices, so every launcher is bounded the same way.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time


class ChildSilent(Exception):
    """The child said nothing that matched in time (``TimeoutError``-like) or closed its
    stdout first (``exited`` is then true)."""

    def __init__(self, exited: bool) -> None:
        super().__init__("exited" if exited else "timed out")
        self.exited = exited


def wait_for_output(
    process: subprocess.Popen[bytes], pattern: re.Pattern[bytes], timeout_s: float
) -> re.Match[bytes]:
    """Read ``process``'s stdout until ``pattern`` matches what it wrote so far, and
    return the match. Raises :class:`ChildSilent` after ``timeout_s`` of waiting, or as
    soon as the stream ends (the child exited; it is not reaped here)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    written = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (match := pattern.search(written)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChildSilent(exited=False)
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise ChildSilent(exited=True)
            written += chunk
    return match
