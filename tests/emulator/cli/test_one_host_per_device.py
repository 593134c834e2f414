"""One host per device: ``run --port``, ``flash`` and the pytest plugin share one lock
per device (``hal.serial.lock_port``). A second opener gets one line naming the holder
and exit 2; the first user's job is untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from emulator.device import ServeProcess
from hal.serial import PortInUse, device_key, lock_dir, lock_port
from tests.imaging import ImageFactory

REPO = Path(__file__).resolve().parents[3]
EMU = [sys.executable, "-m", "emulator"]
_REAL_TIME = {"t_s", "sim_time_s", "wall_time_s", "speedup"}
"""A real-time run's clock readings: they differ run to run; all else must not."""


@pytest.fixture(autouse=True)
def _own_lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRINTER_EMU_LOCK_DIR", str(tmp_path / "locks"))


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in _REAL_TIME}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def _wait_until_locked_by(pid: int, timeout_s: float = 30.0) -> None:
    """Until a lock file in the lock dir names ``pid`` as its holder (read, never
    taken: taking it to look would race the holder)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in lock_dir().glob("*.lock"):
            if path.read_text().split("\n", 1)[0] == str(pid):
                return
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} never took a device lock")


def _run_alone(url: str) -> dict[str, Any]:
    done = subprocess.run([*EMU, "run", "--port", url, "--board", "devkit", "--pages", "30",
                           "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_second_run_on_a_port_in_use_is_refused_and_the_first_is_untouched() -> None:
    with ServeProcess("devkit") as device:
        alone = _run_alone(device.url)
    with ServeProcess("devkit") as device:
        first = subprocess.Popen(
            [*EMU, "run", "--port", device.url, "--board", "devkit", "--pages", "30", "--json"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_until_locked_by(first.pid)
        second = subprocess.run([*EMU, "run", "--port", device.url, "--pages", "5"],
                                cwd=REPO, capture_output=True, text=True, timeout=60)
        out, err = first.communicate(timeout=120)
    assert second.returncode == 2
    assert second.stderr == (f"printer-emu: error: {os.path.realpath(device.url)} is in use "
                             f"by pid {first.pid} (printer-emu run)\n")
    assert first.returncode == 0, err
    assert _without_clock(json.loads(out)) == _without_clock(alone)


def test_a_second_flash_during_an_upload_is_refused_and_the_upload_completes(
    tmp_path: Path,
) -> None:
    image = ImageFactory(tmp_path, {}).path("1.2.0", key=None, payload_bytes=60_000,
                                            board="devkit", security_counter=None,
                                            slot_size=4096 * 32)
    # A paced line makes the upload last a few seconds: time to be refused during it.
    with ServeProcess("devkit", extra_args=["--flash", str(tmp_path / "devkit.flash"),
                                            "--baud", "115200"]) as device:
        first = subprocess.Popen([*EMU, "flash", "--port", device.url, str(image), "--confirm"],
                                 cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        _wait_until_locked_by(first.pid)
        second = subprocess.run([*EMU, "flash", "--port", device.url, "--list"],
                                cwd=REPO, capture_output=True, text=True, timeout=60)
        assert first.poll() is None  # refused during the upload
        out, err = first.communicate(timeout=120)
    assert second.returncode == 2
    assert second.stderr == (f"printer-emu flash: error: {os.path.realpath(device.url)} is in "
                             f"use by pid {first.pid} (printer-emu flash)\n")
    assert first.returncode == 0, err
    assert "now running 1.2.0 (confirmed)" in out


def test_the_lock_names_a_device_not_a_spelling(tmp_path: Path) -> None:
    target = tmp_path / "ttyX"
    target.touch()
    alias = tmp_path / "printer"
    alias.symlink_to(target)
    assert device_key(str(alias)) == device_key(str(target)) == str(target)
    assert device_key("rfc2217://Lab:4001?ign_set_control") == "rfc2217://lab:4001"
    with lock_port(str(alias), holder="a test"):
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys\nfrom hal.serial import PortInUse, lock_port\n"
             "try:\n    lock_port(sys.argv[1])\nexcept PortInUse as e:\n    print(e)",
             str(target)], capture_output=True, text=True, timeout=30, check=True)
        assert probe.stdout == f"{target} is in use by pid {os.getpid()} (a test)\n"
        with lock_port(str(target)):  # re-entrant within the holder's process
            pass


def test_a_dead_holders_lock_is_taken_over(tmp_path: Path) -> None:
    url = str(tmp_path / "ttyY")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom hal.serial import lock_port\n"
         "lock_port(sys.argv[1])\nprint('held', flush=True)\ntime.sleep(60)", url],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(PortInUse, match=f"in use by pid {holder.pid}"):
        lock_port(url)
    holder.kill()  # the kernel drops its flock: the lock file stays, the lock does not
    holder.wait(timeout=10)
    holder.stdout.close()
    with lock_port(url):
        pass
