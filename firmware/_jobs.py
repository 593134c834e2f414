"""Print jobs: what the spooler queues, and how a text file becomes pages.

A job is either N pages at one coverage, or a text file: a page per form feed or per
66 lines, each page's coverage from the share of its 66 x 80 character cells that are
not blank, times :data:`INK_PER_GLYPH_PCT` (a printed glyph inks about a tenth of its
cell, so a page full of text comes out near the 5% of the industry's yield figures).

Job state is kept in a :class:`JobStore` that survives a board reset, as a printer's
battery-backed job memory does: a watchdog reset loses no page and prints none twice.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from boards import JOB_FILE_LIMIT_BYTES, InputFileError, read_input_file
from hal import IoHandle, IoState

LINES_PER_PAGE = 66
COLUMNS_PER_LINE = 80
INK_PER_GLYPH_PCT = 10.0


class JobState(enum.StrEnum):
    QUEUED = "queued"
    PRINTING = "printing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PageTask:
    """One page to print: the unit the spooler hands the engine."""

    job: int
    page: int
    coverage_pct: float


@dataclass
class Job:
    id: int
    name: str
    page_coverage_pct: tuple[float, ...]
    state: JobState = JobState.QUEUED
    spooled: bool = False
    """Its pages are in the spooler's queue (the spooler has taken the job)."""
    delivered: int = 0
    delivered_pages: list[int] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return len(self.page_coverage_pct)

    @property
    def finished(self) -> bool:
        return self.state in (JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED)


class JobFileError(ValueError):
    """A job file that cannot be read; the message is one line naming the file."""


def pages_from_text(text: str) -> tuple[float, ...]:
    """Coverage of each page of ``text`` (see the module docstring)."""
    pages: list[list[str]] = []
    chunks = text.replace("\r\n", "\n").split("\f")
    if len(chunks) > 1 and not chunks[-1].strip("\n"):
        chunks.pop()  # a form feed that ends the text ends its last page, not a new one
    for chunk in chunks:
        lines = chunk.split("\n")
        if chunk.endswith("\n"):
            lines.pop()
        for start in range(0, max(len(lines), 1), LINES_PER_PAGE):
            pages.append(lines[start : start + LINES_PER_PAGE])
    cells = LINES_PER_PAGE * COLUMNS_PER_LINE
    coverage = []
    for page in pages:
        inked = sum(sum(1 for ch in line[:COLUMNS_PER_LINE] if not ch.isspace()) for line in page)
        coverage.append(round(100.0 * inked / cells * INK_PER_GLYPH_PCT / 100.0, 4))
    return tuple(coverage)


def read_job_file(path: str | Path) -> tuple[float, ...]:
    """Pages of a text job file: a regular file of at most 16 MiB
    (`boards.JOB_FILE_LIMIT_BYTES`). Raises JobFileError."""
    p = Path(path)
    try:
        data = read_input_file(p, JOB_FILE_LIMIT_BYTES, "job file")
    except InputFileError as e:
        raise JobFileError(str(e)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JobFileError(f"{p}: not UTF-8 text (byte {e.start})") from None
    if not text.strip("\f\n\r\t "):
        raise JobFileError(f"{p}: job file has nothing to print")
    return pages_from_text(text)


@dataclass(slots=True)
class SheetRecord:
    """A sheet in the paper path as the job memory knows it: the page it carries and
    whether its imaging was requested (the board images it on its own from then on)."""

    task: PageTask
    imaging_requested: bool = False
    handle: IoHandle | None = None
    """The imaging request: the board's own word on whether the sheet was imaged."""


class JobStore:
    """Jobs and the pages still to print, kept across board resets.

    ``pending`` holds pages in print order; the engine takes from its head and gives
    back (``requeue``) pages whose sheets never made it out, which go back to the head
    in their original order so each page is delivered exactly once.

    What survives a reset also tells which pages came out while the firmware could not
    see them (a hung task, then the watchdog's reset): the engine records each sheet it
    picks in ``sheets`` and each page it delivers (:meth:`record_delivered`), and the exit
    sensor's ISR counts trailing edges in ``exits_captured`` until the engine has handled
    them. At the next boot (:meth:`recover`, after the engine has run any sheet left in
    the path out) the oldest sheets whose exits were captured but never handled came
    out: those the board imaged are delivered, the rest are printed again.
    """

    def __init__(self) -> None:
        self.jobs: dict[int, Job] = {}
        self.pending: deque[PageTask] = deque()
        self.in_flight: dict[tuple[int, int], PageTask] = {}
        self.sheets: deque[SheetRecord] = deque()
        """The sheets in the paper path, oldest first (written by the engine)."""
        self.exits_captured = 0
        """Exit-sensor trailing edges counted by the ISR and not yet handled by the engine."""
        self._next_id = 1

    def add(self, name: str, page_coverage_pct: tuple[float, ...]) -> Job:
        """Record a job handed to the printer; the spooler queues its pages."""
        job = Job(self._next_id, name, page_coverage_pct)
        self._next_id += 1
        self.jobs[job.id] = job
        return job

    def spool(self, job: Job) -> None:
        """Queue every page of ``job`` (once)."""
        if job.spooled:
            return
        job.spooled = True
        for number, coverage in enumerate(job.page_coverage_pct, start=1):
            self.pending.append(PageTask(job.id, number, coverage))

    def take(self) -> PageTask | None:
        if not self.pending:
            return None
        task = self.pending.popleft()
        self.in_flight[(task.job, task.page)] = task
        return task

    def record_delivered(self, task: PageTask) -> Job:
        """``task``'s page came out printed (the engine's record, made as it sees it)."""
        self.in_flight.pop((task.job, task.page), None)
        job = self.jobs[task.job]
        job.delivered += 1
        job.delivered_pages.append(task.page)
        return job

    def recover(self) -> tuple[list[PageTask], list[PageTask]]:
        """At boot: deliver the pages of sheets that came out unseen, then put every page
        still in flight back in line. Returns the pages found delivered and those whose
        sheets came out blank (spoiled: they are printed again)."""
        delivered: list[PageTask] = []
        spoiled: list[PageTask] = []
        for _ in range(min(self.exits_captured, len(self.sheets))):
            record = self.sheets.popleft()
            imaged = record.handle is not None and record.handle.state is IoState.DONE
            if imaged and (record.task.job, record.task.page) in self.in_flight:
                delivered.append(record.task)
                self.record_delivered(record.task)
            else:
                spoiled.append(record.task)
        self.sheets.clear()
        self.exits_captured = 0
        self.requeue_in_flight()
        return delivered, spoiled

    def requeue_in_flight(self) -> int:
        """Every page in flight goes back to the head of the queue, in order."""
        tasks = sorted(self.in_flight.values(), key=lambda t: (t.job, t.page))
        self.in_flight.clear()
        for task in reversed(tasks):
            if not self.jobs[task.job].finished:
                self.pending.appendleft(task)
        return len(tasks)

    def drop_pending(self, job_id: int) -> int:
        kept = deque(t for t in self.pending if t.job != job_id)
        dropped = len(self.pending) - len(kept)
        self.pending = kept
        return dropped
