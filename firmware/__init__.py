"""The printer's firmware: active objects (flat ``transitions`` machines) on the ``hal``
scheduler, fed by interrupts. It imports ``hal`` only and never knows which board it
runs on.

Public surface: :class:`Printer` (boot, submit, cancel, subscribe), the job records, and
the status events it publishes.
"""

from firmware._jobs import Job, JobFileError, JobState, PageTask, pages_from_text, read_job_file
from firmware._kernel import ActiveObject, Kernel, StatusListener
from firmware._printer import Firmware, Printer
from firmware._status import StatusEvent

__all__ = [
    "ActiveObject",
    "Firmware",
    "Job",
    "JobFileError",
    "JobState",
    "Kernel",
    "PageTask",
    "Printer",
    "StatusEvent",
    "StatusListener",
    "pages_from_text",
    "read_job_file",
]
