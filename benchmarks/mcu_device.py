"""Building and launching the C reference device (``mcu/``): the one launcher, for the
benchmarks and the tests (``tests/mcu/_mcu.py`` turns its errors into test outcomes).

* :func:`build` runs ``make -C mcu TARGET BOARD=devkit`` once per process (under a file
  lock, so parallel test workers do not build over each other) and returns what was
  built: ``host``, ``host-asan`` and ``fuzz`` executables, ``microbit`` and ``mps2`` ELF
  files.
* :class:`McuDevice` launches one device and names its port: the host build on a pty (or
  a TCP port, kind ``host-tcp``), the Cortex-M builds in ``qemu-system-arm``
  (``-serial pty``, a fresh boot seed per launch written into RAM with ``-device
  loader``). Everything it starts it stops, and every descriptor it opens it closes,
  however its user ends.
* A device that cannot be had raises :class:`DeviceUnavailable` with the reason:
  :class:`ToolMissing` when something is not installed, :class:`BuildFailed` when make
  fails. A benchmark reports the device unavailable; a test skips or fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from emulator.device import ChildSilent, run_ahead, wait_for_output

MCU_DIR: Final = Path(__file__).resolve().parents[1] / "mcu"
QEMU_MACHINES: Final = {"microbit": "microbit", "mps2": "mps2-an385"}
"""Cortex-M targets and the QEMU machine each runs on."""
KINDS: Final = ("host", "host-asan", "host-tcp", *QEMU_MACHINES)
"""What :class:`McuDevice` launches."""
SEED_ADDRESS: Final = 0x2000_0000
"""Where the Cortex-M builds read their boot seed (the first 8 bytes of RAM)."""
CORTEX_M_BAUD: Final = 115_200
"""The rate the Cortex-M builds size their link timings for."""

_EXECUTABLES: Final = {"host": "host/printer-mcu-host", "host-asan": "host-asan/printer-mcu-host",
                       "fuzz": "fuzz/printer-mcu-fuzz"}
_BUILT: dict[str, Path] = {}
_ANNOUNCED_PORT: Final = re.compile(rb"(/dev/pts/\d+|socket://\S+)")


class DeviceUnavailable(RuntimeError):
    """The device cannot be built or launched here; the message says why."""


class ToolMissing(DeviceUnavailable):
    """A tool the target needs is not installed (the message names it)."""


class BuildFailed(DeviceUnavailable):
    """``make`` failed; :attr:`output` holds the end of what it printed."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def _zcbor_found() -> bool:
    spec = importlib.util.find_spec("zcbor")
    if spec is None or not spec.submodule_search_locations:
        return False
    return (Path(next(iter(spec.submodule_search_locations))) / "src" / "zcbor_decode.c").exists()


def _has_newlib() -> bool:
    """Whether the ARM compiler finds newlib-nano (it names the file back when it does
    not)."""
    result = subprocess.run(["arm-none-eabi-gcc", "-print-file-name=nano.specs"],
                            capture_output=True, text=True, check=False)
    return Path(result.stdout.strip()).is_absolute()


def require_tools(target: str) -> None:
    """Raise :class:`ToolMissing` unless everything building and running ``target``
    needs is installed."""
    needed = ["make", "cc"]
    if target in QEMU_MACHINES:
        needed += ["arm-none-eabi-gcc", "qemu-system-arm"]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if not missing and target in QEMU_MACHINES and not _has_newlib():
        missing = ["newlib (libnewlib-arm-none-eabi)"]
    if missing:
        raise ToolMissing(f"mcu target {target}: {', '.join(missing)} not installed")
    if not _zcbor_found():
        raise ToolMissing("mcu: zcbor's C sources not found (pip install --no-deps zcbor==0.9.1)")


def build(target: str) -> Path:
    """Build ``target`` (``host``, ``host-asan``, ``fuzz``, ``microbit``, ``mps2``) once
    per process; return the executable or ELF file."""
    if target in _BUILT:
        return _BUILT[target]
    require_tools(target)
    lock_path = Path(tempfile.gettempdir()) / "printer-mcu-build.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            ["make", "-C", str(MCU_DIR), target, "BOARD=devkit", f"PYTHON={sys.executable}"],
            capture_output=True, text=True, timeout=300, check=False,
        )
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
        raise BuildFailed(f"make {target} failed: {' '.join(last)}",
                          f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    path = MCU_DIR / "build" / "devkit" / _EXECUTABLES.get(target, f"{target}/printer-mcu.elf")
    _BUILT[target] = path
    return path


class McuDevice:
    """One device, launched on entry and stopped on exit::

        with McuDevice("microbit") as device:
            board = SerialBoard(device.url, config, baud=device.line_baud)

    ``kind`` is one of :data:`KINDS`; ``host-tcp`` is the host build on a TCP port
    (``socket://127.0.0.1:PORT``), the others are on a pty.
    """

    def __init__(self, kind: str, *, start_timeout_s: float = 20.0) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown device kind {kind!r} (one of {', '.join(KINDS)})")
        self.kind = kind
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        """The device's process (the host build, or QEMU), while it runs."""
        self.seed = secrets.randbits(64)
        """The boot seed a Cortex-M launch writes into RAM."""
        self._start_timeout_s = start_timeout_s
        self._keeper: int | None = None
        self._stderr: IO[bytes] | None = None

    def __enter__(self) -> McuDevice:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def line_baud(self) -> int | None:
        """The baud rate the device's link timings are sized for (the Cortex-M builds drive
        their UART at 115200; QEMU ignores the rate, a real board does not): what a host
        passes as ``SerialBoard(..., baud=...)`` so that both ends agree. ``None`` for a
        pty or a socket, which cost nothing per byte."""
        return CORTEX_M_BAUD if self.kind in QEMU_MACHINES else None

    def _command(self) -> list[str]:
        if self.kind in ("host", "host-asan"):
            return [str(build(self.kind)), "--pty"]
        if self.kind == "host-tcp":
            return [str(build("host")), "--tcp", "127.0.0.1:0"]
        elf = build(self.kind)
        return ["qemu-system-arm", "-M", QEMU_MACHINES[self.kind], "-nographic",
                "-monitor", "none", "-serial", "pty", "-kernel", str(elf),
                "-device", f"loader,addr={SEED_ADDRESS:#x},data={self.seed:#x},data-len=8"]

    def start(self) -> str:
        """Build if need be, launch, and return the port's URL (stopping everything
        again if that fails)."""
        if self._stderr is None:
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self.process = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=self._stderr, start_new_session=True,
            )
            run_ahead(self.process)  # a board has a CPU of its own (emulator.device._ahead)
            self.url = self._read_url()
            if self.kind in QEMU_MACHINES:
                # QEMU forwards the guest's output only once it sees the pty open, and
                # looks only when the guest writes or once a second: open it at once, and
                # keep it open (raw, never read) so the line stays up between hosts.
                self._keeper = os.open(self.url, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _read_url(self) -> str:
        process = self.process
        assert process is not None
        try:
            return wait_for_output(process, _ANNOUNCED_PORT, self._start_timeout_s)[1].decode()
        except ChildSilent as silent:
            if not silent.exited:
                raise DeviceUnavailable(
                    f"{self.kind}: no port within {self._start_timeout_s} s") from None
            process.wait(timeout=5)
            raise DeviceUnavailable(f"{self.kind} exited with {process.returncode}: "
                                    f"{self.stderr_text()[-2000:]}") from None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr_text(self) -> str:
        """What the device printed on stderr so far (a sanitizer's report, QEMU's
        complaints)."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> int | None:
        """Stop the device (SIGTERM, then SIGKILL) and close the port; returns its exit
        status. A sanitizer's report shows as a non-zero status and in stderr_text()."""
        status = None
        process = self.process
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            status = process.returncode
            if process.stdout is not None:
                process.stdout.close()
            self.process = None
        if self._keeper is not None:
            with contextlib.suppress(OSError):
                os.close(self._keeper)
            self._keeper = None
        return status

    def close(self) -> None:
        """Stop the device and release everything, its stderr's file too."""
        self.stop()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
