"""``printer-emu flash`` against ``serve --flash``, where a user meets MCUboot's edges:
an image that names no board (refused, with the ``imgtool sign`` that fixes it), a
device in serial recovery (said so by ``--list``, by ``--reset`` and by the probe
``run --port`` uses), and ``--reset`` on its own (a rollback test needs no other tool).
Images are built with imgtool; every device is a bounded child process."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.cli._main import main
from emulator.device import ServeProcess
from emulator.flash import FACTORY_VERSION, running_image_of, serial_recovery_message
from hal.serial import NoDeviceAnswer, SerialBoard
from tests.imaging import ImageFactory

FACTORY = ".".join(str(n) for n in FACTORY_VERSION[:3])
SLOT_SIZE = 4096 * 32


def _image(tmp_path: Path, version: str, board: str | None) -> Path:
    return ImageFactory(tmp_path, {}).path(version, key=None, payload_bytes=6000, board=board,
                                           security_counter=None, slot_size=SLOT_SIZE)


def _other_board(tmp_path: Path) -> Path:
    """A board with devkit's flash layout and another name (so another image class)."""
    board = tmp_path / "other-kit.toml"
    board.write_text('extends = "devkit"\n[board]\nname = "other-kit"\n'
                     'description = "devkit under another name"\n')
    return board


def test_an_image_that_names_no_board_is_refused_with_the_imgtool_that_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    anonymous = _image(tmp_path, "1.1.0", board=None)
    with ServeProcess("devkit", transport="tcp",
                      extra_args=["--flash", str(tmp_path / "d.flash")]) as device:
        assert main(["flash", "--port", device.url, str(anonymous)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"printer-emu flash: error: wrong board: {anonymous.name} names no board (it was "
            "signed without --vid/--cid) and this device boots only images for "
            "printer-emu/devkit: sign it with 'imgtool sign --vid printer-emu --cid devkit ...'"
        ]
        assert main(["flash", "--port", device.url, "--list"]) == 0
        assert f"slot 0  {FACTORY}" in capsys.readouterr().out  # nothing was staged


def test_reset_alone_rolls_a_test_image_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    image = _image(tmp_path, "1.2.0", board="devkit")
    with ServeProcess("devkit", transport="tcp",
                      extra_args=["--flash", str(tmp_path / "d.flash")]) as device:
        assert main(["flash", "--port", device.url, str(image), "--test"]) == 0
        assert "now running 1.2.0 on test" in capsys.readouterr().out
        assert main(["flash", "--port", device.url, "--reset"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "reset: the device is back"
        active = [line for line in out if "active" in line]
        assert len(active) == 1 and f"slot 0  {FACTORY}" in active[0], out


def test_reset_with_no_reset_or_with_list_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["flash", "--port", "socket://127.0.0.1:1", "--reset", "--list"]) == 2
    assert "--reset goes alone or with an IMAGE" in capsys.readouterr().err
    assert main(["flash", "--port", "socket://127.0.0.1:1", "x.bin", "--reset",
                 "--no-reset"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_flash_made_for_another_board_is_serial_recovery_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    flash = tmp_path / "d.flash"
    with ServeProcess("devkit", transport="tcp", extra_args=["--flash", str(flash)]):
        pass  # the flash now holds devkit's factory image
    with ServeProcess(_other_board(tmp_path), transport="tcp",
                      extra_args=["--flash", str(flash)]) as device:
        assert main(["flash", "--port", device.url, "--list"]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert out[-1] == (
            "no image runs: the device is in serial recovery (MCUboot: no bootable image, "
            f"SMP only); flash one with 'printer-emu flash --port {device.url} IMAGE'")
        assert all("active" not in line for line in out)

        # What run --port meets: no HELLO, then the probe that says why.
        with pytest.raises(NoDeviceAnswer):
            SerialBoard(device.url, None, open_timeout_s=1.5)
        assert serial_recovery_message(device.url) == (
            f"the device on {device.url} is in serial recovery (MCUboot: no bootable "
            f"image, SMP only): flash an image with 'printer-emu flash --port {device.url} "
            "IMAGE'")

        image = _image(tmp_path, "1.3.0", board="other-kit")
        assert main(["flash", "--port", device.url, str(image), "--confirm"]) == 0
        assert "now running 1.3.0 (confirmed)" in capsys.readouterr().out
        assert serial_recovery_message(device.url) is None
        assert running_image_of(device.url) == (True, "1.3.0")


def test_a_keyed_board_without_an_image_says_no_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.imaging import image_factory, run_imgtool

    images = image_factory(tmp_path, {"owner": "ecdsa-p256"})
    public = tmp_path / "owner.pub.pem"
    run_imgtool("getpub", "-k", str(images.keys["owner"]), "-e", "pem", "-o", str(public))
    board = tmp_path / "signed-kit.toml"
    board.write_text('extends = "devkit"\n[board]\nname = "signed-kit"\n'
                     'description = "devkit that boots only the owner\'s images"\n'
                     '[flash]\nsigning_key = "owner.pub.pem"\n')
    with ServeProcess(board, transport="tcp",
                      extra_args=["--flash", str(tmp_path / "s.flash")]) as device:
        assert main(["flash", "--port", device.url, "--list"]) == 0
        assert capsys.readouterr().out.strip() == (
            "no image: the device is in serial recovery (MCUboot: no bootable image, SMP "
            f"only); flash one with 'printer-emu flash --port {device.url} IMAGE'")
        assert serial_recovery_message(device.url) is not None


def test_the_probe_judges_nothing_where_no_device_answers() -> None:
    assert serial_recovery_message("socket://127.0.0.1:1", timeout_s=0.5) is None
