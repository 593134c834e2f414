"""What ``printer-emu serve`` claims and says about itself: its flash file (locked per
file, whatever name or link reaches it; never a directory made for a typo; a bad signing
key blamed on the board file), a warning when it listens beyond loopback, and one line
when a signal stops it. Real processes; every wait bounded, every process stopped."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from emulator.device import ServeProcess

SERVE = [sys.executable, "-m", "emulator", "serve", "--board", "devkit"]
TIMEOUT_S = 20.0


def _refused(*args: str) -> list[str]:
    """``serve ARGS`` that must refuse to start: its stderr lines (exit status 2)."""
    done = subprocess.run([*SERVE, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    return done.stderr.strip().splitlines()


class _Serve:
    """``serve ARGS`` in a child with its stderr in a file, readable after it exits."""

    def __init__(self, *args: str) -> None:
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([*SERVE, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        assert self.proc.stdout is not None
        line = b""
        deadline = time.monotonic() + TIMEOUT_S
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 256)
                assert chunk, f"serve exited: {self.text()}"
                line += chunk
            assert time.monotonic() < deadline, "serve printed no address"
        self.url = line.decode().strip()

    def text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.stderr.close()


@pytest.fixture
def served() -> Iterator[list[_Serve]]:
    started: list[_Serve] = []
    try:
        yield started
    finally:
        for s in started:
            s.close()


@pytest.mark.parametrize("link", ["symlink", "hard link", "same name"])
def test_a_flash_file_in_use_is_refused_by_any_name(tmp_path: Path, link: str) -> None:
    first = tmp_path / "a.flash"
    with ServeProcess("devkit", transport="tcp", extra_args=["--flash", str(first)]) as device:
        second = tmp_path / "b.flash"
        if link == "symlink":
            second.symlink_to(first)
        elif link == "hard link":
            os.link(first, second)
        else:
            second = first
        lines = _refused("--tcp", "127.0.0.1:0", "--flash", str(second))
        assert device.process is not None
        assert len(lines) == 1, lines
        assert f"--flash {second}: the file is in use by another printer-emu serve " \
               f"(pid {device.process.pid})" in lines[0]


def test_flash_in_a_directory_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    lines = _refused("--flash", str(tmp_path / "typo" / "devkit.flash"))
    assert lines == [f"printer-emu: error: --flash {tmp_path}/typo/devkit.flash: "
                     f"no directory {tmp_path}/typo"]
    assert not (tmp_path / "typo").exists()


def test_flash_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.flash"
    os.mkfifo(fifo)
    lines = _refused("--flash", str(fifo))  # opening a FIFO would block for ever
    assert lines == [f"printer-emu: error: --flash {fifo}: not a regular file"]


def test_a_bad_signing_key_is_blamed_on_the_board_file(tmp_path: Path) -> None:
    (tmp_path / "owner.pub.pem").write_text("not a key\n")
    board = tmp_path / "keyed.toml"
    board.write_text('extends = "devkit"\n[board]\nname = "keyed"\n'
                     'description = "devkit with a broken key"\n'
                     '[flash]\nsigning_key = "owner.pub.pem"\n')
    done = subprocess.run([sys.executable, "-m", "emulator", "serve", "--board", str(board),
                           "--flash", str(tmp_path / "k.flash")],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"printer-emu: error: {board}: [flash] signing_key {tmp_path}/owner.pub.pem: ")
    assert "--flash" not in lines[0]
    assert not (tmp_path / "k.flash").exists()  # the board's mistake makes no file


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0"])
def test_listening_beyond_loopback_warns_in_one_line(
    tmp_path: Path, served: list[_Serve], address: str,
) -> None:
    if address.startswith("[") and not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    device = _Serve("--tcp", address, "--flash", str(tmp_path / "d.flash"))
    served.append(device)
    host = address.rsplit(":", 1)[0].strip("[]")
    assert device.text().strip().splitlines() == [
        f"printer-emu serve: listening on {host}, not a loopback address: anyone on the "
        "network can flash this device and run its simulation commands"
    ]


def test_loopback_does_not_warn(tmp_path: Path, served: list[_Serve]) -> None:
    device = _Serve("--tcp", "127.0.0.1:0", "--flash", str(tmp_path / "d.flash"))
    served.append(device)
    device.proc.send_signal(signal.SIGTERM)
    assert device.proc.wait(timeout=10) == 0
    assert "network" not in device.text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_serve_with_one_line_and_frees_its_port_and_flash(
    tmp_path: Path, served: list[_Serve], signum: signal.Signals,
) -> None:
    flash = tmp_path / "d.flash"
    device = _Serve("--tcp", "127.0.0.1:0", "--flash", str(flash))
    served.append(device)
    device.proc.send_signal(signum)
    assert device.proc.wait(timeout=10) == 0
    assert device.text().strip().splitlines() == [
        f"printer-emu serve: stopped by {signum.name}"]
    port = int(device.url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    again = _Serve("--tcp", "127.0.0.1:0", "--flash", str(flash))  # the lock is gone too
    served.append(again)
