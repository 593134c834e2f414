"""Job records and text jobs (a page per form feed or per 66 lines, coverage from the
share of non-blank characters), job-file errors, and the status events the firmware
publishes."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from firmware import JobFileError, pages_from_text, read_job_file
from firmware._jobs import COLUMNS_PER_LINE, INK_PER_GLYPH_PCT, LINES_PER_PAGE
from tests.conftest import Rig

CELLS = LINES_PER_PAGE * COLUMNS_PER_LINE


def _coverage(inked: int) -> float:
    return round(100.0 * inked / CELLS * INK_PER_GLYPH_PCT / 100.0, 4)


@pytest.mark.parametrize(
    ("text", "inked"),
    [
        ("a", [1]),
        ("hello world\n", [10]),
        ("a\fb", [1, 1]),
        ("a\f", [1]),                        # a closing form feed ends the page
        ("a\n\f\n", [1]),
        ("a\f\fb", [1, 0, 1]),               # two form feeds in a row: a blank page
        ("x" * 100, [COLUMNS_PER_LINE]),     # past column 80 nothing prints
        ("a\n" * LINES_PER_PAGE, [LINES_PER_PAGE]),
        ("a\n" * (LINES_PER_PAGE + 1), [LINES_PER_PAGE, 1]),
        ("a\r\nb\r\n", [2]),
        (" \t x \t\n", [1]),                 # blanks do not ink
    ],
)
def test_text_pages_and_their_coverage(text: str, inked: list[int]) -> None:
    assert pages_from_text(text) == tuple(_coverage(n) for n in inked)


def test_a_full_page_of_text_is_near_the_industry_five_percent() -> None:
    full = ("x" * COLUMNS_PER_LINE + "\n") * LINES_PER_PAGE
    assert pages_from_text(full) == (INK_PER_GLYPH_PCT,)


def test_job_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(JobFileError, match=r"nope\.txt: cannot read job file"):
        read_job_file(missing)
    binary = tmp_path / "image.bin"
    binary.write_bytes(b"ok\xff\xfe")
    with pytest.raises(JobFileError, match=r"image\.bin: not UTF-8 text \(byte 2\)"):
        read_job_file(binary)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\f \t\n")
    with pytest.raises(JobFileError, match=r"blank\.txt: job file has nothing to print"):
        read_job_file(blank)
    good = tmp_path / "good.txt"
    good.write_text("one\ftwo\n")
    assert read_job_file(good) == pages_from_text("one\ftwo\n")


def test_submit_rejects_misuse(rig: Rig) -> None:
    with pytest.raises(ValueError, match="at least one page"):
        rig.printer.submit(0, 5.0)
    with pytest.raises(ValueError, match="coverage_pct"):
        rig.printer.submit(1, 101.0)
    assert rig.printer.jobs.jobs == {}


def test_submit_text_prints_its_pages(rig: Rig) -> None:
    job = rig.printer.submit_text("page one\fpage two\f")
    assert job.pages == 2 and job.name == "text"
    rig.finish()
    assert rig.pages() == [(job.id, 1), (job.id, 2)]


def test_status_events_for_states_warnings_errors_and_pages(rig: Rig) -> None:
    rig.board.set_toner_pct(10.05)
    job = rig.printer.submit(3, 5.0)
    rig.finish()
    kinds = [(e.source, e.kind) for e in rig.events if e.kind != "state"]
    assert kinds == [
        ("firmware", "boot"),
        ("spooler", "job_queued"), ("spooler", "job_started"),
        ("fuser", "fuser_ready"),
        ("engine", "page_feeding"), ("engine", "page_feeding"),
        ("engine", "page_delivered"), ("engine", "page_feeding"),
        ("toner", "toner_low"),  # page 2's imaging took the level below low_pct
        ("engine", "page_delivered"), ("engine", "page_delivered"),
        ("spooler", "job_done"),
    ]
    # Each state change once, by the object that changed, in order.
    assert rig.state_changes("engine") == ["warming", "printing", "standby"]
    assert rig.state_changes("fuser") == ["warming", "ready"]
    assert rig.state_changes("spooler") == ["busy", "idle"]
    assert rig.state_changes("toner") == ["low"]
    assert [e.detail for e in rig.of("page_delivered")] == [
        {"job": job.id, "page": p, "sheet": p} for p in (1, 2, 3)]
    assert all(b.t_ns >= a.t_ns for a, b in pairwise(rig.events))
