"""Scenario files: what they may say, and every mistake a ScenarioError naming the file and
the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.run import Action, JobSpec, Moment, ScenarioError, TimedAction, load_scenario
from emulator.run._scenario import parse_duration_ns


def _write(tmp_path: Path, text: str, name: str = "sc.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_full_scenario_loads(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    path = _write(tmp_path, """
board = "devkit"
seed = 42
[[job]]
pages = 12
coverage = 7.5
[[job]]
file = "jobs/letter.txt"
[[job]]
pages = 3
[[at]]
page = 4
toner_pct = 5
[[at]]
page = 2
job = 3
jam = "exit"
[[at]]
time = "1.5s"
cover = "open"
[[at]]
time = "800ms"
press = "cancel"
[[at]]
time = 3
submit = { pages = 2, coverage = 1 }
[[at]]
time = "2min"
replace_toner = true
[[at]]
page = 1
misfeed = true
[[at]]
time = "10us"
heater = "failed"
[[at]]
time = "7ns"
tray = 0
""")
    sc = load_scenario(path)
    assert sc.board == "devkit" and sc.seed == 42 and sc.source == "sc.toml"
    assert sc.jobs == (JobSpec(12, 7.5), JobSpec(file=tmp_path / "jobs/letter.txt"),
                       JobSpec(3, 5.0))
    assert sc.actions == (
        TimedAction(Moment(page=4), Action("toner_pct", 5.0)),
        TimedAction(Moment(page=2, job=3), Action("jam", "exit")),
        TimedAction(Moment(t_ns=1_500_000_000), Action("cover", "open")),
        TimedAction(Moment(t_ns=800_000_000), Action("press", "cancel")),
        TimedAction(Moment(t_ns=3_000_000_000), Action("submit", JobSpec(2, 1.0))),
        TimedAction(Moment(t_ns=120_000_000_000), Action("replace_toner", True)),
        TimedAction(Moment(page=1), Action("misfeed", True)),
        TimedAction(Moment(t_ns=10_000), Action("heater", "failed")),
        TimedAction(Moment(t_ns=7), Action("tray", 0)),
    )


def test_an_empty_scenario_is_valid(tmp_path: Path) -> None:
    sc = load_scenario(_write(tmp_path, ""))
    assert (sc.board, sc.seed, sc.jobs, sc.actions) == (None, None, (), ())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1", "sc.toml: colour: unknown key"),
        ("board = 3", "sc.toml: board: expected a board name or path, got 3"),
        ("seed = -1", "sc.toml: seed: -1 is out of range"),
        ("seed = 'x'", "sc.toml: seed: expected an integer, got 'x'"),
        ("job = 3", "sc.toml: job: expected [[job]] tables"),
        ("at = 3", "sc.toml: at: expected [[at]] tables"),
        ("[[job]]\ncoverage = 5", "sc.toml: [[job]] #1 pages: missing (or give file)"),
        ("[[job]]\npages = 0", "sc.toml: [[job]] #1 pages: 0 is out of range"),
        ("[[job]]\npages = true", "sc.toml: [[job]] #1 pages: expected an integer, got True"),
        ("[[job]]\npages = 1\ncoverage = 150", "sc.toml: [[job]] #1 coverage: 150 is out of range"),
        ("[[job]]\npages = 1\ncolor = 1", "sc.toml: [[job]] #1 color: unknown key"),
        ("[[job]]\nfile = 'a.txt'\npages = 1",
         "sc.toml: [[job]] #1: give either file or pages and coverage, not both"),
        ("[[job]]\nfile = 3", "sc.toml: [[job]] #1 file: expected a path, got 3"),
        ("[[job]]\npages = 1\n[[job]]\npages = 'two'",
         "sc.toml: [[job]] #2 pages: expected an integer, got 'two'"),
        ("[[at]]\ntoner_pct = 5", "sc.toml: [[at]] #1: give exactly one moment (time or page)"),
        ("[[at]]\ntime = 1\npage = 2\ntoner_pct = 5",
         "sc.toml: [[at]] #1: give exactly one moment (time or page)"),
        ("[[at]]\ntime = 1", "sc.toml: [[at]] #1: give exactly one action (found: none)"),
        ("[[at]]\ntime = 1\ntray = 1\nmisfeed = true",
         "sc.toml: [[at]] #1: give exactly one action (found: tray, misfeed)"),
        ("[[at]]\ntime = 1\nexplode = true", "sc.toml: [[at]] #1 explode: unknown key"),
        ("[[at]]\ntime = 'soon'\ntray = 1", "sc.toml: [[at]] #1 time: expected a duration"),
        ("[[at]]\ntime = -1\ntray = 1", "sc.toml: [[at]] #1 time: a moment cannot be negative"),
        ("[[at]]\ntime = 1\njob = 1\ntray = 1", "sc.toml: [[at]] #1 job: goes with page, not time"),
        ("[[at]]\npage = 0\ntray = 1", "sc.toml: [[at]] #1 page: 0 is out of range"),
        ("[[at]]\npage = 1\njob = 0\ntray = 1", "sc.toml: [[at]] #1 job: 0 is out of range"),
        ("[[at]]\ntime = 1\ntoner_pct = 101", "sc.toml: [[at]] #1 toner_pct: 101 is out of range"),
        ("[[at]]\ntime = 1\ntray = -1", "sc.toml: [[at]] #1 tray: -1 is out of range"),
        ("[[at]]\ntime = 1\njam = 'drum'",
         "sc.toml: [[at]] #1 jam: expected one of feed, exit, got 'drum'"),
        ("[[at]]\ntime = 1\ncover = true",
         "sc.toml: [[at]] #1 cover: expected one of open, closed, got True"),
        ("[[at]]\ntime = 1\npress = 'power'",
         "sc.toml: [[at]] #1 press: expected one of cancel, continue, got 'power'"),
        ("[[at]]\ntime = 1\nheater = 'hot'",
         "sc.toml: [[at]] #1 heater: expected one of failed, ok, got 'hot'"),
        ("[[at]]\ntime = 1\nmisfeed = 1", "sc.toml: [[at]] #1 misfeed: expected true, got 1"),
        ("[[at]]\ntime = 1\nreplace_toner = false",
         "sc.toml: [[at]] #1 replace_toner: expected true, got False"),
        ("[[at]]\ntime = 1\nsubmit = { file = 'a.txt' }",
         "sc.toml: [[at]] #1 submit: submit takes pages and coverage"),
        ("[[at]]\ntime = 1\nsubmit = 3", "sc.toml: [[at]] #1 submit: expected a table"),
        ("[[at]]\ntime = 1\ntray = 1\n[[at]]\ntime = 2\ntray = 'x'",
         "sc.toml: [[at]] #2 tray: expected an integer, got 'x'"),
        ("seed = [", "sc.toml: not valid TOML"),
    ],
)
def test_every_mistake_names_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, text))
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_an_unreadable_scenario_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"missing\.toml: cannot read scenario"):
        load_scenario(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("value", "ns"),
    [("12.5s", 12_500_000_000), ("800ms", 800_000_000), ("2min", 120_000_000_000),
     ("250us", 250_000), ("9ns", 9), (" 3 ", 3_000_000_000), (1.25, 1_250_000_000), (0, 0)],
)
def test_durations(value: object, ns: int) -> None:
    assert parse_duration_ns(value, "where") == ns


@pytest.mark.parametrize("value", ["1h", "-3s", "s", True, None, [1]])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ScenarioError, match=r"^where: "):
        parse_duration_ns(value, "where")
