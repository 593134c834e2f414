"""Load and validate board files.

``load_board("lp-2000")`` finds a board shipped with the package; a path loads that
file. ``extends = "NAME"`` (a shipped board or a path relative to the file) is loaded
first and the file's tables are merged over it key by key.

Every mistake is a :class:`BoardFileError` whose message names the file and the key
(``lp-9.toml: [fuser] tau_s: expected a number, got 'fast'``): unknown keys, missing
keys, wrong types, values out of range, and inconsistent values (a paper path whose
sensors are not in order, a tray loaded past its capacity, ...).
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from boards._schema import (
    IRQ_LINE_NAMES,
    BoardConfig,
    BoardInfo,
    EngineConfig,
    FlashConfig,
    FuserConfig,
    IrqLineConfig,
    PaperPathConfig,
    SerialConfig,
    TonerConfig,
    TrayConfig,
)


class BoardFileError(ValueError):
    """A board file that cannot be used; the message is one line naming file and key."""


_TABLES: dict[str, type[Any]] = {
    "board": BoardInfo,
    "engine": EngineConfig,
    "paper_path": PaperPathConfig,
    "tray": TrayConfig,
    "fuser": FuserConfig,
    "toner": TonerConfig,
    "serial": SerialConfig,
    "flash": FlashConfig,
}
_MAX_EXTENDS_DEPTH = 8


def available_boards() -> list[str]:
    """Names of the boards shipped with the package."""
    return sorted(
        p.name.removesuffix(".toml")
        for p in resources.files("boards").iterdir()
        if p.name.endswith(".toml")
    )


def load_board(name_or_path: str | Path) -> BoardConfig:
    """Load a shipped board by name, or a board file by path. Raises BoardFileError."""
    path = _resolve(str(name_or_path), None)
    raw = _load_merged(path, depth=0)
    return _validate(raw, path.name, str(path))


def _resolve(ref: str, relative_to: Path | None) -> Path:
    looks_like_path = ref.endswith(".toml") or "/" in ref or "\\" in ref
    if looks_like_path:
        path = Path(ref)
        if relative_to is not None and not path.is_absolute():
            path = relative_to.parent / path
        if not path.is_file():
            where = f"{relative_to.name}: extends: " if relative_to else ""
            raise BoardFileError(f"{where}no board file at {path}")
        return path
    shipped = resources.files("boards").joinpath(f"{ref}.toml")
    if not shipped.is_file():
        where = f"{relative_to.name}: extends: " if relative_to else ""
        known = ", ".join(available_boards())
        raise BoardFileError(f"{where}unknown board {ref!r} (shipped boards: {known})")
    return Path(str(shipped))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise BoardFileError(f"{path.name}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise BoardFileError(f"{path.name}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise BoardFileError(f"{path}: cannot read: {e.strerror}") from None


def _load_merged(path: Path, depth: int) -> dict[str, Any]:
    if depth > _MAX_EXTENDS_DEPTH:
        raise BoardFileError(f"{path.name}: extends: chain deeper than {_MAX_EXTENDS_DEPTH}")
    raw = _read_toml(path)
    parent_ref = raw.pop("extends", None)
    if parent_ref is None:
        return raw
    if not isinstance(parent_ref, str):
        raise BoardFileError(f"{path.name}: extends: expected a board name or path")
    base = _load_merged(_resolve(parent_ref, path), depth + 1)
    return _merge(base, raw)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_value(file: str, where: str, f: dataclasses.Field[Any], value: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    meta = f.metadata
    if kind == "str":
        if not isinstance(value, str):
            raise BoardFileError(f"{file}: {where}: expected a string, got {value!r}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise BoardFileError(
                f"{file}: {where}: expected one of {', '.join(choices)}, got {value!r}"
            )
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BoardFileError(f"{file}: {where}: expected an integer, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BoardFileError(f"{file}: {where}: expected a number, got {value!r}")
        value = float(value)
    lo, hi = meta.get("lo"), meta.get("hi")
    # `not lo <= value`, not `value < lo`: NaN fails every comparison and must not pass.
    if (lo is not None and not lo <= value) or (hi is not None and not value <= hi):
        raise BoardFileError(f"{file}: {where}: {value!r} is out of range [{lo}, {hi}]")
    return value


def _build(file: str, table: str, cls: type[Any], raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise BoardFileError(f"{file}: [{table}]: expected a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise BoardFileError(f"{file}: [{table}] {key}: unknown key")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            raise BoardFileError(f"{file}: [{table}] {name}: missing ({f.metadata['doc']})")
        values[name] = _check_value(file, f"[{table}] {name}", f, raw[name])
    return cls(**values)


def _validate(raw: dict[str, Any], file: str, source: str) -> BoardConfig:
    for key in raw:
        if key not in _TABLES and key != "irq":
            raise BoardFileError(f"{file}: {key}: unknown key")
    parts: dict[str, Any] = {}
    for table, cls in _TABLES.items():
        if table not in raw:
            raise BoardFileError(f"{file}: [{table}]: missing table")
        parts[table] = _build(file, table, cls, raw[table])
    irq_raw = raw.get("irq")
    if not isinstance(irq_raw, dict):
        raise BoardFileError(f"{file}: [irq]: missing table")
    irq: dict[str, IrqLineConfig] = {}
    for name, line in irq_raw.items():
        if name not in IRQ_LINE_NAMES:
            raise BoardFileError(f"{file}: [irq] {name}: unknown interrupt line")
        irq[name] = _build(file, f"irq.{name}", IrqLineConfig, line)
    for name in IRQ_LINE_NAMES:
        if name not in irq:
            raise BoardFileError(f"{file}: [irq] {name}: missing interrupt line")
    numbers: dict[int, str] = {}
    for name, line_cfg in irq.items():
        if line_cfg.line in numbers:
            raise BoardFileError(
                f"{file}: [irq.{name}] line: {line_cfg.line} is already {numbers[line_cfg.line]}"
            )
        numbers[line_cfg.line] = name
    flash: FlashConfig = parts["flash"]
    if flash.signing_key:
        key_path = Path(flash.signing_key)
        if not key_path.is_absolute():
            key_path = Path(source).parent / key_path
        if not key_path.is_file():
            raise BoardFileError(f"{file}: [flash] signing_key: no key file at {key_path}")
        parts["flash"] = dataclasses.replace(flash, signing_key=str(key_path))
    size = parts["flash"].sector_size_bytes
    if size & (size - 1):
        raise BoardFileError(
            f"{file}: [flash] sector_size_bytes: {size} is not a power of two"
        )
    config = BoardConfig(irq=irq, source=source, **parts)
    _check_consistency(file, config)
    return config


def _check_consistency(file: str, c: BoardConfig) -> None:
    p = c.paper_path
    order = [("feed_sensor_mm", p.feed_sensor_mm), ("drum_mm", p.drum_mm),
             ("fuser_mm", p.fuser_mm), ("exit_sensor_mm", p.exit_sensor_mm),
             ("output_mm", p.output_mm)]
    for (a_name, a), (b_name, b) in itertools.pairwise(order):
        if not a < b:
            raise BoardFileError(
                f"{file}: [paper_path] {b_name}: {b} must lie beyond {a_name} ({a})"
            )
    pitch_mm = c.engine.paper_speed_mm_s * 60.0 / c.engine.rated_ppm
    if not pitch_mm > c.engine.sheet_length_mm:
        raise BoardFileError(
            f"{file}: [engine] rated_ppm: at {c.engine.rated_ppm} ppm and "
            f"{c.engine.paper_speed_mm_s} mm/s a sheet ({c.engine.sheet_length_mm} mm) "
            f"cannot clear the pickup roller before the next pickup"
        )
    if c.tray.loaded_sheets > c.tray.capacity_sheets:
        raise BoardFileError(
            f"{file}: [tray] loaded_sheets: {c.tray.loaded_sheets} exceeds capacity_sheets "
            f"({c.tray.capacity_sheets})"
        )
    f = c.fuser
    if not f.ready_c + f.hysteresis_c < f.max_c:
        raise BoardFileError(
            f"{file}: [fuser] max_c: {f.max_c} never reaches ready_c + hysteresis_c "
            f"({f.ready_c + f.hysteresis_c})"
        )
    if not f.ready_c + f.hysteresis_c < f.over_temp_c:
        raise BoardFileError(
            f"{file}: [fuser] over_temp_c: {f.over_temp_c} must be above ready_c + hysteresis_c"
        )
    if not f.plausible_min_c < f.ambient_c < f.plausible_max_c:
        raise BoardFileError(
            f"{file}: [fuser] ambient_c: {f.ambient_c} is outside the plausible range "
            f"[{f.plausible_min_c}, {f.plausible_max_c}]"
        )
    t = c.toner
    if not t.empty_pct < t.low_pct:
        raise BoardFileError(f"{file}: [toner] empty_pct: {t.empty_pct} must be below low_pct")
    e = c.engine
    if not e.watchdog_kick_ms < e.watchdog_timeout_ms:
        raise BoardFileError(
            f"{file}: [engine] watchdog_kick_ms: {e.watchdog_kick_ms} must be below "
            f"watchdog_timeout_ms ({e.watchdog_timeout_ms})"
        )
    s = c.serial
    if not s.heartbeat_ms < s.link_dead_ms:
        raise BoardFileError(
            f"{file}: [serial] link_dead_ms: {s.link_dead_ms} must be above heartbeat_ms"
        )
