"""The virtual device's SMP on the same line as its frames (flash), through the rig of
``_device_rig`` in virtual time: an image uploaded and the device reset into it, and
serial recovery when no image is bootable.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from hal import ResetCause
from hal.serial import LinkState
from tests.emulator.device._device_rig import Rig, S


@pytest.fixture
def image(tmp_path: Path) -> bytes:
    raw, out = tmp_path / "app.raw", tmp_path / "app.bin"
    raw.write_bytes(random.Random(3).randbytes(3000))
    subprocess.run(
        [sys.executable, "-m", "imgtool.main", "sign", "--pad-header", "-H", "0x200",
         "-S", "65536", "-v", "1.2.3", "--align", "4", str(raw), str(out)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return out.read_bytes()


def _smp(packet: bytes) -> bytes:
    from emulator.flash import encode_smp_frame as smp_frame

    return smp_frame(packet)


def _smp_replies(data: bytes) -> list[bytes]:
    from emulator.flash import SmpFrameDecoder as SmpDecoder

    decoder = SmpDecoder()
    packets = []
    for line in data.split(b"\n"):
        for marker in (b"\x06\x09", b"\x04\x14"):
            at = line.find(marker)
            if at >= 0:
                packet = decoder.feed_line(line[at:] + b"\n")
                if packet is not None:
                    packets.append(packet)
                break
    return packets


def test_smp_shares_the_line_and_reset_reboots(tmp_path: Path, image: bytes) -> None:
    from smp import os_management as smpos

    from emulator.flash import FlashDevice

    flash = FlashDevice(tmp_path / "flash.bin", durable=False)
    flash.provision(image)
    r = Rig(flash=flash)
    try:
        hello = r.up().peer
        assert {"sim", "smp"} <= hello.capabilities
        assert hello.image_version.startswith("1.2.3")
        old_boot = hello.boot_nonce
        written = len(r.device_wrote)
        r.send_raw(_smp(bytes(smpos.EchoWriteRequest(d="ping"))))
        r.run_until(lambda: bool(_smp_replies(b"".join(r.device_wrote[written:]))))
        reply = _smp_replies(b"".join(r.device_wrote[written:]))[0]
        assert smpos.EchoWriteResponse.loads(reply).r == "ping"
        # Requests still work alongside.
        assert r.call("analog.read", channel="toner_pct") == {"value": 100.0}
        r.send_raw(_smp(bytes(smpos.ResetWriteRequest())))
        r.run_until(lambda: r.board.resets == 1)
        assert r.board.reset_cause is ResetCause.SOFTWARE
        r.run_until(lambda: len(r.established()) == 2)
        established = r.established()[1]
        assert established.peer_reset and established.peer.boot_nonce != old_boot
        r.run_until(lambda: len(r.events("reset")) == 2)
        assert r.event_data("reset")[1] == {"cause": "software"}
    finally:
        r.device.close()
        flash.close()


def test_no_bootable_image_is_serial_recovery(tmp_path: Path) -> None:
    from smp import os_management as smpos

    from emulator.flash import FlashDevice

    flash = FlashDevice(tmp_path / "flash.bin", durable=False)
    r = Rig(flash=flash)
    try:
        assert r.device.link is None
        r.run_for(1 * S)
        assert r.host.state is not LinkState.UP
        r.send_raw(_smp(bytes(smpos.EchoWriteRequest(d="hello"))))
        r.run_until(lambda: bool(_smp_replies(b"".join(r.device_wrote))))
        assert smpos.EchoWriteResponse.loads(_smp_replies(b"".join(r.device_wrote))[0]).r == (
            "hello"
        )
    finally:
        r.device.close()
        flash.close()
