"""Shared fixtures: the firmware on an emulated board in virtual time, and the board's
own numbers (paper-path travel, deadlines) that tests compute expected instants from.

Every instant a test expects is derived from the board file through the formulas of the
contracts (``emulator/physics/_paper_path.py``: an edge reaches ``x`` mm after
``round(x / speed * 1e9)`` ns of motor time; ``firmware/_engine.py``: a deadline is the
expected travel plus ``max(edge_margin_min_ms, edge_margin_pct of it)``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from boards import BoardConfig, load_board

if TYPE_CHECKING:
    from emulator.board import EmulatedBoard
    from firmware import StatusEvent

S = 1_000_000_000
MS = 1_000_000

# A test that needs a tool someone else wrote (ipptool, gs, snmpget, cupsd, smpmgr,
# Graphviz, matplotlib, pyipp, QEMU) skips with a reason starting with this where the
# tool is missing; in CI (CI=true) that skip is a failure: there every tool is installed.
MISSING_TOOL = "missing tool: "


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("CI", "").lower() != "true":
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if MISSING_TOOL in reason:
        report.outcome = "failed"
        report.longrepr = f"{reason} (CI=true: every tool a test needs is installed there)"


def travel_ns(config: BoardConfig, distance_mm: float) -> int:
    """Motor time a sheet takes to move ``distance_mm`` (the paper path's formula)."""
    return round(distance_mm / config.engine.paper_speed_mm_s * 1e9)


def to_feed_ns(config: BoardConfig) -> int:
    """Pickup to the feed sensor's leading edge."""
    return travel_ns(config, config.paper_path.feed_sensor_mm)


def to_exit_trail_ns(config: BoardConfig) -> int:
    """Pickup to the exit sensor's trailing edge: the firmware's ``page_delivered``."""
    return travel_ns(config, config.paper_path.exit_sensor_mm + config.engine.sheet_length_mm)


def to_drum_trail_ns(config: BoardConfig) -> int:
    """Pickup to the trailing edge leaving the drum: the page's toner is taken then."""
    return travel_ns(config, config.paper_path.drum_mm + config.engine.sheet_length_mm)


def to_output_ns(config: BoardConfig) -> int:
    """Pickup to the sheet dropping into the output tray (the board's ``delivered``)."""
    return travel_ns(config, config.paper_path.output_mm + config.engine.sheet_length_mm)


def engine_travel_ns(config: BoardConfig, distance_mm: float) -> int:
    """The engine's own figure for a travel (it computes with ns per mm)."""
    return round(distance_mm / (config.engine.paper_speed_mm_s / 1e9))


def margin_ns(config: BoardConfig, expected_ns: int) -> int:
    """The slack the engine allows on an edge expected ``expected_ns`` ahead."""
    e = config.engine
    return max(round(e.edge_margin_min_ms * 1e6), round(expected_ns * e.edge_margin_pct / 100.0))


def run_out_ns(config: BoardConfig) -> int:
    """From the last exit trailing edge to the motor stopping (the sheet drops out)."""
    p = config.paper_path
    expected = engine_travel_ns(config, p.output_mm - p.exit_sensor_mm)
    return expected + margin_ns(config, expected)


def warmup_ns(config: BoardConfig, from_c: float | None = None) -> int:
    """Heater on at ``from_c`` (default ambient) until the fuser reaches ``ready_c``:
    the first-order model solved for the crossing, rounded up to the next ns."""
    f = config.fuser
    start = f.ambient_c if from_c is None else from_c
    return math.ceil(f.tau_s * math.log((f.max_c - start) / (f.max_c - f.ready_c)) * 1e9)


def fuser_temp_c(config: BoardConfig, t0_c: float, target_c: float, elapsed_ns: int) -> float:
    f = config.fuser
    return target_c + (t0_c - target_c) * math.exp(-elapsed_ns / (f.tau_s * 1e9))


class Rig:
    """A Printer on an EmulatedBoard, every status event recorded from power-on."""

    def __init__(self, config: BoardConfig, seed: int = 0,
                 board_type: type[EmulatedBoard] | None = None,
                 before_boot: Callable[[EmulatedBoard], object] | None = None) -> None:
        """``before_boot(board)`` sets the world up before the firmware first runs."""
        # Imported here: the hal and boards suites share this conftest and need neither.
        from emulator.board import EmulatedBoard
        from firmware import Printer
        from hal import Scheduler

        board_type = board_type or EmulatedBoard
        self.config = config
        self.scheduler = Scheduler()
        self.board = board_type(config, self.scheduler, seed=seed)
        if before_boot is not None:
            before_boot(self.board)
        self.events: list[StatusEvent] = []
        self.printer = Printer(self.board, listeners=[self.events.append])

    @property
    def now(self) -> int:
        return self.scheduler.now_ns

    def run_until(self, predicate: Callable[[], bool], timeout_s: float = 3600.0) -> int:
        """Run until ``predicate()``; fails the test if it never holds. Returns now."""
        reached = self.scheduler.run_until(predicate, timeout_ns=round(timeout_s * S))
        assert reached, f"condition not reached within {timeout_s} s (t={self.now / S} s)"
        return self.now

    def run_for(self, duration_ns: int) -> None:
        self.scheduler.run_until(self.now + duration_ns)

    def run_to(self, t_ns: int) -> None:
        assert t_ns >= self.now
        self.scheduler.run_until(t_ns)

    def finish(self, timeout_s: float = 3600.0) -> int:
        """Run until every job has finished and the engine is at rest."""
        return self.run_until(lambda: self.printer.idle, timeout_s)

    def of(self, kind: str) -> list[StatusEvent]:
        return [e for e in self.events if e.kind == kind]

    def times(self, kind: str) -> list[int]:
        return [e.t_ns for e in self.of(kind)]

    def pages(self, kind: str = "page_delivered") -> list[tuple[int, int]]:
        return [(e.detail["job"], e.detail["page"]) for e in self.of(kind)]

    def state_changes(self, source: str) -> list[str]:
        return [e.detail["state"] for e in self.events if e.kind == "state" and e.source == source]

    def output_tray(self) -> list[tuple[int, int] | None]:
        """What physically reached the output tray, in order (None: a blank sheet)."""
        return [None if d is None else (d[1], d[2]) for d in self.board.delivered]

    def state(self, name: str) -> str:
        return self.printer.states()[name]


@pytest.fixture
def lp2000() -> BoardConfig:
    return load_board("lp-2000")


@pytest.fixture
def rig(lp2000: BoardConfig) -> Rig:
    return Rig(lp2000)


@pytest.fixture
def board_file(tmp_path: Path) -> Callable[[str], BoardConfig]:
    """``board_file(toml)``: an lp-2000 with ``toml``'s tables merged over it (a board
    file with ``extends = "lp-2000"`` written to tmp_path), loaded."""
    count = 0

    def make(toml: str) -> BoardConfig:
        nonlocal count
        count += 1
        path = tmp_path / f"board-{count}.toml"
        path.write_text('extends = "lp-2000"\n' + toml)
        return load_board(path)

    return make


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Virtual devices started by tests keep their default flash files here, not in the
    user's state directory (platformdirs follows XDG_STATE_HOME; children inherit it)."""
    import os

    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
