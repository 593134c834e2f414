"""The seed's story, on the network: a 20-page job over IPP; the toner drops below the
low threshold at page 5; an ippget subscription is told ``printer-state-changed`` with
``toner-low-report`` while the job stays ``processing``; and the pages come out at the
same instants as in the same run without the toner drop."""

from __future__ import annotations

import itertools

from boards import load_board
from firmware import StatusEvent
from firmware.net._ipp_codec import Attribute, AttributeGroup, GroupTag, ValueTag
from firmware.net._ipp_enums import JobState, Operation, PrinterState, Status
from tests.firmware.net.conftest import NetRig, close_rig, make_rig
from tests.firmware.net.ipp_client import IppClient, value, values

T = ValueTag
PAGES = 20
DROP_AT_PAGE = 5
PITCH_NS = load_board("devkit").page_pitch_ns


def _story(drop: bool) -> tuple[list[int], list[AttributeGroup]]:
    """Page delivery instants (from the job's start) and the notifications received."""
    rig: NetRig = make_rig(ratio=4.0)
    try:
        low_pct = rig.board.config.toner.low_pct

        def scenario(event: StatusEvent) -> None:
            if drop and event.kind == "page_delivered" and event.detail["page"] == DROP_AT_PAGE:
                rig.board.set_toner_pct(low_pct - 1.0)

        rig.on_scheduler(lambda: rig.printer.subscribe(scenario))
        rig.wait_for(lambda: "fuser_ready" in rig.kinds(), what="the fuser ready")
        assert rig.front_end.ipp_address is not None
        client = IppClient(rig.front_end.ipp_address)
        answer = client.call(Operation.CREATE_PRINTER_SUBSCRIPTIONS, groups=[AttributeGroup(
            GroupTag.SUBSCRIPTION, (
                Attribute.of("notify-pull-method", T.KEYWORD, "ippget"),
                Attribute.of("notify-events", T.KEYWORD, "printer-state-changed",
                             "job-completed")))])
        sub_id = value(answer.group(GroupTag.SUBSCRIPTION), "notify-subscription-id")
        text = "".join(f"Page {n}: a letter to the printer.\n\f" for n in range(1, PAGES + 1))
        answer = client.print_job(text.encode())
        assert answer.code == Status.OK
        job_id = value(answer.group(GroupTag.JOB), "job-id")
        assert isinstance(job_id, int)
        notes: list[AttributeGroup] = []
        while not any(value(n, "notify-subscribed-event") == "job-completed" for n in notes):
            got = client.call(Operation.GET_NOTIFICATIONS,
                              Attribute.of("notify-subscription-ids", T.INTEGER, sub_id),
                              Attribute.of("notify-sequence-numbers", T.INTEGER,
                                           len(notes) + 1),
                              Attribute.of("notify-wait", T.BOOLEAN, True))
            notes += got.groups_of(GroupTag.EVENT_NOTIFICATION)
        job = client.job_attributes(job_id)
        assert value(job, "job-state") == JobState.COMPLETED
        assert value(job, "job-impressions-completed") == PAGES
        started = next(e.t_ns for e in rig.events if e.kind == "job_started")
        delivered = [e.t_ns - started for e in rig.events if e.kind == "page_delivered"]
        assert len(delivered) == PAGES
        return delivered, notes
    finally:
        close_rig(rig)


def test_toner_low_reaches_the_subscriber_while_the_job_prints_at_the_rated_pitch() -> None:
    plain_times, plain_notes = _story(drop=False)
    times, notes = _story(drop=True)
    assert times == plain_times
    assert {b - a for a, b in itertools.pairwise(times)} == {PITCH_NS}
    assert not any("toner-low-report" in values(n, "printer-state-reasons")
                   for n in plain_notes)
    low = [n for n in notes if "toner-low-report" in values(n, "printer-state-reasons")]
    assert low, notes
    first = low[0]
    assert value(first, "notify-subscribed-event") == "printer-state-changed"
    assert value(first, "printer-state") == PrinterState.PROCESSING  # the job goes on
    completed = next(n for n in notes if value(n, "notify-subscribed-event") == "job-completed")
    assert value(completed, "job-state") == JobState.COMPLETED
    assert notes.index(first) < notes.index(completed)
    between = notes[notes.index(first):notes.index(completed)]
    assert all(value(n, "printer-state") != PrinterState.STOPPED for n in between)
