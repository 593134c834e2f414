"""Load and validate board files.

``load_board("lp-2000")`` finds a board shipped with the package; a path loads that
file. ``extends = "NAME"`` (a shipped board or a path relative to the file) is loaded
first and the file's tables are merged over it key by key; a cycle of ``extends`` is an
error naming the chain. A board file is a regular UTF-8 file (a byte order mark is
accepted) of at most 1 MiB (`CONFIG_FILE_LIMIT_BYTES`).

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

from boards._input_file import CONFIG_FILE_LIMIT_BYTES, InputFileError, read_input_file
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
_MIN_BAND_CROSSING_S = 0.001
"""The fuser's control band takes at least this long to cross, heating or cooling."""
_MAX_SLOT_BYTES = 16 << 20
"""An image slot holds at most 16 MiB (the flash file: two slots and their status)."""


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
    try:
        raw = _load_merged(path, chain=())
        return _validate(raw, path.name, str(path))
    except RecursionError:  # tables nested thousands deep, merged or checked
        raise BoardFileError(f"{path.name}: tables nested too deeply") from None


def _resolve(ref: str, relative_to: Path | None) -> Path:
    where = f"{relative_to.name}: extends: " if relative_to else ""
    if "\0" in ref:
        raise BoardFileError(f"{where}not a board name or path (it holds a NUL): {ref[:40]!r}")
    looks_like_path = ref.endswith(".toml") or "/" in ref or "\\" in ref
    try:
        if looks_like_path:
            path = Path(ref)
            if relative_to is not None and not path.is_absolute():
                path = relative_to.parent / path
            if not path.exists():
                raise BoardFileError(f"{where}no board file at {path}")
            return path
        shipped = resources.files("boards").joinpath(f"{ref}.toml")
        found = shipped.is_file()
    except OSError as e:  # a name the file system refuses (too long a component, ...)
        raise BoardFileError(f"{where}cannot use {ref[:40]!r}: {e.strerror}") from None
    if not found:
        known = ", ".join(available_boards())
        raise BoardFileError(f"{where}unknown board {ref!r} (shipped boards: {known})")
    return Path(str(shipped))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = read_input_file(path, CONFIG_FILE_LIMIT_BYTES, "board file")
    except InputFileError as e:
        raise BoardFileError(str(e)) from None
    try:
        # utf-8-sig: a byte order mark, as some editors write, is accepted and dropped.
        return tomllib.loads(data.decode("utf-8-sig"))
    except tomllib.TOMLDecodeError as e:
        raise BoardFileError(f"{path.name}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise BoardFileError(f"{path.name}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise BoardFileError(f"{path.name}: not valid TOML: nested too deeply") from None


def _load_merged(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    key = path.resolve()
    if key in chain:
        names = " -> ".join(p.name for p in (*chain, key))
        raise BoardFileError(f"{path.name}: extends: a cycle ({names})")
    if len(chain) > _MAX_EXTENDS_DEPTH:
        raise BoardFileError(f"{path.name}: extends: chain deeper than {_MAX_EXTENDS_DEPTH}")
    raw = _read_toml(path)
    parent_ref = raw.pop("extends", None)
    if parent_ref is None:
        return raw
    if not isinstance(parent_ref, str):
        raise BoardFileError(f"{path.name}: extends: expected a board name or path")
    base = _load_merged(_resolve(parent_ref, path), (*chain, key))
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
    if not f.ready_c + f.hysteresis_c < f.cutoff_c < f.over_temp_c:
        raise BoardFileError(
            f"{file}: [fuser] cutoff_c: {f.cutoff_c} must lie above ready_c + hysteresis_c "
            f"({f.ready_c + f.hysteresis_c}) and below over_temp_c ({f.over_temp_c})"
        )
    if not f.plausible_min_c < f.ambient_c < f.plausible_max_c:
        raise BoardFileError(
            f"{file}: [fuser] ambient_c: {f.ambient_c} is outside the plausible range "
            f"[{f.plausible_min_c}, {f.plausible_max_c}]"
        )
    # The control band is crossed by the heater's exponential approach: a band crossed in
    # microseconds makes the run an endless string of crossings (slower than real time).
    band_s = f.tau_s * 2 * f.hysteresis_c / max(f.max_c - f.ready_c, f.ready_c - f.ambient_c)
    if band_s < _MIN_BAND_CROSSING_S:
        raise BoardFileError(
            f"{file}: [fuser] tau_s: with hysteresis_c {f.hysteresis_c} the control band is "
            f"crossed in {band_s * 1e3:.3g} ms, under {_MIN_BAND_CROSSING_S * 1e3:g} ms "
            f"(raise tau_s or hysteresis_c)")
    t = c.toner
    if not t.empty_pct < t.low_pct:
        raise BoardFileError(f"{file}: [toner] empty_pct: {t.empty_pct} must be below low_pct")
    e = c.engine
    if not e.watchdog_kick_ms < e.watchdog_timeout_ms:
        raise BoardFileError(
            f"{file}: [engine] watchdog_kick_ms: {e.watchdog_kick_ms} must be below "
            f"watchdog_timeout_ms ({e.watchdog_timeout_ms})"
        )
    slot_bytes = c.flash.sector_size_bytes * c.flash.slot_sectors
    if slot_bytes > _MAX_SLOT_BYTES:
        raise BoardFileError(
            f"{file}: [flash] slot_sectors: {c.flash.slot_sectors} sectors of "
            f"{c.flash.sector_size_bytes} bytes make a {slot_bytes} byte slot, over "
            f"{_MAX_SLOT_BYTES} ({_MAX_SLOT_BYTES >> 20} MiB)")
    s = c.serial
    if not s.heartbeat_ms < s.link_dead_ms:
        raise BoardFileError(
            f"{file}: [serial] link_dead_ms: {s.link_dead_ms} must be above heartbeat_ms"
        )
