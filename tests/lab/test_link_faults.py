"""A real link's faults between the host and the device (issue 15, "A lab in CI"): for
each of the relay's profiles, a 50-page job through :class:`tests.lab.relay.LinkRelay`
completes with every page exactly once, in order, no ``misfeed``, ``jam`` or
``fuser_error`` (nothing on the device caused one: no fault is injected), and outcome
``completed``. The device's own count (``sim.observe``) says each page took one sheet.

devkit (600 ppm: about 5 s a job) runs by default; lp-2000 (30 ppm: about 110 s a job)
is marked ``lab_slow``, deselected by default: ``python -m pytest -m lab_slow tests/lab``.
The test ids name the board, the profile and the seed: ``devkit-latency-20ms-seed1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.lab.job import RelayedJob, print_through_relay
from tests.lab.relay import PROFILES, LinkProfile

PAGES = 50
SEEDS = (1,)
_BOARDS = {
    # board: (wall-time bound of the run, when the stall starts: mid-job)
    "devkit": (60.0, 2.5),
    "lp-2000": (300.0, 40.0),
}


def _cases(board: str) -> list[Any]:
    marks = [pytest.mark.lab_slow] if board == "lp-2000" else []
    return [pytest.param(board, name, seed, id=f"{board}-{name}-seed{seed}", marks=marks)
            for name in PROFILES for seed in SEEDS]


def _the_faults_were_applied(profile: LinkProfile, job: RelayedJob) -> list[str]:
    """What the profile asked for and the relay did not do (a test that passed without
    its faults would prove nothing)."""
    both = (job.relay.to_device, job.relay.to_host)
    missing = []
    if profile.latency_ms and not all(d.max_delay_ns >= profile.latency_ms * 1e6 for d in both):
        missing.append("latency")
    if profile.stall_s and not any(d.stalled_chunks for d in both):
        missing.append("the stall")
    if profile.flip_chunk_pct and not any(d.flipped_chunks for d in both):
        missing.append("bit flips")
    if profile.drop_byte_pct and not any(d.dropped_bytes for d in both):
        missing.append("dropped bytes")
    if profile.duplicate_chunk_pct and not any(d.duplicated_chunks for d in both):
        missing.append("duplicated chunks")
    # A link declared down may be reconnected (the device drops a silent client): more
    # than one connection is allowed; one the relay could not make is not.
    if job.relay.errors:
        missing.append(f"every connection made (errors: {job.relay.errors})")
    return missing


@pytest.mark.parametrize(("board", "profile_name", "seed"),
                         _cases("devkit") + _cases("lp-2000"))
def test_a_50_page_job_survives_the_link(board: str, profile_name: str, seed: int,
                                         tmp_path: Path) -> None:
    max_run_s, stall_after_s = _BOARDS[board]
    profile = PROFILES[profile_name].stalled_after(stall_after_s)
    job = print_through_relay(board, PAGES, profile, seed, tmp_path, max_run_s=max_run_s)
    assert not _the_faults_were_applied(profile, job), _the_faults_were_applied(profile, job)
    what = job.summary()
    assert job.faults == dict.fromkeys(job.faults, 0), what
    assert job.in_order_once, f"{what}: delivered {job.delivered}"
    assert job.outcome == "completed", what
    assert job.device is not None, f"{what}: the device could not be observed"
    # Physically: nothing left in the path or taken out of it by hand.
    assert job.device["sheets_removed"] == 0, what
    assert job.device["sheets_delivered"] == job.device["sheets_picked"], what
    if not job.events["link_down"]:
        # A link that stayed up spoils nothing: a sheet a page.
        assert job.device["sheets_picked"] == PAGES, what
