"""Page overrides (PWG 5100.6 ``overrides``): a page range with other values of what the
printer takes is accepted, printed, and echoed with the job; an override the printer
cannot honour makes the attribute unsupported, as any other job attribute."""

from __future__ import annotations

import pytest

from firmware.net._ipp_codec import Attribute, Collection, GroupTag, IntRange, ValueTag
from firmware.net._ipp_enums import JobState, Status
from tests.firmware.net.conftest import NetRig
from tests.firmware.net.ipp_client import IppClient, value, values

T = ValueTag
TEXT = "page one\fpage two\fpage three\n"


def _override(*members: Attribute) -> Collection:
    return Collection(members)


def _pages(*ranges: tuple[int, int]) -> Attribute:
    return Attribute.of("pages", T.RANGE_OF_INTEGER, *(IntRange(a, b) for a, b in ranges))


def _client(rig: NetRig) -> IppClient:
    assert rig.front_end.ipp_address is not None
    return IppClient(rig.front_end.ipp_address)


def test_the_printer_says_what_a_page_range_may_override(rig: NetRig) -> None:
    printer = _client(rig).printer_attributes("overrides-supported",
                                              "job-creation-attributes-supported")
    assert set(values(printer, "overrides-supported")) == {
        "document-copies", "document-numbers", "pages", "media", "media-col",
        "orientation-requested", "print-color-mode", "print-quality"}
    assert "overrides" in values(printer, "job-creation-attributes-supported")


def test_a_page_range_with_other_media_prints_and_is_echoed(rig: NetRig) -> None:
    client = _client(rig)
    overrides = Attribute.of("overrides", T.BEG_COLLECTION, _override(
        _pages((2, 3)), Attribute.of("document-numbers", T.RANGE_OF_INTEGER, IntRange(1, 1)),
        Attribute.of("media", T.KEYWORD, "na_letter_8.5x11in"),
    ), _override(_pages((1, 1)), Attribute.of("print-color-mode", T.KEYWORD, "monochrome")))
    answer = client.print_job(TEXT.encode(), "text/plain", job=[overrides])
    assert answer.code == Status.OK, answer
    job_id = value(answer.group(GroupTag.JOB), "job-id")
    assert isinstance(job_id, int)
    rig.wait_for(lambda: value(client.job_attributes(job_id), "job-state")
                 == JobState.COMPLETED, what="the job completed")
    job = client.job_attributes(job_id)
    assert value(job, "job-impressions-completed") == 3
    echoed = [c.get("pages") for c in values(job, "overrides") if isinstance(c, Collection)]
    assert [p.values[0].value for p in echoed if p is not None] == [IntRange(2, 3),
                                                                     IntRange(1, 1)]


@pytest.mark.parametrize("override", [
    _override(Attribute.of("media", T.KEYWORD, "na_letter_8.5x11in")),  # no pages
    _override(_pages((3, 2)), Attribute.of("media", T.KEYWORD, "na_letter_8.5x11in")),
    _override(_pages((0, 2)), Attribute.of("media", T.KEYWORD, "na_letter_8.5x11in")),
    _override(_pages((1, 2))),  # nothing overridden
    _override(_pages((1, 2)), Attribute.of("sides", T.KEYWORD, "one-sided")),
    _override(_pages((1, 2)), Attribute.of("media", T.KEYWORD, "iso_a3_297x420mm")),
], ids=["no-pages", "reversed", "page-0", "nothing", "not-overridable", "unsupported-media"])
def test_an_override_the_printer_cannot_honour_is_unsupported(rig: NetRig,
                                                              override: Collection) -> None:
    overrides = Attribute.of("overrides", T.BEG_COLLECTION, override)
    answer = _client(rig).print_job(TEXT.encode(), "text/plain",
                                    Attribute.of("ipp-attribute-fidelity", T.BOOLEAN, True),
                                    job=[overrides])
    assert answer.code == Status.ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
