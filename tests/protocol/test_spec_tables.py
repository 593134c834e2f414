"""docs/protocol.md's vocabulary tables say what the code says: every name and figure a
device needs is listed on the page, equal to ``hal``'s (the Python host and virtual
device) and to the C device's (mcu/src/names.c); and the commands of board-commands.md
are those both devices answer."""

from __future__ import annotations

import re

import pytest

from hal import (
    DISPLAY_COLUMNS,
    DISPLAY_ROWS,
    AnalogChannel,
    Button,
    Crossing,
    DigitalInput,
    JamPoint,
    Output,
    ResetCause,
)
from hal.serial import ErrorCode, FrameType
from tests.mcu._mcu import MCU_DIR
from tests.protocol._spec import PROTOCOL_MD, first_column, vocabulary

_HOST_ONLY_CAUSES = {ResetCause.DEVICE_RESET}
"""Causes the host names itself and no device sends."""


def _mcu_names(array: str) -> list[str]:
    source = (MCU_DIR / "src" / "names.c").read_text()
    body = re.search(rf"{array}\[[A-Z_]+\] = \{{(.*?)\}};", source, re.S)
    assert body is not None, array
    return re.findall(r'"([^"]*)"', body.group(1))


@pytest.mark.parametrize(("table", "names", "mcu_array"), [
    ("inputs", [str(pin) for pin in DigitalInput], "mcu_input_names"),
    ("outputs", [str(output) for output in Output], "mcu_output_names"),
    ("channels", [str(channel) for channel in AnalogChannel], "mcu_channel_names"),
    ("reset-causes", [str(c) for c in ResetCause if c not in _HOST_ONLY_CAUSES],
     "mcu_reset_cause_names"),
])
def test_the_pin_and_cause_names_are_hals_and_the_c_devices(
        table: str, names: list[str], mcu_array: str) -> None:
    assert first_column(table) == names
    assert _mcu_names(mcu_array) == names


def test_the_other_names_are_hals() -> None:
    assert first_column("crossings") == [str(c) for c in Crossing]
    assert first_column("buttons") == [str(b) for b in Button]
    assert first_column("jam-points") == [str(j) for j in JamPoint]


def test_the_safe_outputs_are_the_ones_the_device_turns_off() -> None:
    safe = [row[0] for row in vocabulary("outputs") if row[1] == "off"]
    assert safe == ["heater", "motor", "laser"]


def test_the_display_figures_are_hals_and_the_c_devices() -> None:
    figures = {row[0]: int(row[1]) for row in vocabulary("display")}
    assert figures["rows"] == DISPLAY_ROWS
    assert figures["columns"] == DISPLAY_COLUMNS
    config = (MCU_DIR / "include" / "printer_mcu" / "config.h").read_text()
    defines = dict(re.findall(r"#define (MCU_DISPLAY_\w+) (\d+)", config))
    assert int(defines["MCU_DISPLAY_COLUMNS"]) == DISPLAY_COLUMNS
    assert int(defines["MCU_DISPLAY_ROW_BYTES"]) == figures[
        "longest row a device must take, UTF-8 bytes"]


def test_the_error_codes_are_the_codes_of_both_implementations() -> None:
    table = {row[1]: int(row[0]) for row in vocabulary("error-codes")}
    assert table == {code.name: code.value for code in ErrorCode}
    source = (MCU_DIR / "src" / "board.c").read_text()
    mcu_codes = {name: int(value) for name, value in re.findall(r"E_([A-Z_]+) = (\d+)", source)}
    assert mcu_codes and all(table[name] == value for name, value in mcu_codes.items())


def test_the_frame_types_are_the_codes() -> None:
    table = {row[1]: int(row[0], 16) for row in vocabulary("frame-types")}
    assert table == {frame_type.name: frame_type.value for frame_type in FrameType}


def test_the_capabilities_are_those_the_devices_announce() -> None:
    assert first_column("capabilities") == ["sim", "smp", "plant", "regulator"]
    hello_c = (MCU_DIR / "src" / "hello.c").read_text()
    announced = set(re.findall(r'cbor_put_text\(zs, "(\w+)"\)', hello_c))
    assert {"plant", "regulator"} <= announced
    # "plant" only with the plant built in; "regulator" on every port (the board core's)
    unconditional = re.sub(r"#if MCU_WITH_PLANT\n.*?#endif\n", "", hello_c, flags=re.S)
    always = set(re.findall(r'cbor_put_text\(zs, "(\w+)"\)', unconditional))
    assert "regulator" in always and "plant" not in always


def _documented_commands() -> set[str]:
    """The commands of board-commands.md's request tables (``sim.*`` and ``device.*``
    stand for namespaces, not commands)."""
    page = (PROTOCOL_MD.parent / "board-commands.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", page, re.M))


def test_the_documented_commands_are_those_both_devices_answer() -> None:
    documented = _documented_commands()
    serve = (PROTOCOL_MD.parents[1] / "emulator" / "device" / "_commands.py").read_text()
    python_table = set(re.findall(r'"([a-z_]+\.[a-z_]+)": self\._', serve))
    assert python_table == documented
    board_c = (MCU_DIR / "src" / "board.c").read_text()
    c_table = set(re.findall(r'\{"([a-z_]+\.[a-z_]+)", cmd_', board_c))
    assert {c for c in c_table if not c.startswith("device.")} == {
        c for c in documented if not c.startswith("sim.")}
