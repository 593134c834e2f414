"""The spooler: jobs in FIFO order, handed to the engine one page at a time.

The engine asks (``need_page``) whenever it can take a page; the spooler answers with
one ``page`` or, with nothing to print, remembers the ask and answers when work comes.
Pages the engine could not deliver come back (``pages_back``) and go back to the head of
the queue in the jobs' order, whatever order they come back in. Job states: queued →
printing → completed | cancelled | failed.
Cancel: the sheet already in the path is finished, the rest of the job is dropped.
"""

from __future__ import annotations

from typing import Any

from firmware._jobs import Job, JobState, JobStore, PageTask
from firmware._kernel import ActiveObject, Kernel

_BOTH = ["idle", "busy"]


def _print_order(task: PageTask) -> tuple[int, int]:
    return task.job, task.page


class Spooler(ActiveObject):
    NAME = "spooler"
    PRIORITY = 40
    STATES = _BOTH
    INITIAL = "idle"
    TRANSITIONS = [
        {"trigger": "job_added", "source": _BOTH, "dest": "busy", "after": "_on_job_added"},
        {"trigger": "need_page", "source": _BOTH, "dest": None, "after": "_on_need_page"},
        {"trigger": "page_done", "source": _BOTH, "dest": None, "after": "_on_page_done"},
        {"trigger": "pages_back", "source": _BOTH, "dest": None, "after": "_on_pages_back"},
        {"trigger": "cancel", "source": "busy", "dest": None, "after": "_on_cancel"},
        {"trigger": "fail_all", "source": _BOTH, "dest": None, "after": "_on_fail_all"},
        {"trigger": "all_done", "source": "busy", "dest": "idle"},
        {"trigger": "recover", "source": _BOTH, "dest": None, "after": "_on_recover"},
    ]

    def __init__(self, kernel: Kernel, store: JobStore) -> None:
        super().__init__(kernel)
        self.store = store
        self.engine: ActiveObject | None = None
        self._engine_waiting = False
        self._cancelling: set[int] = set()
        """Jobs cancelled while a sheet of theirs is still in the path."""

    def start(self) -> None:
        """At boot (also after a reset): pages that came out while the firmware could not
        see them are delivered; the rest of those in flight go back in line."""
        delivered, spoiled = self.store.recover()
        for task in delivered:
            self.publish("page_delivered", job=task.job, page=task.page, sheet=None,
                         recovered=True)
        for task in spoiled:
            self.publish("page_spoiled", job=task.job, page=task.page, sheet=None,
                         recovered=True)
        for job in self.store.jobs.values():
            if job.finished:
                continue
            if job.state is JobState.PRINTING and job.delivered == job.pages:
                self._finish(job, JobState.COMPLETED)
                continue
            self.store.spool(job)  # a job handed over just before the reset
            self.machine.set_state("busy")

    def _on_recover(self, **_: Any) -> None:
        """The engine has run the path out after a reset: settle the pages now."""
        self.start()

    def _job(self, job_id: int) -> Job:
        return self.store.jobs[job_id]

    def _send_page(self) -> None:
        assert self.engine is not None
        task = self.store.take()
        if task is None:
            self._engine_waiting = True
            return
        self._engine_waiting = False
        job = self._job(task.job)
        if job.state is JobState.QUEUED:
            job.state = JobState.PRINTING
            self.publish("job_started", job=job.id)
        self.engine.post("page", task=task)

    def _finish(self, job: Job, state: JobState) -> None:
        job.state = state
        self.publish("job_done", job=job.id, state=state.value, delivered=job.delivered,
                     pages=job.pages)
        if self.state == "busy" and all(j.finished for j in self.store.jobs.values()):
            self.all_done()  # type: ignore[attr-defined]

    def _in_flight_of(self, job_id: int) -> int:
        return sum(1 for (j, _p) in self.store.in_flight if j == job_id)

    def _on_job_added(self, job: int, **_: Any) -> None:
        record = self._job(job)
        self.store.spool(record)
        self.publish("job_queued", job=job, pages=record.pages)
        if self._engine_waiting:
            self._send_page()

    def _on_need_page(self, **_: Any) -> None:
        self._send_page()

    def _on_page_done(self, job: int, page: int, **_: Any) -> None:
        # The engine has recorded the delivery in the job memory (it survives a reset
        # that drops this event); here the job's state follows.
        record = self._job(job)
        if record.state is JobState.PRINTING and record.delivered == record.pages:
            # Every page is out: a cancel that came too late to drop any is moot.
            self._cancelling.discard(job)
            self._finish(record, JobState.COMPLETED)
            return
        self._settle_cancel(job)

    def _settle_cancel(self, job: int) -> None:
        if job in self._cancelling and self._in_flight_of(job) == 0:
            self._cancelling.discard(job)
            self._finish(self._job(job), JobState.CANCELLED)

    def _on_pages_back(self, tasks: list[PageTask], **_: Any) -> None:
        for task in tasks:
            self.store.in_flight.pop((task.job, task.page), None)
        self._put_back([task for task in tasks if not self._job(task.job).finished
                        and task.job not in self._cancelling])
        for job in {task.job for task in tasks}:
            self._settle_cancel(job)
        if self._engine_waiting:
            self._send_page()

    def _put_back(self, tasks: list[PageTask]) -> None:
        """Put ``tasks`` back in line in the jobs' order (jobs by id, which is the order
        they came in; pages by number), whatever order they come back in: a page handed
        to the engine while earlier ones were on their way back comes back after them,
        and goes back behind them. Only the head of the line is looked at."""
        pending = self.store.pending
        head: list[PageTask] = []
        for task in sorted(tasks, key=_print_order):
            while pending and _print_order(pending[0]) < _print_order(task):
                head.append(pending.popleft())
            head.append(task)
        pending.extendleft(reversed(head))

    def _on_cancel(self, job: int | None = None, **_: Any) -> None:
        target = None
        for record in self.store.jobs.values():
            if not record.finished and (job is None or record.id == job):
                target = record
                break
        if target is None or target.id in self._cancelling:
            return
        self.store.drop_pending(target.id)
        assert self.engine is not None
        self.engine.post("drop_job", job=target.id)
        self._cancelling.add(target.id)
        self._settle_cancel(target.id)

    def _on_fail_all(self, reason: str, **_: Any) -> None:
        self.store.pending.clear()
        self.store.in_flight.clear()
        self._cancelling.clear()
        for record in self.store.jobs.values():
            if not record.finished:
                self._finish(record, JobState.FAILED)
