"""Printing on the C reference device: the host firmware drives the devkit plant behind
the device's pins, over the wire, on every device (and the host build under the
sanitizers). ``printer-emu run --port`` prints a job; the HIL suite's printing tests run
unchanged against the device, as ``pytest --printer-port URL`` runs them on a lab's board.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from boards import load_board
from hal.serial import PrinterLinkError, SerialBoard
from tests.mcu._mcu import DEVICE_KINDS, McuDevice

REPO = Path(__file__).resolve().parents[2]


def _device_stats(device: McuDevice) -> str:
    """The device's own counters (link losses by reason, overflows...), for a failure's
    report."""
    try:
        board = SerialBoard(device.url, load_board("devkit"), baud=device.line_baud)
    except PrinterLinkError as exc:
        return f"(no device.stats: {exc})"
    with contextlib.closing(board):
        stats = board.query("device.stats", timeout_s=2.0)
    return "device.stats: " + json.dumps({k: v for k, v in stats.items() if v})


def _run_args(device: McuDevice) -> list[str]:
    baud = ["--baud", str(device.line_baud)] if device.line_baud else []
    return ["--port", device.url, "--board", "devkit", *baud]


# Printing on QEMU's machines waits on issue 15 (the firmware judging the paper path in
# the device's time): QEMU's UARTs take the host's requests slowly (mps2's model one byte
# per turn of QEMU's event loop: a few ms a request, tens under load), so pickups go out
# late and a host that judges the edges by its own clock reads a misfeed, then a jam. The
# plant itself is exact in the device's time on QEMU (tests/mcu/test_board.py), and its
# fuser's cutoff keeps a late heater-off from running over temperature. The link, the wire
# and the Board contract are tested on QEMU; printing on the host build.
_QEMU_PRINTING = pytest.mark.skip(
    reason="printing on QEMU waits on issue 15 (paper path judged in device time)")
_PRINTING_KINDS = [pytest.param(kind, marks=_QEMU_PRINTING) if kind in ("microbit", "mps2")
                   else kind for kind in DEVICE_KINDS]


@pytest.mark.parametrize("kind", [*_PRINTING_KINDS, "host-asan"])
def test_printer_emu_run_prints_20_pages_each_exactly_once(kind: str) -> None:
    with McuDevice(kind) as device:
        result = subprocess.run(
            [sys.executable, "-m", "emulator", "run", *_run_args(device), "--pages", "20",
             "--json"],
            capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
        )
        run = json.loads(result.stdout) if result.returncode == 0 else {}
        if run.get("outcome") != "completed":
            pytest.fail(f"{result.stderr[-3000:]}\n{run.get('events')}\n{_device_stats(device)}")
        status = device.stop()
        assert status == 0, device.stderr_text()[-3000:]
    assert run["pages_delivered"] == 20
    assert [(p["job"], p["page"]) for p in run["page_log"]] == [(1, p) for p in range(1, 21)]
    assert run["jams"] == 0 and run["warnings"] == 0


@pytest.mark.parametrize("kind", _PRINTING_KINDS)
def test_the_hil_printing_tests_pass_on_the_device(kind: str) -> None:
    with McuDevice(kind) as device:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/hil/test_printing.py", "--printer-port", device.url],
            capture_output=True, text=True, timeout=600, cwd=REPO, check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"{result.stdout[-6000:]}\n{_device_stats(device)}")
