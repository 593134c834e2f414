"""One job through the link-fault relay: ``printer-emu serve --tcp`` with a board, a
:class:`~tests.lab.relay.LinkRelay` in front of it, the firmware on a
:class:`hal.serial.SerialBoard` connected through the relay, and one job printed as
``printer-emu run --port`` prints it (a :class:`emulator.run.PrintRun`).

:func:`print_through_relay` returns a :class:`RelayedJob`: what the firmware reported,
what the device did physically (``sim.observe``: sheets picked, delivered, removed), and
what the relay did to the link. The tests (``tests/lab/test_link_faults.py``) and the
latency benchmark (``python -m benchmarks serial``) both print this way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

from tests.lab.relay import LinkProfile, LinkRelay, RelayStats

FAULT_EVENTS: Final = ("misfeed", "jam", "fuser_error")
"""The firmware's paper-path and heater faults: on a link that carries every byte the
device sent, none of them is true unless the board physically caused it."""
SERVE_BOARD_SEED: Final = 0
_S = 1_000_000_000


@dataclass(frozen=True)
class RelayedJob:
    """One job's record: see the module docstring."""

    board: str
    profile: str
    seed: int
    pages: int
    outcome: str
    delivered: list[int]
    """The pages the firmware delivered, in order."""
    events: Counter[str]
    """Every recorded status event (not state changes or page progress), by kind."""
    device: dict[str, Any] | None
    """The device's ``sim.observe`` after the job (None: it could not be had)."""
    relay: RelayStats
    ppm: float | None
    """Steady-state pages per minute: ``60 * (pages - 1) / (last - first delivery)``."""
    result: dict[str, Any]
    """The run's ``--json`` record."""

    @property
    def faults(self) -> dict[str, int]:
        """The paper-path and heater fault events, by kind (zero counts included)."""
        return {kind: self.events[kind] for kind in FAULT_EVENTS}

    @property
    def in_order_once(self) -> bool:
        return self.delivered == list(range(1, self.pages + 1))

    def summary(self) -> str:
        """One line for a failure message or a progress log."""
        device = self.device or {}
        return (f"{self.board} {self.profile} seed {self.seed}: {self.outcome}, "
                f"{len(self.delivered)}/{self.pages} pages"
                f"{'' if self.in_order_once else ' NOT once in order'}, "
                f"faults {self.faults}, spoiled {self.events['page_spoiled']}, "
                f"link_down {self.events['link_down']}, "
                f"sheets picked {device.get('sheets_picked')} delivered "
                f"{device.get('sheets_delivered')}, relay faults {self.relay.faults}"
                f"{self._fault_details()}")

    def _fault_details(self) -> str:
        """The fault events themselves (instant and details), so a failure explains itself."""
        faults = [e for e in self.result.get("events", []) if e.get("kind") in FAULT_EVENTS]
        return "".join(f"; {e}" for e in faults[:5])


def _ppm(page_times_s: list[float]) -> float | None:
    if len(page_times_s) < 2 or page_times_s[-1] <= page_times_s[0]:
        return None
    return 60.0 * (len(page_times_s) - 1) / (page_times_s[-1] - page_times_s[0])


def print_through_relay(board: str, pages: int, profile: LinkProfile, seed: int,
                        flash_dir: Path, *, max_run_s: float) -> RelayedJob:
    """Print a ``pages``-page job at 5 % on a fresh ``serve --tcp --board board``
    through ``profile`` (seed ``seed``), within ``max_run_s`` of wall time (then the run
    ends ``timeout``). Every process, socket and thread is gone when it returns."""
    # Imported here: the relay alone needs none of the project.
    from boards import load_board
    from emulator.device import ServeProcess
    from emulator.run import JobSpec, PrintRun
    from hal.serial import SerialBoard

    config = load_board(board)
    flash = flash_dir / f"flash-{board}-{profile.name}-{seed}"
    serve_args = ["--flash", str(flash), "--seed", str(SERVE_BOARD_SEED)]
    with ServeProcess(config.source, transport="tcp", extra_args=serve_args) as device, \
            LinkRelay(device.url, profile, seed=seed) as relay, \
            SerialBoard(relay.url, config) as serial_board:
        run = PrintRun(serial_board, seed=0)
        run.add_job(JobSpec(pages=pages, coverage_pct=5.0))
        outcome = run.run(max_run_ns=round(max_run_s * _S))
        observed = serial_board.observe(timeout_s=2.0)
        result = run.result()
    times = [float(entry["t_s"]) for entry in run.page_log]
    assert all(b >= a for a, b in pairwise(times))
    return RelayedJob(
        board=board, profile=profile.name, seed=seed, pages=pages, outcome=outcome.value,
        delivered=[int(entry["page"]) for entry in run.page_log],
        events=Counter(str(e["kind"]) for e in run.events), device=observed,
        relay=relay.stats, ppm=_ppm(times), result=result)
