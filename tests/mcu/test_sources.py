"""What the C device takes from elsewhere stays in step with it: the vocabulary strings
and error codes (mcu/src/names.c, mcu/src/board.c) with ``hal``'s, and the figures of the
generated board header with ``boards.load_board``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from boards import load_board
from hal import AnalogChannel, DigitalInput, Output, ResetCause
from hal.serial import ErrorCode
from tests.mcu._mcu import MCU_DIR


def _names(array: str) -> list[str]:
    source = (MCU_DIR / "src" / "names.c").read_text()
    body = re.search(rf"{array}\[[A-Z_]+\] = \{{(.*?)\}};", source, re.S)
    assert body is not None, array
    return re.findall(r'"([^"]*)"', body.group(1))


def test_the_vocabulary_is_hals() -> None:
    assert _names("mcu_input_names") == [str(pin) for pin in DigitalInput]
    assert _names("mcu_output_names") == [str(output) for output in Output]
    assert _names("mcu_channel_names") == [str(channel) for channel in AnalogChannel]
    # The device names the causes it can have; device_reset is the host's own word.
    assert set(_names("mcu_reset_cause_names")) <= {str(cause) for cause in ResetCause}


def test_the_error_codes_are_the_protocols() -> None:
    source = (MCU_DIR / "src" / "board.c").read_text()
    codes = dict(re.findall(r"E_([A-Z_]+) = (\d+)", source))
    assert codes
    for name, value in codes.items():
        assert ErrorCode[name].value == int(value)


def test_the_board_header_has_the_board_files_figures(tmp_path: Path) -> None:
    out = tmp_path / "board_params.h"
    subprocess.run([sys.executable, str(MCU_DIR / "tools" / "board_header.py"),
                    str(MCU_DIR.parent / "boards" / "devkit.toml"), str(out)], check=True)
    defines = dict(re.findall(r"#define (BOARD_\w+) (\S+)", out.read_text()))
    config = load_board("devkit")

    def number(name: str) -> float:
        return float(re.sub(r"[uUlLf]+$", "", defines[name]))

    assert defines["BOARD_NAME"] == '"devkit"'
    assert number("BOARD_PAPER_SPEED_MM_S") == config.engine.paper_speed_mm_s
    assert number("BOARD_SHEET_LENGTH_MM") == config.engine.sheet_length_mm
    assert number("BOARD_WATCHDOG_TIMEOUT_US") == config.engine.watchdog_timeout_ms * 1000
    assert number("BOARD_FEED_SENSOR_MM") == config.paper_path.feed_sensor_mm
    assert number("BOARD_DRUM_MM") == config.paper_path.drum_mm
    assert number("BOARD_FUSER_MM") == config.paper_path.fuser_mm
    assert number("BOARD_EXIT_SENSOR_MM") == config.paper_path.exit_sensor_mm
    assert number("BOARD_OUTPUT_MM") == config.paper_path.output_mm
    assert number("BOARD_TRAY_LOADED_SHEETS") == config.tray.loaded_sheets
    assert number("BOARD_FUSER_TAU_S") == config.fuser.tau_s
    assert number("BOARD_FUSER_MAX_C") == config.fuser.max_c
    assert number("BOARD_FUSER_AMBIENT_C") == config.fuser.ambient_c
    assert number("BOARD_FUSER_SHEET_DRAW_C") == config.fuser.sheet_draw_c
    assert number("BOARD_TONER_CAPACITY_PAGES_AT_5PCT") == config.toner.capacity_pages_at_5pct
    assert number("BOARD_TONER_LOADED_PCT") == config.toner.loaded_pct
    assert number("BOARD_RETRANSMIT_US") == config.serial.retransmit_ms * 1000
    assert number("BOARD_HEARTBEAT_US") == config.serial.heartbeat_ms * 1000
    assert number("BOARD_LINK_DEAD_US") == config.serial.link_dead_ms * 1000
    assert number("BOARD_WINDOW") == config.serial.window
