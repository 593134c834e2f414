"""Printing on the C reference device: the host firmware drives the devkit plant behind
the device's pins, over the wire, on every device (and the host build under the
sanitizers). ``printer-emu run --port`` prints a job; the HIL suite's printing tests run
unchanged against the device, as ``pytest --printer-port URL --printer-baud N`` runs them
on a lab's board.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from boards import load_board
from emulator.device import run_ahead
from hal import ImagePage, IoState
from hal.serial import PrinterLinkError, SerialBoard
from hal.serial._payloads import Event
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


# Printing on QEMU's machines too: QEMU's UARTs take the host's requests slowly (mps2's
# model one byte per turn of QEMU's event loop: a few ms a request, tens under load), and
# the firmware judges the paper path by the device's clock, asks for each page at its
# pickup and paces the pickups by the device's clock, so that slowness costs time, never a
# fault.
@pytest.mark.parametrize("kind", [*DEVICE_KINDS, "host-asan"])
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


@pytest.mark.parametrize("kind", DEVICE_KINDS)
def test_the_hil_printing_tests_pass_on_the_device(kind: str) -> None:
    # A HIL rig is a host and a board, each with a CPU of its own, and the rated-pitch test
    # holds them to a fifth of devkit's 100 ms pitch. Here both share two cores with the
    # rest of the suite: the host goes ahead of it, as the device does, where the machine
    # allows (emulator.device.run_ahead).
    with McuDevice(kind) as device:
        baud = [] if device.line_baud is None else ["--printer-baud", str(device.line_baud)]
        host = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/hil/test_printing.py", "--printer-port", device.url, *baud],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            start_new_session=True,
        )
        run_ahead(host)
        try:
            output, _ = host.communicate(timeout=600)
        finally:
            if host.poll() is None:
                host.kill()
                host.communicate()
        if host.returncode != 0:
            pytest.fail(f"{output[-6000:]}\n{_device_stats(device)}")


def test_a_sheet_whose_request_is_cancelled_takes_no_later_one() -> None:
    """The plant's imaging rule, as the emulated board's: a sheet whose request is
    cancelled before imaging is withdrawn (it passes blank), so a request made after the
    cancel waits for the next sheet picked instead of landing on one under way."""
    config = load_board("devkit")
    exits: list[Event] = []
    with McuDevice("host") as device, \
            SerialBoard(device.url, config, baud=device.line_baud, analog_poll_s=None) as board:
        board.add_event_listener(
            lambda event, _t_ns: exits.append(event)
            if event.kind == "input" and event.data == {"name": "exit_sensor", "level": False}
            else None)
        board.query("output.set", {"output": "laser", "on": True}, timeout_s=5.0)
        board.query("pickup.pulse", timeout_s=5.0)  # the motor is off: the sheet waits
        first = board.submit(ImagePage(1, 1, 5.0))
        board.query("board.clock", timeout_s=5.0)
        first.cancel()
        second = board.submit(ImagePage(1, 2, 5.0))
        board.query("output.set", {"output": "motor", "on": True}, timeout_s=5.0)
        assert board.scheduler.run_until(lambda: bool(exits), timeout_ns=5_000_000_000)
        assert not second.done and second.events == []  # the first sheet passed blank
        board.query("pickup.pulse", timeout_s=5.0)
        assert board.scheduler.run_until(lambda: second.done, timeout_ns=5_000_000_000)
        board.query("output.set", {"output": "motor", "on": False}, timeout_s=5.0)
        board.query("output.set", {"output": "laser", "on": False}, timeout_s=5.0)
    assert first.state is IoState.CANCELLED and second.state is IoState.DONE
