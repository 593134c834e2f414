"""The spooler: jobs in FIFO order at the engine's full pitch, text-file jobs, cancel."""

from __future__ import annotations

from pathlib import Path

from boards import BoardConfig
from firmware import JobState, pages_from_text
from tests.conftest import Rig, to_exit_trail_ns, warmup_ns


def test_jobs_print_in_the_order_they_came_at_one_pitch_throughout(
    rig: Rig, lp2000: BoardConfig
) -> None:
    jobs = [rig.printer.submit(n, 5.0) for n in (3, 1, 4)]
    rig.finish()
    expected = [(j.id, p) for j in jobs for p in range(1, j.pages + 1)]
    assert rig.pages("page_feeding") == expected and rig.pages() == expected
    ready = warmup_ns(lp2000)
    assert rig.times("page_feeding") == [ready + k * lp2000.page_pitch_ns for k in range(8)]
    assert [e.detail["job"] for e in rig.of("job_done")] == [j.id for j in jobs]
    assert all(j.state is JobState.COMPLETED for j in jobs)


def test_a_job_submitted_mid_job_waits_its_turn(rig: Rig, lp2000: BoardConfig) -> None:
    first = rig.printer.submit(4, 5.0)
    rig.run_until(lambda: rig.board.sheets_picked == 2)
    second = rig.printer.submit(2, 5.0)
    assert second.state == "queued"
    rig.finish()
    assert rig.pages() == [(first.id, p) for p in range(1, 5)] + [(second.id, 1), (second.id, 2)]
    ready = warmup_ns(lp2000)
    assert rig.times("page_feeding")[4] == ready + 4 * lp2000.page_pitch_ns


def test_job_states_go_queued_printing_completed(rig: Rig) -> None:
    job = rig.printer.submit(2, 5.0)
    assert job.state == "queued"
    rig.run_until(lambda: rig.of("job_started") != [])
    assert job.state == "printing"
    rig.finish()
    assert job.state == "completed"
    assert [e.kind for e in rig.events if e.kind.startswith("job_")] == [
        "job_queued", "job_started", "job_done"]


def test_a_text_file_prints_a_page_per_form_feed_and_per_66_lines(
    tmp_path: Path, rig: Rig, lp2000: BoardConfig
) -> None:
    body = "".join(f"line {n}\n" for n in range(70))  # 66 lines, then 4 more
    text = body + "\f" + "x" * 80 + "\n\f"  # a form feed ends the text: no blank page
    path = tmp_path / "report.txt"
    path.write_text(text)
    job = rig.printer.submit_file(path)
    assert job.name == "report.txt" and job.pages == 3
    assert job.page_coverage_pct == pages_from_text(text)
    rig.finish()
    assert rig.pages() == [(job.id, 1), (job.id, 2), (job.id, 3)]
    # The toner taken is the pages' coverage, by the cartridge's yield.
    per_pct = 100.0 / (5.0 * lp2000.toner.capacity_pages_at_5pct)
    level = 100.0
    for coverage in job.page_coverage_pct:
        level -= coverage * per_pct
    assert rig.board.toner_level_pct == level


def test_cancel_of_a_queued_job_drops_it_without_printing(rig: Rig) -> None:
    first = rig.printer.submit(3, 5.0)
    second = rig.printer.submit(3, 5.0)
    third = rig.printer.submit(1, 5.0)
    rig.printer.cancel(second.id)
    rig.finish()
    assert second.state == "cancelled" and second.delivered == 0
    assert rig.pages() == [(first.id, 1), (first.id, 2), (first.id, 3), (third.id, 1)]
    assert [e.detail["job"] for e in rig.of("job_started")] == [first.id, third.id]


def test_cancel_while_paper_is_out_drops_the_waiting_pages(
    rig: Rig, lp2000: BoardConfig
) -> None:
    rig.board.set_tray(2)
    job = rig.printer.submit(5, 5.0)
    rig.run_until(lambda: rig.state("engine") == "held")
    rig.printer.cancel()
    rig.finish()
    assert job.state == "cancelled" and job.delivered_pages == [1, 2]
    assert rig.state("engine") == "standby"
    later = rig.printer.submit(1, 5.0)
    rig.board.set_tray(5)
    rig.finish()
    assert later.state == "completed" and rig.pages()[-1] == (later.id, 1)


def test_a_cancel_too_late_to_drop_any_page_leaves_the_job_completed(
    rig: Rig, lp2000: BoardConfig
) -> None:
    job = rig.printer.submit(2, 5.0)
    rig.run_until(lambda: rig.board.sheets_picked == 2)
    rig.printer.cancel(job.id)
    rig.finish()
    # Both pages were in the path: both are finished, so nothing was cancelled.
    assert job.delivered_pages == [1, 2] and job.state == "completed"
    last_out = warmup_ns(lp2000) + lp2000.page_pitch_ns + to_exit_trail_ns(lp2000)
    assert [(e.t_ns, e.detail["state"]) for e in rig.of("job_done")] == [(last_out, "completed")]
    assert rig.state("spooler") == "idle"
