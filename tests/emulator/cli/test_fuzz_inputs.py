"""Issue 16: a bounded fuzz of what a user hands ``printer-emu run`` — board files,
scenario files, job files and the options — through the CLI's ``main`` in-process.

Whatever comes in, the command ends (a few seconds at most: the generated runs are
short) with exit status 0 or 1 (a run, its one JSON object on stdout), 2 (one line on
stderr, ``printer-emu: error: ...``) or never a traceback."""

from __future__ import annotations

import json
import math
import os
import signal
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from emulator.cli import main

_EXAMPLE_LIMIT_S = 30


@contextmanager
def no_hang(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block takes over ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise AssertionError(f"printer-emu run took over {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_text(data: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in data.items())


scalars = st.one_of(
    st.booleans(), st.integers(-3, 3), st.sampled_from([0, -1, 250, 10**6 + 1, 2**63, 2**70]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["1s", "800ms", "2min", "-1s", "open", "closed", "feed", "exit", "cancel",
                     "continue", "failed", "ok", "lp-2000", "devkit", "/dev/zero", "x\x00y"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)

_AT_KEYS = ["time", "page", "job", "toner_pct", "replace_toner", "tray", "jam", "misfeed",
            "cover", "press", "submit", "heater", "bogus"]
small_pages = st.integers(-1, 3)
short_times = st.one_of(st.integers(-1, 20), st.sampled_from(
    ["1s", "500ms", "-1s", "1e400s", float("nan"), float("inf"), 1e300]))


@st.composite
def at_tables(draw: st.DrawFn) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(_AT_KEYS), min_size=1, max_size=3, unique=True)):
        if key == "time":
            table[key] = draw(short_times)
        elif key in ("page", "job"):
            table[key] = draw(small_pages)
        elif key == "submit":
            table[key] = draw(st.one_of(st.fixed_dictionaries({"pages": small_pages}), values))
        else:
            table[key] = draw(values)
    return table


@st.composite
def scenarios(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data["seed"] = draw(st.one_of(st.integers(-2, 5), st.sampled_from([2**63, 2**63 - 1])))
    if draw(st.booleans()):
        data["board"] = draw(st.sampled_from(["lp-2000", "devkit", "nope", "x" * 300, "a/b"]))
    jobs = draw(st.lists(st.one_of(
        st.fixed_dictionaries({"pages": small_pages}, optional={"coverage": values}),
        st.fixed_dictionaries({"file": st.sampled_from(
            ["job.txt", "/dev/zero", "/dev/urandom", "missing.txt", "a\x00b", "."])}),
        values), max_size=2))
    if jobs:
        data["job"] = jobs
    ats = draw(st.lists(at_tables(), max_size=3))
    if ats:
        data["at"] = ats
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.text(max_size=5))] = draw(values)
    text = toml_text(data)
    if draw(st.integers(0, 19)) == 0:
        text = "a = " + "[" * 1500 + "]" * 1500 + "\n"
    prefix = b"\xef\xbb\xbf" if draw(st.integers(0, 9)) == 0 else b""
    return prefix + text.encode()


def _shipped(name: str) -> dict[str, Any]:
    text = resources.files("boards").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


_LP = _shipped("lp-2000")


@st.composite
def boards(draw: st.DrawFn) -> bytes:
    """A shipped board with a few keys changed, dropped or added (or random bytes)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    data: dict[str, Any] = {"extends": draw(st.sampled_from(
        ["lp-2000", "devkit", "board.toml", "x" * 300, "missing.toml"]))}
    for _ in range(draw(st.integers(0, 3))):
        table = draw(st.sampled_from(sorted(k for k, v in _LP.items() if isinstance(v, dict))))
        key = draw(st.sampled_from([*sorted(_LP[table]), "bogus"]))
        data.setdefault(table, {})[key] = draw(values)
    top = toml_text({k: v for k, v in data.items() if not isinstance(v, dict)})
    tables = "".join(f"[{table}]\n{toml_text(body)}"
                     for table, body in data.items() if isinstance(body, dict))
    return (top + tables).encode()


options = st.lists(st.one_of(
    st.tuples(st.just("--pages"), st.sampled_from(["0", "-1", "1", "2", "3", "1000001",
                                                   "10000000", "1e3", "x"])),
    st.tuples(st.just("--coverage"), st.sampled_from(["5", "-1", "101", "nan", "inf", "z"])),
    st.tuples(st.just("--seed"), st.sampled_from(["0", "-1", "7", str(2**63), "x"])),
    st.tuples(st.just("--speed"), st.sampled_from(["max", "0", "-1", "nan", "fast"])),
    st.tuples(st.just("--trace"), st.sampled_from(["t.jsonl", "t.vcd", "t.txt", "no/t.jsonl",
                                                   "fifo.jsonl", "."])),
    st.tuples(st.just("--baud"), st.sampled_from(["9600", "-1"])),
    st.tuples(st.just("--board"), st.sampled_from(["board.toml", "devkit", "nope", "/dev/zero"])),
    st.tuples(st.just("--job"), st.sampled_from(["job.txt", "/dev/zero", "fifo.jsonl",
                                                 "missing.txt"])),
), max_size=4)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(board=boards(), scenario=scenarios(), job=st.binary(max_size=300), argv=options,
       use_scenario=st.booleans())
def test_run_never_tracebacks_or_hangs(
        board: bytes, scenario: bytes, job: bytes, argv: list[tuple[str, str]],
        use_scenario: bool, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path_factory.mktemp("fuzz")
    (work / "board.toml").write_bytes(board)
    (work / "scenario.toml").write_bytes(scenario)
    (work / "job.txt").write_bytes(job)
    os.mkfifo(work / "fifo.jsonl")
    monkeypatch.chdir(work)
    args = ["run", "--json"]
    if use_scenario:
        args += ["--scenario", "scenario.toml"]
    for option in argv:
        args += list(option)
    if "--pages" not in args and not use_scenario:
        args += ["--pages", "2"]
    capsys.readouterr()
    with no_hang(_EXAMPLE_LIMIT_S):
        code = main(args)
    out, err = capsys.readouterr()
    event(f"exit status {code}")  # --hypothesis-show-statistics: how often runs happen
    assert "Traceback" not in out + err
    if code == 2:
        assert out == "" and err.startswith("printer-emu: error: ") and err.count("\n") == 1, err
    else:
        assert code in (0, 1), (code, out, err)
        assert json.loads(out)["outcome"]
        assert err == ""

