"""The status board on the scheduler's thread, in virtual time: snapshots that follow the
firmware, jobs followed by their network id, and a reader that never touches the
firmware (it holds one frozen snapshot)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest

from boards import load_board
from emulator import EmulatedBoard
from firmware import Printer
from firmware.net import PrinterStatus, StatusBoard
from firmware.net._ipp_enums import PrinterState
from hal import JamPoint, Scheduler

S = 1_000_000_000


class Parts(NamedTuple):
    scheduler: Scheduler
    board: EmulatedBoard
    printer: Printer
    status: StatusBoard
    published: list[PrinterStatus]


@pytest.fixture
def parts() -> Parts:
    scheduler = Scheduler()
    board = EmulatedBoard(load_board("devkit"), scheduler)
    printer = Printer(board)
    status = StatusBoard(printer)
    published: list[PrinterStatus] = []
    status.on_publish.append(published.append)
    status.start()
    return Parts(scheduler, board, printer, status, published)


def test_a_job_is_followed_from_queued_to_completed(parts: Parts) -> None:
    scheduler, _, printer, status, published = parts
    status.submit(7, [5.0, 0.0, 50.0], "net job")
    assert status.snapshot.jobs[7].state == "queued"
    assert status.snapshot.printer_state is PrinterState.PROCESSING
    scheduler.run_until(lambda: status.snapshot.jobs[7].finished, timeout_ns=60 * S)
    progress = status.snapshot.jobs[7]
    assert (progress.state, progress.delivered, progress.pages) == ("completed", 3, 3)
    assert progress.started_at is not None and progress.finished_at is not None
    assert printer.jobs.jobs[progress.firmware_job].page_coverage_pct == (5.0, 0.0, 50.0)
    assert status.snapshot.pages_delivered == 3
    assert [s.seq for s in published] == list(range(1, len(published) + 1))
    scheduler.run_until(scheduler.now_ns + S)
    assert status.snapshot.printer_state is PrinterState.IDLE


def test_snapshots_are_frozen(parts: Parts) -> None:
    snapshot = parts.status.snapshot
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.toner = "low"  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.jobs[1] = snapshot.jobs.get(1)  # type: ignore[index]


@pytest.mark.parametrize(("fault", "reasons", "state"), [
    ("toner", ("toner-low-report",), PrinterState.IDLE),
    ("paper", ("media-empty-error",), PrinterState.IDLE),
    ("cover", ("door-open-error", "cover-open-error"), PrinterState.STOPPED),
])
def test_conditions_become_reasons(parts: Parts, fault: str, reasons: tuple[str, ...],
                                   state: PrinterState) -> None:
    scheduler, board, _, status, _ = parts
    scheduler.run_until(S)
    {"toner": lambda: board.set_toner_pct(5.0), "paper": lambda: board.set_tray(0),
     "cover": lambda: board.set_cover(True)}[fault]()
    scheduler.run_until(scheduler.now_ns + S)
    assert status.snapshot.reasons == reasons
    assert status.snapshot.printer_state is state
    assert status.snapshot.toner_pct == pytest.approx(5.0 if fault == "toner" else 100.0)


def test_a_jam_stops_the_printer_and_its_clearing_resumes_it(parts: Parts) -> None:
    scheduler, board, _, status, _ = parts
    status.submit(1, [5.0] * 30, "long")
    scheduler.run_until(lambda: board.sheets_delivered >= 2, timeout_ns=60 * S)
    board.jam(JamPoint.EXIT)
    scheduler.run_until(lambda: status.snapshot.jam_at != "", timeout_ns=10 * S)
    assert status.snapshot.printer_state is PrinterState.STOPPED
    assert "media-jam-error" in status.snapshot.reasons
    board.set_cover(True)
    board.set_cover(False)
    scheduler.run_until(lambda: status.snapshot.jobs[1].finished, timeout_ns=60 * S)
    assert status.snapshot.jobs[1].delivered == 30
    assert status.snapshot.jam_at == ""
