"""Write the C header of a board file's figures: ``board_header.py BOARD.toml OUT.h``.

The C device takes every figure it needs (link timings, watchdog, the plant's mechanics)
from the same board file as the Python host, through this header, generated at build
time. Only the standard library is used (``tomllib``), so the build needs no installed
project. ``extends = "NAME"`` is followed as ``boards._loader`` does: a parent in the
same folder, the child's keys replacing the parent's table by table.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

_MAX_EXTENDS_DEPTH = 8

# (table, key, C name, kind): kind "us" turns milliseconds or seconds into integer
# microseconds, "f" is a float, "u" an unsigned integer, "s" a string.
_FIELDS: list[tuple[str, str, str, str]] = [
    ("board", "name", "BOARD_NAME", "s"),
    ("engine", "paper_speed_mm_s", "BOARD_PAPER_SPEED_MM_S", "f"),
    ("engine", "sheet_length_mm", "BOARD_SHEET_LENGTH_MM", "f"),
    ("engine", "pickup_pulse_ms", "BOARD_PICKUP_PULSE_US", "us_ms"),
    ("engine", "watchdog_timeout_ms", "BOARD_WATCHDOG_TIMEOUT_US", "us_ms"),
    ("paper_path", "feed_sensor_mm", "BOARD_FEED_SENSOR_MM", "f"),
    ("paper_path", "drum_mm", "BOARD_DRUM_MM", "f"),
    ("paper_path", "fuser_mm", "BOARD_FUSER_MM", "f"),
    ("paper_path", "exit_sensor_mm", "BOARD_EXIT_SENSOR_MM", "f"),
    ("paper_path", "output_mm", "BOARD_OUTPUT_MM", "f"),
    ("tray", "capacity_sheets", "BOARD_TRAY_CAPACITY_SHEETS", "u"),
    ("tray", "loaded_sheets", "BOARD_TRAY_LOADED_SHEETS", "u"),
    ("fuser", "ambient_c", "BOARD_FUSER_AMBIENT_C", "f"),
    ("fuser", "max_c", "BOARD_FUSER_MAX_C", "f"),
    ("fuser", "cutoff_c", "BOARD_FUSER_CUTOFF_C", "f"),
    ("fuser", "tau_s", "BOARD_FUSER_TAU_S", "f"),
    ("fuser", "sheet_draw_c", "BOARD_FUSER_SHEET_DRAW_C", "f"),
    ("toner", "capacity_pages_at_5pct", "BOARD_TONER_CAPACITY_PAGES_AT_5PCT", "u"),
    ("toner", "loaded_pct", "BOARD_TONER_LOADED_PCT", "f"),
    ("serial", "retransmit_ms", "BOARD_RETRANSMIT_US", "us_ms"),
    ("serial", "heartbeat_ms", "BOARD_HEARTBEAT_US", "us_ms"),
    ("serial", "link_dead_ms", "BOARD_LINK_DEAD_US", "us_ms"),
    ("serial", "window", "BOARD_WINDOW", "u"),
]


def _load(path: Path, depth: int = 0) -> dict[str, Any]:
    if depth > _MAX_EXTENDS_DEPTH:
        raise SystemExit(f"{path.name}: extends: chain deeper than {_MAX_EXTENDS_DEPTH}")
    with path.open("rb") as file:
        raw = tomllib.load(file)
    parent_ref = raw.pop("extends", None)
    if parent_ref is None:
        return raw
    parent_path = path.parent / f"{parent_ref}.toml"
    if not parent_path.exists():
        parent_path = path.parent / str(parent_ref)
    merged = _load(parent_path, depth + 1)
    for table, values in raw.items():
        if isinstance(values, dict) and isinstance(merged.get(table), dict):
            merged[table] = {**merged[table], **values}
        else:
            merged[table] = values
    return merged


def _c_value(value: Any, kind: str, where: str) -> str:
    if kind == "s":
        text = str(value)
        if any(c in text for c in '"\\\n') or not text.isascii():
            raise SystemExit(f"{where}: {text!r} cannot be a C string literal here")
        return f'"{text}"'
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SystemExit(f"{where}: expected a number, got {value!r}")
    if kind == "u":
        if value != int(value) or value < 0:
            raise SystemExit(f"{where}: expected an unsigned integer, got {value!r}")
        return f"{int(value)}u"
    if kind == "us_ms":
        return f"{round(value * 1000)}ull"
    return f"{float(value)!r}f"


def header(board_file: Path) -> str:
    config = _load(board_file)
    lines = [
        f"/* Generated from {board_file.name} by mcu/tools/board_header.py: do not edit. */",
        "#ifndef PRINTER_MCU_BOARD_PARAMS_H",
        "#define PRINTER_MCU_BOARD_PARAMS_H",
        "",
    ]
    for table, key, name, kind in _FIELDS:
        where = f"{board_file.name}: [{table}] {key}"
        try:
            value = config[table][key]
        except KeyError:
            raise SystemExit(f"{where}: missing") from None
        lines.append(f"#define {name} {_c_value(value, kind, where)}")
    lines += ["", "#endif", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: board_header.py BOARD.toml OUT.h", file=sys.stderr)
        return 2
    text = header(Path(argv[1]))
    out = Path(argv[2])
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
