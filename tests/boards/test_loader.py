"""The board-file loader (boards/_loader.py): the shipped boards, ``extends``, and every
kind of mistake reported as a one-line :class:`BoardFileError` naming the file and key."""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import os
import re
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from boards import IRQ_LINE_NAMES, BoardConfig, BoardFileError, available_boards, load_board

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("lp-2000", "devkit")

Raw = dict[str, Any]
WriteBoard = Callable[..., Path]


# -- helpers ----------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def dump_toml(data: Raw) -> str:
    """Just enough TOML for board files: top-level keys, tables, inline sub-tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table, body in data.items():
        if isinstance(body, dict):
            lines.append(f"[{table}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def shipped_raw(name: str = "lp-2000") -> Raw:
    """A shipped board file as a dict, read the way the loader finds it."""
    text = resources.files("boards").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@pytest.fixture
def write_board(tmp_path: Path) -> WriteBoard:
    """``write_board(data, name="lp-x.toml")`` writes a board file and returns its path;
    ``data`` is a dict (written as TOML) or raw text."""

    def write(data: Raw | str, name: str = "lp-x.toml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data if isinstance(data, str) else dump_toml(data), encoding="utf-8")
        return path

    return write


def without(raw: Raw, table: str, key: str | None = None) -> Raw:
    out = copy.deepcopy(raw)
    if key is None:
        del out[table]
    else:
        del out[table][key]
    return out


def expect_error(path: Path | str, *fragments: str) -> str:
    """Load ``path``; it must fail with a one-line message naming the file and holding
    every fragment (the key, and what is wrong). Returns the message."""
    with pytest.raises(BoardFileError) as info:
        load_board(path)
    message = str(info.value)
    assert "\n" not in message
    assert Path(path).name in message
    for fragment in fragments:
        assert fragment in message
    return message


def override(**tables: Raw) -> Raw:
    """A board file that extends lp-2000 and overrides some keys."""
    return {"extends": "lp-2000", **tables}


# -- the shipped boards -----------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_board_loads(name: str) -> None:
    config = load_board(name)
    assert isinstance(config, BoardConfig)
    assert config.name == name
    assert set(config.irq) == set(IRQ_LINE_NAMES)
    assert Path(config.source).is_file()
    assert config.page_pitch_ns == round(60e9 / config.engine.rated_ppm)


def test_available_boards_lists_the_shipped_ones() -> None:
    assert set(SHIPPED) <= set(available_boards())
    assert available_boards() == sorted(available_boards())


def test_shipped_boards_are_package_resources_found_from_anywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # load_board reads through importlib.resources, not the working directory, so a
    # non-editable install (site-packages/boards/*.toml) finds them the same way.
    monkeypatch.chdir(tmp_path)
    package = resources.files("boards")
    shipped = sorted(p.name for p in package.iterdir() if p.name.endswith(".toml"))
    assert shipped == sorted(f"{name}.toml" for name in available_boards())
    for name in available_boards():
        config = load_board(name)
        assert Path(config.source).name == f"{name}.toml"
        assert Path(config.source).parent == Path(str(package))


def test_packaging_ships_every_board_file_and_every_subpackage() -> None:
    # What `pip install .` puts in a wheel: every package of ours found by the include
    # patterns (subpackages too), not the checkout's benchmarks, and the board files.
    from setuptools import find_packages

    setuptools_cfg = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"
    ]["setuptools"]
    shipped = set(
        find_packages(str(REPO), include=setuptools_cfg["packages"]["find"]["include"])
    )
    ours = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("hal", "firmware", "emulator", "boards")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert ours <= shipped
    assert "benchmarks" not in shipped
    patterns = setuptools_cfg["package-data"]["boards"]
    for path in (REPO / "boards").glob("*.toml"):
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), path.name


# -- extends ----------------------------------------------------------------------------


def test_extends_merges_key_by_key() -> None:
    base, devkit = load_board("lp-2000"), load_board("devkit")
    devkit_raw = shipped_raw("devkit")
    assert devkit_raw["extends"] == "lp-2000"
    # Overridden keys take the child's value ...
    assert devkit.engine.rated_ppm == devkit_raw["engine"]["rated_ppm"]
    assert devkit.fuser.tau_s == devkit_raw["fuser"]["tau_s"]
    # ... keys of the same table it does not mention keep the parent's ...
    assert "sheet_length_mm" not in devkit_raw["engine"]
    assert devkit.engine.sheet_length_mm == base.engine.sheet_length_mm
    assert devkit.fuser.ready_c == base.fuser.ready_c
    # ... and tables it does not mention are the parent's.
    assert devkit.paper_path == base.paper_path
    assert devkit.irq == base.irq


def test_extends_a_path_relative_to_the_file_and_merges_inline_tables(
    write_board: WriteBoard,
) -> None:
    write_board(override(tray={"loaded_sheets": 10}), name="family/parent.toml")
    child = write_board(
        {
            "extends": "parent.toml",
            "board": {"name": "child"},
            "irq": {"toner": {"priority": 3}},
        },
        name="family/child.toml",
    )
    config = load_board(child)
    base = load_board("lp-2000")
    assert config.name == "child"
    assert config.board.description == base.board.description
    assert config.tray.loaded_sheets == 10  # from the middle of the chain
    assert config.irq["toner"].priority == 3
    assert config.irq["toner"].line == base.irq["toner"].line  # kept from lp-2000


def test_extends_an_unknown_board(write_board: WriteBoard) -> None:
    expect_error(write_board({"extends": "lp-9000"}), "extends", "unknown board 'lp-9000'")


def test_extends_a_missing_path(write_board: WriteBoard) -> None:
    expect_error(write_board({"extends": "gone.toml"}), "extends", "no board file", "gone.toml")


def test_extends_must_be_a_name_or_path(write_board: WriteBoard) -> None:
    expect_error(write_board({"extends": 5}), "extends", "expected a board name or path")


def test_extends_cycle_is_an_error(write_board: WriteBoard) -> None:
    write_board({"extends": "b.toml"}, name="a.toml")
    write_board({"extends": "a.toml"}, name="b.toml")
    with pytest.raises(BoardFileError, match="extends") as info:
        load_board(write_board({"extends": "a.toml"}, name="start.toml"))
    assert ".toml" in str(info.value)


def test_extends_itself_is_an_error(write_board: WriteBoard) -> None:
    with pytest.raises(BoardFileError, match=re.escape("self.toml: extends")):
        load_board(write_board({"extends": "self.toml"}, name="self.toml"))


def test_an_extends_cycle_is_named_as_one_with_its_chain(write_board: WriteBoard) -> None:
    write_board({"extends": "b.toml"}, name="a.toml")
    write_board({"extends": "c.toml"}, name="b.toml")
    write_board({"extends": "a.toml"}, name="c.toml")
    expect_error(write_board({"extends": "a.toml"}, name="top.toml"),
                 "extends: a cycle (top.toml -> a.toml -> b.toml -> c.toml -> a.toml)")


def test_an_extends_name_the_file_system_refuses_is_one_line(write_board: WriteBoard) -> None:
    expect_error(write_board({"extends": "x" * 300}), "extends: cannot use", "too long")
    expect_error(write_board({"extends": "y" * 300 + ".toml"}), "extends: cannot use")
    expect_error(write_board({"extends": "a\u0000b"}), "extends: not a board name or path")


@pytest.mark.parametrize("text", [
    "a = " + "[" * 2000 + "]" * 2000 + "\n",
    "a = " + "{b = " * 2000 + "1" + "}" * 2000 + "\n",
])
def test_deep_nesting_is_one_line(write_board: WriteBoard, text: str) -> None:
    expect_error(write_board(text), "nested too deeply")


def test_deep_tables_merged_by_extends_are_one_line(write_board: WriteBoard) -> None:
    deep = "[" + ".".join(["t"] * 2000) + "]\nx = 1\n"
    write_board(deep, name="base.toml")
    expect_error(write_board('extends = "base.toml"\n' + deep), "nested too deeply")


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b'\xef\xbb\xbfextends = "devkit"\n')
    assert load_board(path).name == load_board("devkit").name


def test_a_board_file_is_a_regular_file_under_the_cap(write_board: WriteBoard,
                                                      tmp_path: Path) -> None:
    expect_error("/dev/zero", "not a regular file (a board file must be one)")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    expect_error(fifo, "not a regular file")
    expect_error(write_board("# " + "x" * (1 << 20)), "over the board file limit of 1048576")


def test_extends_chain_too_deep(write_board: WriteBoard) -> None:
    depth = 12
    for i in range(depth):
        parent = "lp-2000" if i == depth - 1 else f"level{i + 1}.toml"
        write_board({"extends": parent}, name=f"level{i}.toml")
    with pytest.raises(BoardFileError, match="extends: chain deeper than"):
        load_board(write_board({"extends": "level0.toml"}, name="top.toml"))


def test_a_short_extends_chain_is_fine(write_board: WriteBoard) -> None:
    write_board(override(tray={"loaded_sheets": 1}), name="one.toml")
    write_board({"extends": "one.toml", "tray": {"loaded_sheets": 2}}, name="two.toml")
    three = write_board({"extends": "two.toml"}, name="three.toml")
    assert load_board(three).tray.loaded_sheets == 2


def test_errors_in_a_parent_name_the_parent(write_board: WriteBoard) -> None:
    write_board("[engine\n", name="broken-parent.toml")
    child = write_board({"extends": "broken-parent.toml"}, name="child.toml")
    with pytest.raises(BoardFileError, match=re.escape("broken-parent.toml: not valid TOML")):
        load_board(child)


# -- finding and reading the file -------------------------------------------------------


def test_unknown_shipped_board() -> None:
    with pytest.raises(BoardFileError, match="unknown board 'lp-9000'") as info:
        load_board("lp-9000")
    assert "lp-2000" in str(info.value)  # says what there is


def test_missing_board_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nowhere.toml", "no board file")


def test_invalid_toml(write_board: WriteBoard) -> None:
    expect_error(write_board("[engine]\nrated_ppm = = 3\n"), "not valid TOML")


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[board]\nname = "caf\xe9"\n'.encode("latin-1"))
    expect_error(path)


def test_unreadable_file(write_board: WriteBoard, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_board(override())
    real_open = os.open

    # Permission bits do not stop root (CI runs as root): fail the open itself instead.
    def deny(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    expect_error(path, "cannot read", "Permission denied")


# -- unknown and missing keys -----------------------------------------------------------


def test_unknown_top_level_key(write_board: WriteBoard) -> None:
    expect_error(write_board({**override(), "colour": "red"}), "colour: unknown key")


def test_unknown_top_level_table(write_board: WriteBoard) -> None:
    expect_error(write_board(override(laser={"power_mw": 5})), "laser: unknown key")


def test_unknown_key_in_a_table(write_board: WriteBoard) -> None:
    expect_error(write_board(override(engine={"turbo": True})), "[engine] turbo: unknown key")


def test_unknown_irq_line(write_board: WriteBoard) -> None:
    path = write_board(override(irq={"laser": {"line": 20, "priority": 1}}))
    expect_error(path, "[irq] laser: unknown interrupt line")


def test_unknown_key_in_an_irq_line(write_board: WriteBoard) -> None:
    path = write_board(override(irq={"toner": {"edge": "rising"}}))
    expect_error(path, "[irq.toner] edge: unknown key")


@pytest.mark.parametrize(
    ("table", "key"),
    [("engine", "rated_ppm"), ("fuser", "tau_s"), ("toner", "empty_policy"), ("board", "name")],
)
def test_missing_key(write_board: WriteBoard, table: str, key: str) -> None:
    message = expect_error(write_board(without(shipped_raw(), table, key)), f"[{table}] {key}")
    assert "missing" in message


@pytest.mark.parametrize("table", ["board", "engine", "paper_path", "tray", "serial", "irq"])
def test_missing_table(write_board: WriteBoard, table: str) -> None:
    expect_error(write_board(without(shipped_raw(), table)), f"[{table}]: missing table")


def test_missing_irq_line(write_board: WriteBoard) -> None:
    path = write_board(without(shipped_raw(), "irq", "link"))
    expect_error(path, "[irq] link: missing interrupt line")


def test_missing_key_in_an_irq_line(write_board: WriteBoard) -> None:
    raw = shipped_raw()
    raw["irq"]["toner"] = {"line": 8}
    expect_error(write_board(raw), "[irq.toner] priority: missing")


# -- types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key", "value", "expected"),
    [
        ("fuser", "tau_s", "fast", "expected a number, got 'fast'"),  # string for number
        ("fuser", "max_c", True, "expected a number, got True"),  # bool for float
        ("tray", "capacity_sheets", True, "expected an integer, got True"),  # bool for int
        ("engine", "rated_ppm", 30.5, "expected an integer, got 30.5"),  # float for int
        ("engine", "rated_ppm", 30.0, "expected an integer, got 30.0"),  # integral float
        ("engine", "rated_ppm", "30", "expected an integer, got '30'"),  # string for int
        ("serial", "window", {"n": 8}, "expected an integer"),  # table for int
        ("board", "name", 5, "expected a string, got 5"),  # number for string
        ("toner", "empty_policy", False, "expected a string"),  # bool for a choice
    ],
)
def test_wrong_type(
    write_board: WriteBoard, table: str, key: str, value: object, expected: str
) -> None:
    expect_error(write_board(override(**{table: {key: value}})), f"[{table}] {key}", expected)


def test_an_integer_is_a_fine_number(write_board: WriteBoard) -> None:
    config = load_board(write_board(override(fuser={"max_c": 251})))
    assert config.fuser.max_c == 251.0
    assert isinstance(config.fuser.max_c, float)


def test_a_table_that_is_not_a_table(write_board: WriteBoard) -> None:
    expect_error(write_board({**override(), "engine": 5}), "[engine]: expected a table")


def test_an_irq_line_that_is_not_a_table(write_board: WriteBoard) -> None:
    expect_error(write_board(override(irq={"toner": 8})), "[irq.toner]: expected a table")


def test_an_irq_table_that_is_not_a_table(write_board: WriteBoard) -> None:
    raw = shipped_raw()
    raw["irq"] = 5
    expect_error(write_board(raw), "[irq]")


# -- ranges and choices -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ("engine", "rated_ppm", 0),  # int below
        ("serial", "window", 65),  # int above
        ("fuser", "tau_s", 0.0),  # float below
        ("fuser", "ambient_c", -41),  # an int given for a float, below
        ("toner", "loaded_pct", 100.5),  # float above
        ("toner", "loaded_pct", math.inf),
        ("irq", "toner", 256),  # an irq line number above
    ],
)
def test_out_of_range(write_board: WriteBoard, table: str, key: str, value: int | float) -> None:
    if table == "irq":
        path = write_board(override(irq={key: {"line": value}}))
        expect_error(path, f"[irq.{key}] line", "out of range")
    else:
        expect_error(
            write_board(override(**{table: {key: value}})), f"[{table}] {key}", "out of range"
        )


def test_irq_priority_out_of_range(write_board: WriteBoard) -> None:
    path = write_board(override(irq={"fuser": {"priority": -1}}))
    expect_error(path, "[irq.fuser] priority", "out of range")


def test_nan_is_out_of_range(write_board: WriteBoard) -> None:
    expect_error(write_board(override(fuser={"tau_s": math.nan})), "[fuser] tau_s")


def test_range_bounds_are_inclusive(write_board: WriteBoard) -> None:
    config = load_board(write_board(override(serial={"window": 64}, engine={"rated_ppm": 1})))
    assert (config.serial.window, config.engine.rated_ppm) == (64, 1)


def test_bad_choice(write_board: WriteBoard) -> None:
    path = write_board(override(toner={"empty_policy": "pause"}))
    expect_error(path, "[toner] empty_policy", "expected one of stop, continue", "'pause'")


def test_every_choice_is_accepted(write_board: WriteBoard) -> None:
    for policy in ("stop", "continue"):
        path = write_board(override(toner={"empty_policy": policy}), name=f"{policy}.toml")
        assert load_board(path).toner.empty_policy == policy


# -- consistency ------------------------------------------------------------------------
#
# One case per check in _check_consistency, each against lp-2000's values (feed 60,
# drum 110, fuser 190, exit 250, output 300; tray 250/250; fuser ready 180 + hysteresis
# 5, max 250, over-temp 230, ambient 25 in [-20, 300]; toner low 10, empty 1; watchdog
# kick 250 / timeout 1000; serial heartbeat 200 / link dead 1000).


@pytest.mark.parametrize(
    ("tables", "key"),
    [
        ({"paper_path": {"drum_mm": 50.0}}, "[paper_path] drum_mm"),
        ({"paper_path": {"fuser_mm": 110.0}}, "[paper_path] fuser_mm"),  # equal: not beyond
        ({"paper_path": {"exit_sensor_mm": 100.0}}, "[paper_path] exit_sensor_mm"),
        ({"paper_path": {"output_mm": 250.0}}, "[paper_path] output_mm"),
        ({"tray": {"loaded_sheets": 251}}, "[tray] loaded_sheets"),
        ({"fuser": {"max_c": 185.0}}, "[fuser] max_c"),
        ({"fuser": {"over_temp_c": 185.0}}, "[fuser] over_temp_c"),
        ({"fuser": {"cutoff_c": 185.0}}, "[fuser] cutoff_c"),  # equal: not above the band
        ({"fuser": {"cutoff_c": 230.0}}, "[fuser] cutoff_c"),  # equal: not below over_temp_c
        ({"fuser": {"plausible_min_c": 25.0}}, "[fuser] ambient_c"),
        ({"fuser": {"plausible_max_c": 20.0}}, "[fuser] ambient_c"),
        ({"toner": {"empty_pct": 10.0}}, "[toner] empty_pct"),
        ({"engine": {"watchdog_kick_ms": 1000.0}}, "[engine] watchdog_kick_ms"),
        ({"serial": {"link_dead_ms": 200.0}}, "[serial] link_dead_ms"),
    ],
)
def test_inconsistent_values(write_board: WriteBoard, tables: dict[str, Raw], key: str) -> None:
    expect_error(write_board(override(**tables)), key)


def test_consistency_checks_pass_at_their_edges(write_board: WriteBoard) -> None:
    # Just inside each check: all of these together still make a valid board.
    path = write_board(
        override(
            paper_path={"drum_mm": 60.5},
            tray={"loaded_sheets": 250},
            fuser={"max_c": 185.5, "over_temp_c": 185.5, "cutoff_c": 185.25},
            toner={"empty_pct": 9.5},
            engine={"watchdog_kick_ms": 999.0},
            serial={"link_dead_ms": 201.0},
        )
    )
    load_board(path)


def test_duplicate_irq_line_numbers(write_board: WriteBoard) -> None:
    taken = load_board("lp-2000").irq["cover_open"].line
    path = write_board(override(irq={"toner": {"line": taken}}))
    message = expect_error(path, "line", f"{taken} is already")
    assert "cover_open" in message and "toner" in message


def test_a_fuser_band_crossed_in_microseconds_is_refused(write_board: WriteBoard) -> None:
    # In range one by one, together a run slower than real time (3 pages, 14 s wall).
    expect_error(write_board(override(fuser={"tau_s": 0.003, "hysteresis_c": 0.1})),
                 "[fuser] tau_s:", "control band is crossed in", "under 1 ms")


def test_a_flash_slot_over_16_mib_is_refused(write_board: WriteBoard) -> None:
    # 1 MiB sectors x 4,096 slot sectors: an 8 GiB flash file for serve.
    expect_error(write_board(override(flash={"sector_size_bytes": 1 << 20,
                                             "slot_sectors": 4096})),
                 "[flash] slot_sectors:", "over 16777216 (16 MiB)")
