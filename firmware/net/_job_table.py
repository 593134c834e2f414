"""The network task's jobs: what clients sent (IPP or the raw port), and how each job's
state follows what the engine did with it.

A :class:`NetworkJob` is made and changed only on the network loop's thread. Its
document is measured as it arrives; once measured, the job is handed to the printer on
the scheduler's thread (``post_threadsafe`` of :meth:`StatusBoard.submit
<firmware.net._printer_status.StatusBoard.submit>`), and from then on its state is read
from the printer's published :class:`~firmware.net._printer_status.PrinterStatus`:
:func:`job_view` joins the two.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from firmware.net._ipp_enums import JobState
from firmware.net._printer_status import PrinterStatus, StatusBoard

MAX_JOBS_KEPT = 100
"""Finished jobs kept for Get-Jobs / Get-Job-Attributes (older ones are forgotten)."""


class Intake(enum.Enum):
    """Where a job is before the printer has it."""

    AWAITING_DOCUMENT = "awaiting-document"
    """Made by Create-Job: waiting for Send-Document."""
    RECEIVING = "receiving"
    OPEN = "open"
    """Its document is in (Send-Document with last-document false): waiting for
    Close-Job, or a last Send-Document without data."""
    SUBMITTED = "submitted"
    """Handed to the printer: its state is the printer's from now on."""
    ABORTED = "aborted"
    """Its document could not be read (or never came)."""
    CANCELED = "canceled"
    """Cancelled before the printer had it."""


@dataclass(eq=False)
class NetworkJob:
    id: int
    name: str
    user: str
    origin: str
    """``ipp`` or ``raw``."""
    created_at: float
    template: dict[str, object] = field(default_factory=dict)
    """Job template attributes as accepted (IPP name to value), echoed in job attributes."""
    copies: int = 1
    document_format: str = "application/octet-stream"
    detected_format: str | None = None
    compression: str = "none"
    intake: Intake = Intake.RECEIVING
    octets: int = 0
    pages: int = 0
    """Pages of one copy of the document (0 until it is measured)."""
    page_coverage_pct: tuple[float, ...] = ()
    message: str = ""
    ended_at: float | None = None
    """When it was aborted or cancelled before the printer had it."""


@dataclass(frozen=True, slots=True)
class JobView:
    """A job's state as a client sees it."""

    state: JobState
    reasons: tuple[str, ...]
    impressions: int
    impressions_completed: int
    processing_at: float | None
    completed_at: float | None
    message: str


def job_view(job: NetworkJob, status: PrinterStatus) -> JobView:
    """``job`` as the printer's ``status`` says it is."""
    impressions = job.pages * job.copies
    progress = status.jobs.get(job.id) if job.intake is Intake.SUBMITTED else None
    if progress is None:
        if job.intake is Intake.ABORTED:
            return JobView(JobState.ABORTED, ("aborted-by-system",), impressions, 0,
                           None, job.ended_at, job.message or "Aborted")
        if job.intake is Intake.CANCELED:
            return JobView(JobState.CANCELED, ("job-canceled-by-user",), impressions, 0,
                           None, job.ended_at, "Cancelled")
        if job.intake in (Intake.AWAITING_DOCUMENT, Intake.OPEN):
            return JobView(JobState.PENDING_HELD, ("job-incoming",), impressions, 0, None,
                           None, "Waiting for the document")
        if job.intake is Intake.RECEIVING:
            return JobView(JobState.PENDING, ("job-incoming",), impressions, 0, None, None,
                           "Receiving the document")
        return JobView(JobState.PENDING, ("job-queued",), impressions, 0, None, None,
                       "Queued")
    done = progress.delivered
    impressions = progress.pages
    if progress.state == "completed":
        return JobView(JobState.COMPLETED, ("job-completed-successfully",), impressions, done,
                       progress.started_at, progress.finished_at, "Printed")
    if progress.state == "cancelled":
        return JobView(JobState.CANCELED, ("job-canceled-by-user",), impressions, done,
                       progress.started_at, progress.finished_at, "Cancelled")
    if progress.state == "failed":
        return JobView(JobState.ABORTED, ("aborted-by-system",), impressions, done,
                       progress.started_at, progress.finished_at,
                       f"Aborted: {status.message}")
    reasons: list[str] = []
    if progress.cancel_requested:
        reasons += ["processing-to-stop-point", "job-canceled-by-user"]
    if progress.state == "queued":
        if status.stopped:
            reasons.append("printer-stopped")
        return JobView(JobState.PENDING, (*reasons, "job-queued"), impressions, done, None,
                       None, "Queued")
    if status.stopped:
        return JobView(JobState.PROCESSING_STOPPED, (*reasons, "job-printing",
                                                     "printer-stopped"),
                       impressions, done, progress.started_at, None, status.message)
    return JobView(JobState.PROCESSING, (*reasons, "job-printing"), impressions, done,
                   progress.started_at, None, f"Printing page {done + 1} of {impressions}")


Post = Callable[[Callable[[], object]], None]


class JobTable:
    """The network task's jobs, on the network loop's thread; jobs go to the printer
    through ``post`` (the scheduler's ``post_threadsafe``)."""

    def __init__(self, board: StatusBoard, post: Post) -> None:
        self._board = board
        self._post = post
        self._jobs: dict[int, NetworkJob] = {}
        self._next_id = 1
        self._version = 0
        """Bumped by every change of a job's intake (for :meth:`active`'s cache)."""
        self._active: tuple[int, int, int] = (-1, -1, 0)

    def create(self, *, name: str, user: str, origin: str,
               template: dict[str, object] | None = None, copies: int = 1,
               intake: Intake = Intake.RECEIVING) -> NetworkJob:
        job = NetworkJob(self._next_id, name, user, origin, time.time(),
                         dict(template or {}), copies, intake=intake)
        self._next_id += 1
        self._version += 1
        self._jobs[job.id] = job
        self._forget_old()
        return job

    def get(self, job_id: int) -> NetworkJob | None:
        return self._jobs.get(job_id)

    def __iter__(self) -> Iterator[NetworkJob]:
        return iter(list(self._jobs.values()))

    def active(self, status: PrinterStatus) -> int:
        """Jobs not finished as ``status`` has them (cached per snapshot and change)."""
        seq, version, count = self._active
        if (seq, version) != (status.seq, self._version):
            count = sum(1 for job in self._jobs.values()
                        if not job_view(job, status).state.terminal)
            self._active = (status.seq, self._version, count)
        return count

    def receiving(self, job: NetworkJob) -> None:
        """``job``'s document is arriving."""
        job.intake = Intake.RECEIVING
        self._version += 1

    def hold_open(self, job: NetworkJob, page_coverage_pct: Sequence[float]) -> None:
        """``job``'s document is measured; more may be said before it is submitted."""
        job.page_coverage_pct = tuple(page_coverage_pct)
        job.pages = len(job.page_coverage_pct)
        job.intake = Intake.OPEN
        self._version += 1

    def submit(self, job: NetworkJob, page_coverage_pct: Sequence[float]) -> None:
        """Hand ``job``'s measured pages (times its copies) to the printer."""
        self.hold_open(job, page_coverage_pct)
        job.intake = Intake.SUBMITTED
        self._post(functools.partial(self._board.submit, job.id,
                                     job.page_coverage_pct * job.copies, job.name))

    def abort(self, job: NetworkJob, message: str) -> None:
        job.intake = Intake.ABORTED
        self._version += 1
        job.message = message
        job.ended_at = time.time()

    def cancel(self, job: NetworkJob) -> None:
        """Cancel ``job``: at once if the printer does not have it yet."""
        if job.intake is Intake.SUBMITTED:
            self._post(functools.partial(self._board.cancel, job.id))
        else:
            job.intake = Intake.CANCELED
            job.ended_at = time.time()
            self._version += 1

    def _forget_old(self) -> None:
        if len(self._jobs) <= MAX_JOBS_KEPT:
            return
        status = self._board.snapshot
        for job in list(self._jobs.values()):
            if len(self._jobs) <= MAX_JOBS_KEPT:
                break
            if job_view(job, status).state.terminal:
                del self._jobs[job.id]
                self._version += 1
