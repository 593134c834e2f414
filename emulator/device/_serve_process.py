"""A virtual device in a child process: ``printer-emu serve`` started, its address read,
and stopped again — for the HIL plugin's ``--printer-serve`` and for tests.

Bounded everywhere: the first line must come within ``start_timeout_s``; stopping sends
SIGTERM, then SIGKILL after ``stop_timeout_s``. The child is always reaped.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO

from emulator.device._child_output import ChildSilent, wait_for_output

_FIRST_LINE = re.compile(rb"([^\n]*)\n")

_TRANSPORT_ARGS = {
    "pty": ["--pty"],
    "tcp": ["--tcp", "127.0.0.1:0"],
    "rfc2217": ["--rfc2217", "127.0.0.1:0"],
}


class ServeProcessError(RuntimeError):
    """The virtual device did not start; the message carries what it said."""


class ServeProcess:
    """``with ServeProcess("devkit", transport="pty") as device: device.url``."""

    def __init__(self, board: str | Path, *, transport: str = "pty",
                 extra_args: list[str] | None = None, start_timeout_s: float = 15.0,
                 stop_timeout_s: float = 5.0) -> None:
        if transport not in _TRANSPORT_ARGS:
            raise ValueError(f"transport must be one of {', '.join(_TRANSPORT_ARGS)}")
        self.args = [sys.executable, "-m", "emulator", "serve", "--board", str(board),
                     *_TRANSPORT_ARGS[transport], *(extra_args or [])]
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.url = ""

    def __enter__(self) -> ServeProcess:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> str:
        # stderr to a file, not a pipe nobody reads: a long session's warnings would
        # fill a pipe and block the device.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr, start_new_session=True,
        )
        try:
            self.url = self._first_line()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _first_line(self) -> str:
        process = self.process
        assert process is not None
        try:
            return wait_for_output(process, _FIRST_LINE, self._start_timeout_s)[1].decode().strip()
        except ChildSilent as silent:
            if not silent.exited:
                raise ServeProcessError(f"{' '.join(self.args[2:])}: no address within "
                                        f"{self._start_timeout_s:g} s") from None
            process.wait(timeout=self._stop_timeout_s)
            said = self.stderr_text().strip().splitlines()
            raise ServeProcessError(said[-1] if said else
                                    f"printer-emu serve exited with {process.returncode}"
                                    ) from None

    def stop(self) -> int | None:
        """Stop the device (SIGTERM, then SIGKILL); returns its exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self._stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return process.returncode

    def stderr_text(self) -> str:
        """What the device has said on stderr so far ("" once stopped)."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")
