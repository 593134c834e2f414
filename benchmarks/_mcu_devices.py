"""Building and launching the C reference device (``mcu/``) for the benchmarks.

:class:`McuDevice` builds its target with ``make -C mcu TARGET`` and launches it: the host
build on a pty, the Cortex-M builds in ``qemu-system-arm`` (``-serial pty``, a fresh boot
seed per launch written into RAM with ``-device loader``). Everything it starts it stops.
A device that cannot be built or launched raises :class:`DeviceUnavailable` with the
reason: a benchmark reports that device as unavailable, it does not fail.

(tests/mcu/_mcu.py does the same for the tests, where a missing tool is a skip.)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Final

MCU_DIR: Final = Path(__file__).resolve().parents[1] / "mcu"
QEMU_MACHINES: Final = {"microbit": "microbit", "mps2": "mps2-an385"}
"""Cortex-M targets and the QEMU machine each runs on."""
SEED_ADDRESS: Final = 0x2000_0000
"""Where the Cortex-M builds read their boot seed (the first 8 bytes of RAM)."""
CORTEX_M_BAUD: Final = 115_200
"""The rate the Cortex-M builds size their link timings for."""

_BUILT: dict[str, Path] = {}


class DeviceUnavailable(RuntimeError):
    """The device cannot be built or launched here; the message says why."""


def _zcbor_found() -> bool:
    spec = importlib.util.find_spec("zcbor")
    if spec is None or not spec.submodule_search_locations:
        return False
    return (Path(next(iter(spec.submodule_search_locations))) / "src" / "zcbor_decode.c").exists()


def build(target: str) -> Path:
    """Build ``target`` (``host``, ``microbit``, ``mps2``) once per process; the executable
    or ELF file. Raises :class:`DeviceUnavailable` when a tool is missing or make fails."""
    if target in _BUILT:
        return _BUILT[target]
    needed = ["make", "cc"]
    if target in QEMU_MACHINES:
        needed += ["arm-none-eabi-gcc", "qemu-system-arm"]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        raise DeviceUnavailable(f"{', '.join(missing)} not installed")
    if not _zcbor_found():
        raise DeviceUnavailable("zcbor's C sources not found (pip install --no-deps zcbor)")
    result = subprocess.run(
        ["make", "-C", str(MCU_DIR), target, "BOARD=devkit", f"PYTHON={sys.executable}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
        raise DeviceUnavailable(f"make {target} failed: {' '.join(last)}")
    name = "host/printer-mcu-host" if target == "host" else f"{target}/printer-mcu.elf"
    _BUILT[target] = path = MCU_DIR / "build" / "devkit" / name
    return path


class McuDevice:
    """One device (``host``, ``microbit`` or ``mps2``), launched on entry and stopped on
    exit; :attr:`url` is its port, :attr:`line_baud` what a host opens it with."""

    def __init__(self, kind: str, *, start_timeout_s: float = 20.0) -> None:
        self.kind = kind
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._start_timeout_s = start_timeout_s
        self._keeper: int | None = None
        self._seed = secrets.randbits(64)

    @property
    def line_baud(self) -> int | None:
        """The Cortex-M builds' link timings are sized for 115200 baud (QEMU ignores the
        rate); ``None`` for the host build's pty."""
        return CORTEX_M_BAUD if self.kind in QEMU_MACHINES else None

    def __enter__(self) -> McuDevice:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _command(self) -> list[str]:
        if self.kind == "host":
            return [str(build("host")), "--pty"]
        if self.kind not in QEMU_MACHINES:
            raise ValueError(f"unknown device kind {self.kind!r}")
        return ["qemu-system-arm", "-M", QEMU_MACHINES[self.kind], "-nographic",
                "-monitor", "none", "-serial", "pty", "-kernel", str(build(self.kind)),
                "-device", f"loader,addr={SEED_ADDRESS:#x},data={self._seed:#x},data-len=8"]

    def _start(self) -> None:
        self.process = subprocess.Popen(
            self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.url = self._read_url()
        if self.kind in QEMU_MACHINES:
            # QEMU forwards the guest's output only once it sees the pty open: keep it
            # open (never read) so the line stays up.
            self._keeper = os.open(self.url, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)

    def _read_url(self) -> str:
        process = self.process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + self._start_timeout_s
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                match = re.search(rb"/dev/pts/\d+", buffer)
                if match:
                    return match.group(0).decode()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeviceUnavailable(f"no port within {self._start_timeout_s} s")
                if not selector.select(remaining):
                    continue
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    raise DeviceUnavailable(f"exited with {process.wait(timeout=5)}")
                buffer += chunk

    def close(self) -> None:
        """Stop the device (SIGTERM, then SIGKILL) and close what was opened."""
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
            if process.stdout is not None:
                process.stdout.close()
            self.process = None
        if self._keeper is not None:
            with contextlib.suppress(OSError):
                os.close(self._keeper)
            self._keeper = None

