"""HIL: printing, as the firmware issue describes it, on whatever board the session
runs on (the emulated board by default; ``--printer-serve pty`` or ``--printer-port URL``
for a serial device). Written once; no test knows which board it has.

Times are read from the board file, never assumed: the suite runs unchanged on lp-2000
and devkit, in virtual or wall time.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from emulator import PrinterHarness


def _pitch_s(printer: PrinterHarness) -> float:
    return 60.0 / printer.board.config.engine.rated_ppm


def _job_time_s(printer: PrinterHarness, pages: int) -> float:
    """Generous board time for a job: warm-up limit plus twice its pages' pitch."""
    config = printer.board.config
    return config.fuser.warmup_limit_s + 2 * pages * _pitch_s(printer) + 5.0


def test_boots_idle(printer: PrinterHarness) -> None:
    states = printer.states()
    assert states["engine"] == "standby"
    assert states["cover"] == "closed" and states["tray"] == "loaded"
    assert printer.events("boot")[0].detail["reset_cause"] == "power_on"


def test_a_job_prints_every_page_once_in_order_at_the_rated_speed(
    printer: PrinterHarness,
) -> None:
    job = printer.submit(pages=8, coverage=5)
    printer.run_until_idle(timeout_s=_job_time_s(printer, 8))
    assert job.state.value == "completed" and job.delivered == 8
    assert printer.delivered_pages() == [(job.id, p) for p in range(1, 9)]
    times = [p["t_s"] for p in printer.page_log]
    gaps = [b - a for a, b in pairwise(times)]
    pitch = _pitch_s(printer)
    # Virtual time: exactly the pitch. A serial link adds latency to each edge, never
    # a page's worth: stay within a fifth of a pitch.
    assert all(abs(gap - pitch) <= pitch / 5 for gap in gaps), gaps


def test_jobs_print_in_fifo_order(printer: PrinterHarness) -> None:
    first = printer.submit(pages=2)
    second = printer.submit(pages=3)
    printer.run_until_idle(timeout_s=_job_time_s(printer, 5))
    assert [job for job, _ in printer.delivered_pages()] == [first.id] * 2 + [second.id] * 3
    done = [e.detail["job"] for e in printer.events("job_done")]
    assert done == [first.id, second.id]


def test_status_events_report_state_changes_and_pages(printer: PrinterHarness) -> None:
    printer.submit(pages=2)
    printer.wait_for("page_delivered", timeout_s=_job_time_s(printer, 2), page=1)
    printer.run_until_idle(timeout_s=_job_time_s(printer, 2))
    engine_states = [e.detail["state"] for e in printer.events("state") if e.source == "engine"]
    assert engine_states[:2] == ["warming", "printing"]
    assert engine_states[-1] == "standby"
    assert [e.detail["page"] for e in printer.events("page_delivered")] == [1, 2]


def test_power_save_after_idle_and_a_job_wakes_the_printer(printer: PrinterHarness) -> None:
    config = printer.board.config
    printer.wait_for("power_save", timeout_s=config.engine.power_save_after_s + 5)
    assert printer.states()["fuser"] == "off"
    job = printer.submit(pages=1)
    printer.wait_for("wake", timeout_s=5)
    printer.run_until_idle(timeout_s=_job_time_s(printer, 1))
    assert job.delivered == 1


def test_a_text_file_prints_a_page_per_form_feed(printer: PrinterHarness, tmp_path: Path) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_text("Dear reader,\n\nthree pages follow.\n\fpage two\n\fpage three\n")
    job = printer.submit_file(letter)
    assert job.pages == 3
    printer.run_until_idle(timeout_s=_job_time_s(printer, 3))
    assert printer.delivered_pages() == [(job.id, 1), (job.id, 2), (job.id, 3)]
