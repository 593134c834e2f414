"""Building and launching the C reference device (mcu/) for the tests of tests/mcu.

* :func:`build` runs ``make -C mcu TARGET`` once per target and session (under a file
  lock, so xdist workers do not build over each other) and returns what was built.
* :class:`McuDevice` launches one device and yields its port URL: the host build on a pty,
  or the Cortex-M builds in ``qemu-system-arm`` (``-serial pty``, a fresh boot seed per
  launch written into RAM with ``-device loader``). Everything it starts it stops, and
  every descriptor it opens it closes, however the test ends.
* A tool that is missing (a compiler, QEMU, zcbor's sources) skips the test with the
  reason, except in CI (``CI=true``), where it fails it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

MCU_DIR = Path(__file__).resolve().parents[2] / "mcu"

QEMU_MACHINES = {"microbit": "microbit", "mps2": "mps2-an385"}
"""Cortex-M targets and the QEMU machine each runs on."""

DEVICE_KINDS = ("host", "microbit", "mps2")
"""The devices every link test runs on (``host-asan`` joins where memory matters)."""

SEED_ADDRESS = 0x2000_0000
"""Where the Cortex-M builds read their boot seed (the first 8 bytes of RAM)."""

_BUILT: dict[str, Path] = {}


def _missing(reason: str) -> None:
    """Skip for want of a tool; in CI, fail: there the tools must be installed."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: every tool must be installed)", pytrace=False)
    pytest.skip(reason)


def _zcbor_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("zcbor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)))
    return path if (path / "src" / "zcbor_decode.c").exists() else None


def _has_newlib() -> bool:
    """Whether the ARM compiler finds newlib-nano (it names the file back when it does
    not)."""
    result = subprocess.run(["arm-none-eabi-gcc", "-print-file-name=nano.specs"],
                            capture_output=True, text=True, check=False)
    return Path(result.stdout.strip()).is_absolute()


def require_tools(target: str) -> None:
    """Skip (or fail in CI) unless everything building and running ``target`` needs is
    installed."""
    needed = ["make", "cc"]
    if target in QEMU_MACHINES:
        needed += ["arm-none-eabi-gcc", "qemu-system-arm"]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if not missing and target in QEMU_MACHINES and not _has_newlib():
        missing = ["newlib (libnewlib-arm-none-eabi)"]
    if missing:
        _missing(f"mcu target {target}: {', '.join(missing)} not installed")
    if _zcbor_dir() is None:
        _missing("mcu: zcbor's C sources not found (pip install --no-deps zcbor==0.9.1)")


def build(target: str) -> Path:
    """Build ``target`` (``host``, ``host-asan``, ``fuzz``, ``microbit``, ``mps2``) once
    per session; return the executable or ELF file."""
    require_tools(target)
    if target in _BUILT:
        return _BUILT[target]
    lock_path = Path(tempfile.gettempdir()) / "printer-mcu-build.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            ["make", "-C", str(MCU_DIR), target, "BOARD=devkit", f"PYTHON={sys.executable}"],
            capture_output=True, text=True, timeout=300, check=False,
        )
    if result.returncode != 0:
        pytest.fail(f"make {target} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}",
                    pytrace=False)
    names = {"fuzz": "fuzz/printer-mcu-fuzz", "host": "host/printer-mcu-host",
             "host-asan": "host-asan/printer-mcu-host"}
    path = MCU_DIR / "build" / "devkit" / names.get(target, f"{target}/printer-mcu.elf")
    _BUILT[target] = path
    return path


@dataclass
class Launch:
    """What a launch printed: the device's URL, and how long the process took to say it."""

    url: str
    started_s: float


class McuDevice:
    """One device, launched on entry and stopped on exit::

        with McuDevice("microbit") as device:
            board = SerialBoard(device.url, config)

    ``kind`` is ``host``, ``host-asan``, ``microbit`` or ``mps2``; ``host-tcp`` is the host
    build on a TCP port (``socket://127.0.0.1:PORT``).
    """

    def __init__(self, kind: str, *, start_timeout_s: float = 20.0) -> None:
        self.kind = kind
        self.url = ""
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._keeper: int | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.seed = secrets.randbits(64)

    def __enter__(self) -> McuDevice:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def line_baud(self) -> int | None:
        """The baud rate the device's link timings are sized for (the Cortex-M builds drive
        their UART at 115200; QEMU ignores the rate, a real board does not): what a host
        passes as ``SerialBoard(..., baud=...)`` so that both ends agree. ``None`` for a
        pty, which costs nothing per byte."""
        return 115200 if self.kind in QEMU_MACHINES else None

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
        command = self._command()
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=self._stderr, start_new_session=True,
            )
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
        process = self._process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + self._start_timeout_s
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                match = re.search(rb"(/dev/pts/\d+|socket://\S+)", buffer)
                if match:
                    return match.group(1).decode()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(f"{self.kind}: no port within {self._start_timeout_s} s")
                if not selector.select(remaining):
                    continue
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    process.wait(timeout=5)
                    raise RuntimeError(f"{self.kind} exited with {process.returncode}: "
                                       f"{self.stderr_text()[-2000:]}")
                buffer += chunk

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> int | None:
        """Stop the device (SIGTERM, then SIGKILL) and close everything; returns its exit
        status. A sanitizer's report shows as a non-zero status and in stderr_text()."""
        status = None
        process = self._process
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
            self._process = None
        if self._keeper is not None:
            with contextlib.suppress(OSError):
                os.close(self._keeper)
            self._keeper = None
        return status

    def close(self) -> None:
        self.stop()
        self._stderr.close()
