"""A virtual device exported by ser2net as RFC 2217, as a lab exports a real board's UART:
``printer-emu serve --pty`` on a kernel pty, and ser2net 4.x (the Debian package
``ser2net``) serving that pty on a TCP port with the RFC 2217 (Telnet COM port control)
protocol.

* :class:`Ser2NetExport`: ser2net for a serial device path, with a YAML configuration
  written to a temporary directory (:func:`ser2net_config`, the one the README shows),
  started in the foreground, waited for (bounded) and stopped. :attr:`~Ser2NetExport.url`
  is the pyserial URL: ``rfc2217://127.0.0.1:PORT?ign_set_control``. A pty has no DTR or
  RTS, so ser2net never acknowledges pyserial's SET_CONTROL; without
  ``?ign_set_control`` pyserial gives up opening the port ("timeout while waiting for
  option 'control'").
* :func:`exported_device`: ``serve --pty --board BOARD`` and its export, together.
* ``python -m tests.lab.ser2net [--board devkit] -- COMMAND ...``: runs ``COMMAND`` with
  every ``{url}`` in it replaced by the export's URL, and stops both afterwards; its exit
  status is ``COMMAND``'s. The HIL suite through ser2net::

      python -m tests.lab.ser2net --board devkit -- \\
          python -m pytest -q -p no:cacheprovider tests/hil --printer-port {url}

Run from the checkout's root. A missing ``ser2net`` raises :class:`Ser2NetMissing`
(the tests skip on it: "missing tool: ser2net"; CI installs it).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final

START_TIMEOUT_S: Final = 10.0
"""How long ser2net may take to listen."""
STOP_TIMEOUT_S: Final = 5.0
"""How long ser2net may take to stop on SIGTERM before SIGKILL."""
LINE_SETTINGS: Final = "115200n81,local"
"""The pty's line settings: 115200 baud 8N1 (the shipped boards' ``serial.baud``), and
``local``: no modem control lines (a pty has none)."""
_PORT_ATTEMPTS: Final = 3
"""A free port is picked, then given to ser2net: another process may take it between."""


class Ser2NetMissing(RuntimeError):
    """``ser2net`` is not installed (Debian: ``apt-get install ser2net``)."""


class Ser2NetError(RuntimeError):
    """ser2net did not start; the message carries what it said."""


def ser2net_config(device: str, port: int, host: str = "127.0.0.1") -> str:
    """The ser2net 4.x YAML configuration that exports ``device`` as RFC 2217 on
    ``host:port``."""
    return (
        "%YAML 1.1\n"
        "---\n"
        "# printer-emu serve --pty, exported as RFC 2217\n"
        "connection: &printer\n"
        f"  accepter: telnet(rfc2217),tcp,{host},{port}\n"
        f"  connector: serialdev,{device},{LINE_SETTINGS}\n"
    )


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class Ser2NetExport:
    """``with Ser2NetExport("/dev/pts/3") as export: export.url`` (module docstring)."""

    def __init__(self, device: str, *, host: str = "127.0.0.1") -> None:
        binary = shutil.which("ser2net")
        if binary is None:
            raise Ser2NetMissing("ser2net is not installed (apt-get install ser2net)")
        self.binary = binary
        self.device = device
        self.host = host
        self.port = 0
        self.config_text = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rfc2217://{self.host}:{self.port}?ign_set_control"

    def __enter__(self) -> Ser2NetExport:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> str:
        """Start ser2net and wait until it listens; returns :attr:`url`. Raises
        :class:`Ser2NetError` (everything started is stopped again)."""
        self._dir = tempfile.TemporaryDirectory(prefix="printer-emu-ser2net-")
        problem = ""
        try:
            for _ in range(_PORT_ATTEMPTS):
                problem = self._start_on(_free_port(self.host))
                if not problem:
                    return self.url
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise Ser2NetError(problem)

    def _start_on(self, port: int) -> str:
        """Start ser2net on ``port``; "" once it listens, else what went wrong."""
        assert self._dir is not None
        self.port = port
        self.config_text = ser2net_config(self.device, port, self.host)
        config = Path(self._dir.name) / "ser2net.yaml"
        config.write_text(self.config_text)
        self._output = (Path(self._dir.name) / "ser2net.out").open("w+b")
        # -n: in the foreground; -d: and its messages on stdout; -u: no UUCP lock
        # files (the pty is this process's alone); -P: its pid file in our directory.
        self.process = subprocess.Popen(
            [self.binary, "-n", "-d", "-u", "-P", str(Path(self._dir.name) / "ser2net.pid"),
             "-c", str(config)],
            stdin=subprocess.DEVNULL, stdout=self._output, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = self.output().strip().splitlines()
                self._reap()
                return (f"ser2net exited with {self.process.returncode}"
                        + (f": {said[-1]}" if said else ""))
            if self._listening():
                return ""
            time.sleep(0.05)
        last_words = self.output().strip().splitlines()[-1:]
        self._reap()
        return (f"ser2net did not listen on {self.host}:{port} within {START_TIMEOUT_S:g} s"
                + "".join(f" ({line})" for line in last_words))

    def _listening(self) -> bool:
        """Whether ser2net listens on our port (from the kernel's table: a connection to
        see would open the device and make it a session)."""
        wanted = f":{self.port:04X} "
        with contextlib.suppress(OSError):
            for table in ("/proc/net/tcp", "/proc/net/tcp6"):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    if f"{fields[1]} ".endswith(wanted) and fields[3] == "0A":  # LISTEN
                        return True
        return False

    def output(self) -> str:
        """What ser2net has said so far."""
        if self._output is None or self._output.closed:
            return ""
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    def _reap(self) -> None:
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.process = None
        if self._output is not None:
            self._output.close()
            self._output = None

    def stop(self) -> None:
        """Stop ser2net (SIGTERM, then SIGKILL) and remove its directory. Idempotent."""
        self._reap()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


@contextlib.contextmanager
def exported_device(board: str = "devkit", *,
                    flash: Path | None = None) -> Iterator[Ser2NetExport]:
    """``printer-emu serve --pty --board BOARD`` exported by ser2net, both stopped on
    leaving. ``flash``: the device's flash file (default: one in a temporary directory,
    so nothing lands in the user's state directory)."""
    from emulator.device import ServeProcess

    with contextlib.ExitStack() as stack:
        if flash is None:
            flash = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="printer-emu-device-"))) / "flash"
        device = stack.enter_context(
            ServeProcess(board, transport="pty", extra_args=["--flash", str(flash)]))
        yield stack.enter_context(Ser2NetExport(device.url))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.lab.ser2net",
        description="Run COMMAND against printer-emu serve --pty exported by ser2net as "
                    "RFC 2217; {url} in COMMAND is replaced by the export's URL.")
    parser.add_argument("--board", default="devkit", help="the device's board (devkit)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- COMMAND ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print(f"{parser.prog}: give a command after --", file=sys.stderr)
        return 2
    from emulator.device import ServeProcessError

    try:
        with exported_device(args.board) as export:
            print(f"{parser.prog}: {export.device} exported as {export.url}",
                  file=sys.stderr, flush=True)
            return subprocess.call([part.replace("{url}", export.url) for part in command])
    except (Ser2NetMissing, Ser2NetError, ServeProcessError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
