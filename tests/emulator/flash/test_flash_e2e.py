"""Flashing end to end: `printer-emu flash` and standard SMP clients against the device.

The virtual device runs `FlashDevice.serve` on a pty (or a TCP socket) in a
thread, or as a subprocess for the SIGKILL test. Every wait is bounded and every
fd, thread and process is closed by its fixture.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import serial
from smpclient import SMPClient
from smpclient.generics import success
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import ResetWrite
from smpclient.transport.serial import SMPSerialTransport

from emulator.cli._flash import flash_main
from emulator.cli._flash_client import flash_image
from emulator.flash import BootPolicy, DeviceIdentity, FlashDevice, FlashLayout, open_pty
from tests.imaging import ImageFactory, image_factory

REPO = Path(__file__).resolve().parents[3]
LAYOUT = FlashLayout(sector_size_bytes=4096, slot_sectors=16)
JOIN_TIMEOUT_S = 5.0


# -- images (imgtool CLI code, in-process) ---------------------------------------------


class Images(ImageFactory):
    """Image files as the flash command takes them (.bin or Intel HEX), optionally with
    one body byte flipped after signing."""

    def file(self, version: str, *, key: str = "ec", payload_bytes: int = 12000,
             board: str = "laser-a", suffix: str = ".bin", corrupt: bool = False) -> Path:
        out = self.path(version, key=key, payload_bytes=payload_bytes, board=board,
                        suffix=suffix)
        if corrupt:
            data = bytearray(out.read_bytes())
            data[0x400] ^= 0xFF
            out = out.with_name(f"corrupt-{out.name}")
            out.write_bytes(bytes(data))
        return out


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    made = image_factory(tmp_path_factory.mktemp("images"),
                         {"ec": "ecdsa-p256", "rogue": "ecdsa-p256"})
    return Images(made.directory, made.keys)


def _policy(images: Images) -> BootPolicy:
    return BootPolicy(
        trusted_keys_pem=(images.keys["ec"].read_bytes(),), vendor="printer-emu", board="laser-a"
    )


# -- the device on a pty ---------------------------------------------------------------


@dataclass
class PtyDevice:
    device: FlashDevice
    port: str

    def running(self) -> tuple[str, bool]:
        image = self.device.running_image()
        assert image is not None
        return str(image.version), image.confirmed


@pytest.fixture
def pty_device(tmp_path: Path, images: Images) -> Iterator[PtyDevice]:
    device = FlashDevice(
        tmp_path / "flash.bin",
        layout=LAYOUT,
        policy=_policy(images),
        identity=DeviceIdentity(board="laser-a"),
        durable=False,
        boot_banner=True,
    )
    device.provision(images.file("1.0.0").read_bytes())
    device.boot()
    master, slave, path = open_pty()
    stop = threading.Event()
    thread = threading.Thread(target=device.serve, args=(master, stop), daemon=True)
    thread.start()
    try:
        yield PtyDevice(device, path)
    finally:
        stop.set()
        thread.join(JOIN_TIMEOUT_S)
        os.close(master)
        os.close(slave)
        device.close()
    assert not thread.is_alive()


def flash(*args: str) -> int:
    return flash_main(list(args))


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("printer-emu flash: error: ")
    assert "Traceback" not in err
    return lines[0]


async def _reset(port: str) -> None:
    client = SMPClient(SMPSerialTransport(), port, timeout_s=3.0)
    await client.connect()
    try:
        await client.request(ResetWrite())
    finally:
        await client.disconnect()


# -- flashing --------------------------------------------------------------------------


def test_upload_test_reset_then_confirm(
    pty_device: PtyDevice, images: Images, capsys: pytest.CaptureFixture[str]
) -> None:
    assert flash("--port", pty_device.port, str(images.file("1.1.0"))) == 0
    out = capsys.readouterr().out
    assert "now running 1.1.0 on test" in out
    assert pty_device.running() == ("1.1.0", False)

    assert flash("--port", pty_device.port, "--list") == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith("slot 0  1.1.0") and "active" in listing[0]
    assert "confirmed" not in listing[0]
    assert listing[1].startswith("slot 1  1.0.0") and "confirmed" in listing[1]

    assert flash("--port", pty_device.port, "--confirm-running") == 0
    assert "confirmed 1.1.0" in capsys.readouterr().out
    assert pty_device.running() == ("1.1.0", True)


def test_an_unconfirmed_test_image_rolls_back_at_reset(
    pty_device: PtyDevice, images: Images
) -> None:
    assert flash("--port", pty_device.port, str(images.file("1.1.0"))) == 0
    assert pty_device.running() == ("1.1.0", False)
    boots = pty_device.device.boot_count
    asyncio.run(_reset(pty_device.port))
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while pty_device.device.boot_count == boots and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pty_device.running() == ("1.0.0", True)


def test_confirm_without_reset_then_reset(
    pty_device: PtyDevice, images: Images, capsys: pytest.CaptureFixture[str]
) -> None:
    image = images.file("1.2.0", suffix=".hex")  # Intel HEX is accepted too
    assert flash("--port", pty_device.port, str(image), "--confirm", "--no-reset") == 0
    assert "marked permanent" in capsys.readouterr().out
    assert pty_device.running() == ("1.0.0", True)
    assert flash("--port", pty_device.port, "--list") == 0
    assert "pending permanent" in capsys.readouterr().out
    asyncio.run(_reset(pty_device.port))
    assert flash("--port", pty_device.port, str(image)) == 0  # already runs: nothing to do
    assert "already runs" in capsys.readouterr().out
    assert pty_device.running() == ("1.2.0", True)


def test_upload_resumes_after_the_connection_drops(pty_device: PtyDevice, images: Images) -> None:
    image_path = images.file("1.1.0", payload_bytes=40000)
    data = image_path.read_bytes()

    async def start_and_drop() -> int:
        client = SMPClient(SMPSerialTransport(), pty_device.port, timeout_s=3.0)
        await client.connect()
        offset = 0
        async for offset in client.upload(data):
            if offset >= len(data) // 2:
                break  # the cable is pulled half-way
        await client.disconnect()
        return offset

    dropped_at = asyncio.run(start_and_drop())
    assert 0 < dropped_at < len(data)
    seen: list[int] = []
    report = asyncio.run(
        flash_image(
            pty_device.port,
            image_path,
            progress=lambda done, total: seen.append(done),
            say=lambda _line: None,
        )
    )
    assert report.resumed_from_bytes == dropped_at
    assert seen[0] == dropped_at
    assert report.uploaded_bytes == len(data) - dropped_at
    assert pty_device.running() == ("1.1.0", False)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("bad-hash", "bad hash"),
        ("bad-signature", "bad signature"),
        ("downgrade", "downgrade refused"),
        ("too-large", "too large"),
        ("wrong-board", "wrong board"),
        ("no-device", "no device"),
        ("no-file", "no image file"),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    pty_device: PtyDevice,
    images: Images,
    capsys: pytest.CaptureFixture[str],
    case: str,
    words: str,
) -> None:
    port = pty_device.port
    image = {
        "bad-hash": lambda: images.file("2.0.0", corrupt=True),
        "bad-signature": lambda: images.file("2.0.0", key="rogue"),
        "downgrade": lambda: images.file("0.9.0"),
        "too-large": lambda: images.file("2.0.0", payload_bytes=LAYOUT.image_capacity_bytes),
        "wrong-board": lambda: images.file("2.0.0", board="laser-b"),
        "no-device": lambda: images.file("2.0.0"),
        "no-file": lambda: Path("/nonexistent/image.bin"),
    }[case]()
    if case == "no-device":
        port = "/dev/nonexistent-printer-port"
    assert flash("--port", port, str(image)) == 2
    assert words in one_error_line(capsys)
    assert pty_device.running() == ("1.0.0", True)


def test_a_port_that_answers_garbage_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Whatever is asked, the far end answers with an SMP continuation frame: what a host
    # reads when it comes in mid-frame (a device going down for a reset does that).
    master, slave = os.openpty()
    stop = threading.Event()

    def answer_garbage() -> None:
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    os.read(master, 4096)
                    os.write(master, b"\x04\x14AAAA\n")
                except OSError:
                    return

    answerer = threading.Thread(target=answer_garbage, daemon=True)
    answerer.start()
    try:
        assert flash("--port", os.ttyname(slave), "--list", "--timeout", "2") == 2
    finally:
        stop.set()
        answerer.join(timeout=5)
        os.close(master)
        os.close(slave)
    assert "garbled answer" in one_error_line(capsys)


def test_usage_errors_exit_2_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert flash("--list") == 2  # no --port
    assert flash("--port", "/dev/null") == 2  # nothing to do
    err = capsys.readouterr().err
    assert "Traceback" not in err and "usage:" in err


# -- standard clients ------------------------------------------------------------------


def _smpmgr() -> str:
    path = Path(sys.executable).with_name("smpmgr")
    if not path.exists():
        pytest.skip("missing tool: smpmgr (pip install -e '.[interop]')")
    return str(path)


def test_smpmgr_lists_uploads_and_resets(pty_device: PtyDevice, images: Images) -> None:
    smpmgr = _smpmgr()
    image = images.file("1.3.0")
    upgrade = subprocess.run(
        [smpmgr, "--port", pty_device.port, "--timeout", "3", "upgrade", "--confirm", str(image)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert "Upgrade complete" in upgrade.stdout
    listing = subprocess.run(
        [smpmgr, "--port", pty_device.port, "--timeout", "3", "image", "state-read"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "1.3.0" in listing.stdout
    assert pty_device.running() == ("1.3.0", True)


def test_plain_smpclient_lists_uploads_and_resets(pty_device: PtyDevice, images: Images) -> None:
    data = images.file("1.4.0").read_bytes()

    async def session() -> list[str]:
        client = SMPClient(SMPSerialTransport(), pty_device.port, timeout_s=3.0)
        await client.connect()
        try:
            async for _offset in client.upload(data):
                pass
            listed = await client.request(ImageStatesRead())
            assert success(listed)
            secondary = next(s for s in listed.images if s.slot == 1)
            marked = await client.request(ImageStatesWrite(hash=secondary.hash))
            assert success(marked)
            assert success(await client.request(ResetWrite()))
            return [s.version for s in listed.images]
        finally:
            await client.disconnect()

    boots = pty_device.device.boot_count
    assert asyncio.run(session()) == ["1.0.0", "1.4.0"]
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while pty_device.device.boot_count == boots and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pty_device.running() == ("1.4.0", False)


def _relay(a: int, b: int, stop: threading.Event) -> None:
    """Copy bytes both ways between two pty masters until ``stop``."""
    while not stop.is_set():
        ready, _, _ = select.select([a, b], [], [], 0.05)
        for source in ready:
            try:
                data = os.read(source, 65536)
            except OSError:
                continue  # that side has no client at the moment
            os.write(b if source == a else a, data)


def test_device_serving_a_pyserial_port(
    tmp_path: Path, images: Images, capsys: pytest.CaptureFixture[str]
) -> None:
    device = FlashDevice(tmp_path / "flash.bin", layout=LAYOUT, policy=_policy(images))
    device.provision(images.file("1.0.0").read_bytes())
    client_master, client_slave, client_path = open_pty()
    device_master, device_slave, device_path = open_pty()
    port = serial.Serial(device_path)  # the device side as a pyserial object
    stop = threading.Event()
    threads = [
        threading.Thread(target=_relay, args=(client_master, device_master, stop), daemon=True),
        threading.Thread(target=device.serve, args=(port, stop), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        assert flash("--port", client_path, str(images.file("1.1.0"))) == 0
        assert "now running 1.1.0" in capsys.readouterr().out
    finally:
        stop.set()
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)
        port.close()
        for fd in (client_master, client_slave, device_master, device_slave):
            os.close(fd)
        device.close()
    assert not any(thread.is_alive() for thread in threads)


def test_flash_over_a_tcp_socket_url(
    tmp_path: Path, images: Images, capsys: pytest.CaptureFixture[str]
) -> None:
    device = FlashDevice(tmp_path / "flash.bin", layout=LAYOUT, policy=_policy(images))
    device.provision(images.file("1.0.0").read_bytes())
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                device.serve(connection.fileno(), stop)

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    url = f"socket://127.0.0.1:{listener.getsockname()[1]}"
    try:
        assert flash("--port", url, str(images.file("1.1.0"))) == 0
        assert "now running 1.1.0" in capsys.readouterr().out
        assert flash("--port", url, "--list") == 0
        assert "slot 0  1.1.0" in capsys.readouterr().out
    finally:
        stop.set()
        thread.join(JOIN_TIMEOUT_S)
        listener.close()
        device.close()
    assert not thread.is_alive()


# -- a real process killed with SIGKILL ------------------------------------------------


class DeviceProcess:
    """``python -m emulator.flash`` in a subprocess, read line by line."""

    def __init__(self, flash_file: Path, images: Images, *extra: str) -> None:
        command = [sys.executable, "-m", "emulator.flash", "--flash", str(flash_file)]
        command += ["--trusted-key", str(images.keys["ec"])]
        command += ["--vendor", "printer-emu", "--board", "laser-a"]
        command += ["--slot-sectors", str(LAYOUT.slot_sectors), *extra]
        self.process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._buffer = b""
        self.port = self.expect("PORT ")

    def expect(self, prefix: str, timeout_s: float = 10.0) -> str:
        """The rest of the next stdout line starting with ``prefix``."""
        deadline = time.monotonic() + timeout_s
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                text = line.decode()
                if text.startswith(prefix):
                    return text[len(prefix) :]
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {prefix!r} line from the device in {timeout_s} s"
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                assert chunk, "device process ended: " + self.stderr()
                self._buffer += chunk

    def boot(self) -> dict[str, object]:
        result: dict[str, object] = json.loads(self.expect("BOOT "))
        return result

    def stderr(self) -> str:
        self.kill()
        assert self.process.stderr is not None
        return self.process.stderr.read().decode()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything (a power cut)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=JOIN_TIMEOUT_S)


@pytest.fixture
def processes() -> Iterator[list[DeviceProcess]]:
    started: list[DeviceProcess] = []
    yield started
    for proc in started:
        proc.kill()
        for stream in (proc.process.stdout, proc.process.stderr):
            if stream is not None:
                stream.close()


def test_sigkill_during_upload_and_during_swap_leaves_a_bootable_device(
    tmp_path: Path, images: Images, processes: list[DeviceProcess]
) -> None:
    flash_file = tmp_path / "flash.bin"
    factory = images.file("1.0.0")
    new = images.file("1.1.0", payload_bytes=40000)
    data = new.read_bytes()

    # 1. Killed half-way through an upload: the old image still boots.
    proc = DeviceProcess(flash_file, images, "--provision", str(factory))
    processes.append(proc)
    assert proc.boot()["version"] == "1.0.0"

    async def upload_half() -> None:
        client = SMPClient(SMPSerialTransport(), proc.port, timeout_s=3.0)
        await client.connect()
        async for offset in client.upload(data):
            if offset >= len(data) // 2:
                proc.kill()
                break
        await client.disconnect()

    asyncio.run(upload_half())
    proc = DeviceProcess(flash_file, images)
    processes.append(proc)
    assert proc.boot()["version"] == "1.0.0"
    proc.kill()

    # 2. Killed in the middle of the swap (flash slowed down so the kill lands in it).
    proc = DeviceProcess(flash_file, images, "--op-delay-ms", "25")
    processes.append(proc)
    proc.boot()
    report = asyncio.run(
        flash_image(proc.port, new, reset=False, timeout_s=5.0, say=lambda _line: None)
    )
    assert report.running is None
    asyncio.run(_reset(proc.port))
    time.sleep(0.4)  # the swap takes ~80 flash operations x 25 ms: kill in the middle
    proc.kill()

    proc = DeviceProcess(flash_file, images)
    processes.append(proc)
    boot = proc.boot()
    assert boot["resumed"] is True, boot
    assert boot["version"] == "1.1.0" and boot["confirmed"] is False
    proc.kill()
