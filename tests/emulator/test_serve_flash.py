"""Flashing the virtual device that ``printer-emu serve`` runs: the factory image, an
upload over the same port the HAL protocol uses, the board's image class enforced, and
the flash kept across restarts. Images are built here with imgtool; nothing binary is
committed."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator._cli import main
from emulator._factory_image import FACTORY_VERSION
from emulator._serve_process import ServeProcess
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
