"""Scenario files: a board, a seed, jobs, and faults at given moments (TOML).

The same files drive ``printer-emu run --scenario`` and the HIL harness's
``printer.play()``. Format::

    board = "lp-2000"          # optional: name or path (the CLI's --board wins)
    seed = 1                   # optional
    [[job]]                    # pages + coverage (percent), or file (relative to this)
    pages = 120
    coverage = 5
    [[at]]                     # one moment and one action per table
    page = 40                  # or time = "12.5s" | "800ms" | 12.5; page may take job = N
    toner_pct = 5

Actions: ``toner_pct``, ``replace_toner``, ``tray``, ``jam`` ("feed" | "exit"),
``misfeed``, ``cover`` ("open" | "closed"), ``press`` ("cancel" | "continue"),
``submit`` ({pages, coverage}), ``heater`` ("failed" | "ok").

Every mistake is a :class:`ScenarioError` naming the file and the key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boards import CONFIG_FILE_LIMIT_BYTES, InputFileError, read_input_file


class ScenarioError(ValueError):
    """A scenario file that cannot be used; one line naming file and key."""


@dataclass(frozen=True)
class JobSpec:
    pages: int = 0
    coverage_pct: float = 0.0
    file: Path | None = None


@dataclass(frozen=True)
class Action:
    """One fault or operator action: ``kind`` is the scenario key, ``value`` its value."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Moment:
    """When an action happens: at ``t_ns``, or when page ``page`` (of the run, or of
    job ``job``) starts to feed."""

    t_ns: int | None = None
    page: int | None = None
    job: int | None = None

    def describe(self) -> str:
        if self.t_ns is not None:
            return f"t={self.t_ns / 1e9:g}s"
        return f"page {self.page}" + (f" of job {self.job}" if self.job else "")


@dataclass(frozen=True)
class TimedAction:
    moment: Moment
    action: Action


@dataclass(frozen=True)
class Scenario:
    board: str | None
    seed: int | None
    jobs: tuple[JobSpec, ...]
    actions: tuple[TimedAction, ...]
    source: str = ""


_ACTION_CHOICES: dict[str, tuple[str, ...]] = {
    "jam": ("feed", "exit"),
    "cover": ("open", "closed"),
    "press": ("cancel", "continue"),
    "heater": ("failed", "ok"),
}
_ACTIONS = ("toner_pct", "replace_toner", "tray", "jam", "misfeed", "cover", "press",
            "submit", "heater")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|min)?\s*$")
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "min": 60_000_000_000, None: 1_000_000_000}
MAX_PAGES = 1_000_000
"""The most pages a job may have (a scenario's ``pages``, ``--pages``)."""
MAX_SEED = 2**63 - 1
"""Seeds are 0 to 2**63 - 1, in a scenario and on the command line alike."""
MAX_MOMENT_NS = 365 * 86_400 * 1_000_000_000
"""The latest moment a scenario may name: a year of simulated time."""


def parse_duration_ns(value: object, where: str) -> int:
    """``"12.5s"``, ``"800ms"``, ``"2min"`` or a number of seconds, as integer ns."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a duration like \"12.5s\", got {value!r}")
    if isinstance(value, int | float):
        return _bounded_ns(value * 1e9, value, where)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return _bounded_ns(float(m.group(1)) * _UNIT_NS[m.group(2)], value, where)
    raise ScenarioError(f"{where}: expected a duration like \"12.5s\" or \"800ms\", got {value!r}")


def _bounded_ns(t_ns: float, value: object, where: str) -> int:
    if t_ns < 0:
        raise ScenarioError(f"{where}: a moment cannot be negative ({value})")
    # `not 0 <= t_ns`: NaN fails every comparison and must not pass.
    if not 0 <= t_ns <= MAX_MOMENT_NS:
        raise ScenarioError(
            f"{where}: {value!r} is out of range [0, {MAX_MOMENT_NS // 1_000_000_000}s]")
    return round(t_ns)


def _int(value: object, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{where}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ScenarioError(f"{where}: {value} is out of range [{lo}, {hi}]")
    return value


def _pct(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{where}: expected a percentage, got {value!r}")
    if not 0.0 <= value <= 100.0:
        raise ScenarioError(f"{where}: {value} is out of range [0, 100]")
    return float(value)


def _job(raw: object, where: str, base_dir: Path) -> JobSpec:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a table")
    for key in raw:
        if key not in ("pages", "coverage", "file"):
            raise ScenarioError(f"{where} {key}: unknown key")
    if "file" in raw:
        if "pages" in raw or "coverage" in raw:
            raise ScenarioError(f"{where}: give either file or pages and coverage, not both")
        if not isinstance(raw["file"], str) or "\0" in raw["file"]:
            raise ScenarioError(f"{where} file: expected a path, got {raw['file']!r}")
        path = Path(raw["file"])
        return JobSpec(file=path if path.is_absolute() else base_dir / path)
    if "pages" not in raw:
        raise ScenarioError(f"{where} pages: missing (or give file)")
    pages = _int(raw["pages"], f"{where} pages", 1, MAX_PAGES)
    coverage = _pct(raw.get("coverage", 5.0), f"{where} coverage")
    return JobSpec(pages=pages, coverage_pct=coverage)


def _action(kind: str, value: object, where: str) -> Action:
    w = f"{where} {kind}"
    if kind == "toner_pct":
        return Action(kind, _pct(value, w))
    if kind == "tray":
        return Action(kind, _int(value, w, 0, 1_000_000))
    if kind in ("replace_toner", "misfeed"):
        if value is not True:
            raise ScenarioError(f"{w}: expected true, got {value!r}")
        return Action(kind, True)
    if kind == "submit":
        spec = _job(value, w, Path("."))
        if spec.file is not None:
            raise ScenarioError(f"{w}: submit takes pages and coverage")
        return Action(kind, spec)
    choices = _ACTION_CHOICES[kind]
    if value not in choices:
        raise ScenarioError(f"{w}: expected one of {', '.join(choices)}, got {value!r}")
    return Action(kind, value)


def _at(raw: object, where: str) -> TimedAction:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a table")
    moments = [k for k in ("time", "page") if k in raw]
    actions = [k for k in raw if k in _ACTIONS]
    for key in raw:
        if key not in ("time", "page", "job") and key not in _ACTIONS:
            raise ScenarioError(f"{where} {key}: unknown key")
    if len(moments) != 1:
        raise ScenarioError(f"{where}: give exactly one moment (time or page)")
    if len(actions) != 1:
        found = ", ".join(actions) if actions else "none"
        raise ScenarioError(f"{where}: give exactly one action (found: {found})")
    if "time" in raw:
        if "job" in raw:
            raise ScenarioError(f"{where} job: goes with page, not time")
        moment = Moment(t_ns=parse_duration_ns(raw["time"], f"{where} time"))
    else:
        page = _int(raw["page"], f"{where} page", 1, MAX_PAGES)
        job = _int(raw["job"], f"{where} job", 1, 1_000_000) if "job" in raw else None
        moment = Moment(page=page, job=job)
    kind = actions[0]
    return TimedAction(moment, _action(kind, raw[kind], where))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file: a regular UTF-8 file (a byte order mark is
    accepted) of at most 1 MiB (`boards.CONFIG_FILE_LIMIT_BYTES`). Raises ScenarioError."""
    p = Path(path)
    try:
        data = read_input_file(p, CONFIG_FILE_LIMIT_BYTES, "scenario file")
    except InputFileError as e:
        raise ScenarioError(str(e)) from None
    try:
        raw = tomllib.loads(data.decode("utf-8-sig"))
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{p.name}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{p.name}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise ScenarioError(f"{p.name}: not valid TOML: nested too deeply") from None
    return parse_scenario(raw, p.name, p.parent)


def parse_scenario(raw: dict[str, Any], name: str = "<scenario>",
                   base_dir: Path | None = None) -> Scenario:
    base = base_dir if base_dir is not None else Path(".")
    for key in raw:
        if key not in ("board", "seed", "job", "at"):
            raise ScenarioError(f"{name}: {key}: unknown key")
    board = raw.get("board")
    if board is not None and not isinstance(board, str):
        raise ScenarioError(f"{name}: board: expected a board name or path, got {board!r}")
    seed = raw.get("seed")
    if seed is not None:
        seed = _int(seed, f"{name}: seed", 0, MAX_SEED)
    jobs_raw = raw.get("job", [])
    if not isinstance(jobs_raw, list):
        raise ScenarioError(f"{name}: job: expected [[job]] tables")
    at_raw = raw.get("at", [])
    if not isinstance(at_raw, list):
        raise ScenarioError(f"{name}: at: expected [[at]] tables")
    jobs = tuple(_job(j, f"{name}: [[job]] #{i + 1}", base) for i, j in enumerate(jobs_raw))
    actions = tuple(_at(a, f"{name}: [[at]] #{i + 1}") for i, a in enumerate(at_raw))
    return Scenario(board, seed, jobs, actions, name)
