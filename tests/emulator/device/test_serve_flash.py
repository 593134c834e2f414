"""Flashing the virtual device that ``printer-emu serve`` runs: the factory image, an
upload over the same port the HAL protocol uses, the board's image class enforced, and
the flash kept across restarts. Images are built here with imgtool; nothing binary is
committed."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.cli._main import main
from emulator.device import ServeProcess
from emulator.flash import FACTORY_VERSION
from tests.imaging import ImageFactory


def _image(tmp_path: Path, version: str, board: str) -> Path:
    """Unsigned (the shipped boards name no signing key), for ``board``'s image class."""
    return ImageFactory(tmp_path, {}).path(version, key=None, payload_bytes=6000, board=board,
                                           security_counter=None, slot_size=4096 * 32)


def test_flash_the_virtual_device_and_keep_it_across_a_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    flash_file = tmp_path / "devkit.flash"
    factory = ".".join(str(n) for n in FACTORY_VERSION[:3])
    with ServeProcess("devkit", extra_args=["--flash", str(flash_file)]) as device:
        assert main(["flash", "--port", device.url, "--list"]) == 0
        assert f"slot 0  {factory}" in capsys.readouterr().out

        wrong = _image(tmp_path, "1.0.0", "lp-2000")
        assert main(["flash", "--port", device.url, str(wrong)]) == 2
        err = capsys.readouterr().err
        assert "wrong board" in err and len(err.strip().splitlines()) == 1

        image = _image(tmp_path, "1.2.0", "devkit")
        assert main(["flash", "--port", device.url, str(image), "--confirm"]) == 0
        assert "now running 1.2.0 (confirmed)" in capsys.readouterr().out

    with ServeProcess("devkit", extra_args=["--flash", str(flash_file)]) as device:
        assert main(["flash", "--port", device.url, "--list"]) == 0
        listing = capsys.readouterr().out
        assert "slot 0  1.2.0" in listing and "confirmed" in listing


def test_a_second_device_of_a_board_gets_its_own_flash(tmp_path: Path) -> None:
    flash_file = tmp_path / "one.flash"
    with ServeProcess("devkit", extra_args=["--flash", str(flash_file)]):
        clash = ServeProcess("devkit", extra_args=["--flash", str(flash_file)])
        with pytest.raises(Exception, match="in use by another printer-emu serve"):
            clash.start()


def test_a_board_that_names_a_signing_key_boots_only_signed_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from boards import load_board
    from hal.serial import SerialBoard
    from tests.imaging import image_factory, run_imgtool

    images = image_factory(tmp_path, {"owner": "ecdsa-p256"})
    public = tmp_path / "owner.pub.pem"
    run_imgtool("getpub", "-k", str(images.keys["owner"]), "-e", "pem", "-o", str(public))
    board_file = tmp_path / "signed-kit.toml"
    board_file.write_text('extends = "devkit"\n[board]\nname = "signed-kit"\n'
                          'description = "devkit that boots only the owner\'s images"\n'
                          '[flash]\nsigning_key = "owner.pub.pem"\n')
    config = load_board(board_file)
    unsigned = images.path("1.0.0", key=None, board="signed-kit", slot_size=4096 * 32)
    signed = images.path("1.1.0", key="owner", board="signed-kit", slot_size=4096 * 32)

    flash_file = tmp_path / "signed.flash"
    with ServeProcess(board_file, extra_args=["--flash", str(flash_file)]) as device:
        # No factory image for a keyed board: MCUboot's serial recovery, SMP only.
        assert main(["flash", "--port", device.url, "--list"]) == 0
        capsys.readouterr()
        assert main(["flash", "--port", device.url, str(unsigned)]) == 2
        err = capsys.readouterr().err.strip()
        assert "sign" in err and len(err.splitlines()) == 1
        assert main(["flash", "--port", device.url, str(signed), "--confirm"]) == 0
        assert "now running 1.1.0 (confirmed)" in capsys.readouterr().out

        with SerialBoard(device.url, config) as board:
            hello = board.hello
            assert hello is not None
            assert hello.image_version == "1.1.0"
            assert hello.image_confirmed is True
            assert len(hello.image_sha256) == 64
