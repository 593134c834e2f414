"""HIL: the printer's faults are states and events — injected on the emulated board
directly and on a virtual serial device through its simulation commands. Skipped, with
the reason, on a board that cannot inject faults (a real device)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator import PrinterHarness
from hal import Button, FaultInjector, JamPoint, Output

pytestmark = pytest.mark.printer_caps("faults")


def _budget_s(printer: PrinterHarness, pages: int) -> float:
    config = printer.board.config
    return config.fuser.warmup_limit_s + 3 * pages * 60.0 / config.engine.rated_ppm + 10.0


def _exactly_once(printer: PrinterHarness, job: int, pages: int) -> None:
    assert sorted(printer.delivered_pages(job)) == [(job, p) for p in range(1, pages + 1)]
    assert len(printer.delivered_pages(job)) == pages


def test_toner_low_warns_once_and_printing_goes_on(
    printer: PrinterHarness, printer_faults: FaultInjector,
) -> None:
    low = printer.board.config.toner.low_pct
    job = printer.submit(pages=10)
    printer.wait_for("page_feeding", timeout_s=_budget_s(printer, 1), page=3)
    printer_faults.set_toner_pct(low - 0.5)
    printer.run_until_idle(timeout_s=_budget_s(printer, 10))
    _exactly_once(printer, job.id, 10)
    assert len(printer.events("toner_low")) == 1
    assert job.state.value == "completed"
    assert printer.states()["toner"] == "low"


def test_toner_empty_stops_until_a_new_cartridge(
    printer: PrinterHarness, printer_faults: FaultInjector,
) -> None:
    if printer.board.config.toner.empty_policy != "stop":
        pytest.skip("this board's empty-toner policy is not 'stop'")
    job = printer.submit(pages=6)
    printer.wait_for("page_feeding", timeout_s=_budget_s(printer, 1), page=2)
    printer_faults.set_toner_pct(printer.board.config.toner.empty_pct / 2)
    printer.wait_for("toner_empty", timeout_s=10)
    printer.run_for(5 * 60.0 / printer.board.config.engine.rated_ppm + 1)
    assert printer.states()["engine"] == "held"
    delivered_while_empty = len(printer.delivered_pages(job.id))
    assert delivered_while_empty < 6
    printer_faults.replace_toner()
    printer.wait_for("toner_replaced", timeout_s=10)
    printer.run_until_idle(timeout_s=_budget_s(printer, 6))
    _exactly_once(printer, job.id, 6)


def test_paper_out_pauses_and_loading_resumes_at_the_next_page(
    printer: PrinterHarness, printer_faults: FaultInjector,
) -> None:
    job = printer.submit(pages=6)
    printer.wait_for("page_feeding", timeout_s=_budget_s(printer, 1), page=2)
    printer_faults.set_tray(0)
    printer.wait_for("paper_out", timeout_s=10)
    printer.run_for(3 * 60.0 / printer.board.config.engine.rated_ppm + 1)
    assert printer.states()["engine"] == "held"
    printer_faults.set_tray(100)
    printer.wait_for("paper_loaded", timeout_s=10)
    printer.run_until_idle(timeout_s=_budget_s(printer, 6))
    _exactly_once(printer, job.id, 6)
    assert printer.delivered_pages(job.id) == [(job.id, p) for p in range(1, 7)]


def test_a_jam_is_cleared_by_the_cover_and_the_page_printed_again(
    printer: PrinterHarness, printer_faults: FaultInjector,
) -> None:
    job = printer.submit(pages=5)
    printer.wait_for("page_feeding", timeout_s=_budget_s(printer, 1), page=3)
    printer_faults.jam(JamPoint.EXIT)
    jam = printer.wait_for("jam", timeout_s=_budget_s(printer, 2))
    assert jam.detail["page"] == 3 and jam.detail["at"] == "exit"
    assert printer.states()["engine"] == "jammed"
    printer_faults.set_cover(True)
    printer.wait_for("cover_open", timeout_s=5)
    printer_faults.set_cover(False)
    printer.wait_for("jam_cleared", timeout_s=5)
    printer.run_until_idle(timeout_s=_budget_s(printer, 5))
    _exactly_once(printer, job.id, 5)
    assert printer.delivered_pages(job.id) == [(job.id, p) for p in range(1, 6)]


def test_a_misfeed_is_retried(printer: PrinterHarness, printer_faults: FaultInjector) -> None:
    job = printer.submit(pages=3)
    printer.wait_for("page_feeding", timeout_s=_budget_s(printer, 1), page=1)
    printer_faults.misfeed()
    printer.wait_for("misfeed", timeout_s=_budget_s(printer, 2))
    printer.run_until_idle(timeout_s=_budget_s(printer, 3))
    _exactly_once(printer, job.id, 3)
    assert not printer.events("jam")


def test_opening_the_cover_pauses_and_closing_resumes(
    printer: PrinterHarness, printer_faults: FaultInjector,
) -> None:
    job = printer.submit(pages=5)
    printer.wait_for("page_feeding", timeout_s=_budget_s(printer, 1), page=2)
    printer_faults.set_cover(True)
    printer.wait_for("cover_open", timeout_s=5)
    printer.run_for(0.5)
    assert printer.states()["engine"] == "open"
    printer_faults.set_cover(False)
    printer.run_until_idle(timeout_s=_budget_s(printer, 5))
    _exactly_once(printer, job.id, 5)


def test_the_cancel_button_drops_the_rest_of_the_job(
    printer: PrinterHarness, printer_faults: FaultInjector,
) -> None:
    job = printer.submit(pages=20)
    printer.wait_for("page_delivered", timeout_s=_budget_s(printer, 2), page=1)
    printer_faults.press(Button.CANCEL)
    done = printer.wait_for("job_done", timeout_s=_budget_s(printer, 4))
    assert done.detail["state"] == "cancelled"
    printer.run_until_idle(timeout_s=_budget_s(printer, 4))
    pages = [p for _, p in printer.delivered_pages(job.id)]
    assert pages == list(range(1, len(pages) + 1)) and len(pages) < 20


def test_a_failed_heater_is_a_fuser_error_and_the_job_fails(
    printer: PrinterHarness, printer_faults: FaultInjector,
) -> None:
    printer_faults.set_heater_failed(True)
    job = printer.submit(pages=2)
    error = printer.wait_for("fuser_error", timeout_s=printer.board.config.fuser.warmup_limit_s + 5)
    assert error.detail["reason"] == "no heat within the warm-up limit"
    printer.run_until_idle(timeout_s=5)
    assert job.state.value == "failed" and job.delivered == 0


def test_a_hung_task_resets_the_board_and_the_job_still_completes(
    printer: PrinterHarness, printer_faults: FaultInjector,
) -> None:
    job = printer.submit(pages=6)
    printer.wait_for("page_feeding", timeout_s=_budget_s(printer, 1), page=2)
    printer.printer.hang("spooler")
    printer.wait_for("watchdog_reset",
                     timeout_s=printer.board.config.engine.watchdog_timeout_ms / 1000 + 5)
    printer.run_until_idle(timeout_s=_budget_s(printer, 6))
    _exactly_once(printer, job.id, 6)


def test_a_scenario_plays_as_on_the_command_line(
    printer: PrinterHarness, tmp_path: Path,
) -> None:
    config = printer.board.config
    pitch_s = 60.0 / config.engine.rated_ppm
    open_at_s = printer.now_s + config.fuser.warmup_limit_s + 8 * pitch_s
    scenario = tmp_path / "jam.toml"
    scenario.write_text(
        "[[job]]\npages = 6\ncoverage = 5\n"
        "[[at]]\npage = 3\njam = \"exit\"\n"
        f"[[at]]\ntime = {open_at_s:.6f}\ncover = \"open\"\n"
        f"[[at]]\ntime = {open_at_s + pitch_s:.6f}\ncover = \"closed\"\n"
    )
    result = printer.play(scenario, timeout_s=_budget_s(printer, 6) + 60)
    assert result["outcome"] == "completed"
    assert result["jams"] == 1
    assert sorted((p["job"], p["page"]) for p in result["page_log"]) == [
        (1, p) for p in range(1, 7)]


def test_the_panel_lights_follow_the_printer(
    printer: PrinterHarness, printer_faults: FaultInjector,
) -> None:
    board = printer.board
    assert board.output(Output.LED_READY) and not board.output(Output.LED_ATTENTION)
    printer_faults.set_toner_pct(printer.board.config.toner.low_pct - 1)
    printer.wait_for("toner_low", timeout_s=10)
    printer.run_for(0.05)
    assert board.output(Output.LED_TONER)
    printer_faults.set_tray(0)
    printer.submit(pages=1)
    printer.wait_for("state", timeout_s=10, state="held")
    printer.run_for(0.05)
    assert board.output(Output.LED_ATTENTION) and not board.output(Output.LED_READY)
    printer_faults.set_tray(10)
    printer.run_until_idle(timeout_s=_budget_s(printer, 1))
    assert board.output(Output.LED_READY) and not board.output(Output.LED_ATTENTION)
