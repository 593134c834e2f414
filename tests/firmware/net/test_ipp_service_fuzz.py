"""Whatever a client sends, the IPP service answers with an IPP status: a bounded fuzz of
every operation with arbitrary attributes and documents (no network, no scheduler run)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boards import load_board
from emulator import EmulatedBoard
from firmware import Printer
from firmware.net._ipp_codec import (
    Attribute,
    AttributeGroup,
    GroupTag,
    IppMessage,
    ValueTag,
    decode_message,
)
from firmware.net._ipp_enums import Operation, Status
from firmware.net._ipp_printer_attributes import PrinterDescription, PrinterUris
from firmware.net._ipp_service import IppService
from firmware.net._job_table import JobTable
from firmware.net._printer_status import StatusBoard
from hal import Scheduler, VirtualClock

T = ValueTag
URIS = PrinterUris("ipp://localhost:631/ipp/print", "http://localhost:631")
NAMES = ["job-id", "job-uri", "requested-attributes", "document-format", "compression",
         "which-jobs", "limit", "my-jobs", "last-document", "notify-subscription-ids",
         "notify-sequence-numbers", "notify-job-id", "notify-subscription-id",
         "identify-actions", "ipp-attribute-fidelity", "job-name", "copies", "media",
         "media-col", "notify-pull-method", "notify-events", "notify-lease-duration",
         "sides", "printer-resolution", "x-unknown"]


@pytest.fixture(scope="module")
def service() -> IppService:
    scheduler = Scheduler(VirtualClock())
    printer = Printer(EmulatedBoard(load_board("devkit"), scheduler))
    board = StatusBoard(printer)
    board.start()
    posted: list[Callable[[], object]] = []
    jobs = JobTable(board, posted.append)  # jobs are never handed over: no scheduler runs
    return IppService(board, jobs, PrinterDescription(printer.board.config, started_at=0.0),
                      lambda: None)


_scalar = st.one_of(
    st.builds(Attribute.of, st.sampled_from(NAMES), st.just(T.INTEGER),
              st.integers(-(2**31), 2**31 - 1)),
    st.builds(Attribute.of, st.sampled_from(NAMES), st.sampled_from([T.KEYWORD, T.NAME]),
              st.sampled_from(["ippget", "all", "gzip", "text/plain", "completed", "flash",
                               "iso_a4_210x297mm", "printer-state-changed", "x"])),
    st.builds(Attribute.of, st.sampled_from(NAMES), st.just(T.BOOLEAN), st.booleans()),
    st.builds(Attribute.of, st.sampled_from(NAMES), st.sampled_from([T.NO_VALUE, T.UNKNOWN])),
    st.builds(Attribute.of, st.sampled_from(NAMES), st.just(T.OCTET_STRING), st.binary(max_size=8)),
)


async def _body(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 7):
        yield data[i:i + 7]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operation=st.sampled_from([*list(Operation), 0x0099]),
       attributes=st.lists(_scalar, max_size=6, unique_by=lambda a: a.name),
       groups=st.lists(st.builds(AttributeGroup, st.sampled_from([2, 4, 6]),
                                 st.lists(_scalar, max_size=3, unique_by=lambda a: a.name)
                                 .map(tuple)), max_size=2),
       data=st.one_of(st.just(b""), st.binary(max_size=64),
                      st.just(b"RaS2" + bytes(1796)), st.just(b"hello\f")))
def test_every_operation_answers_with_an_ipp_status(
        service: IppService, operation: int, attributes: list[Attribute],
        groups: list[AttributeGroup], data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    head = (Attribute.of("attributes-charset", T.CHARSET, "utf-8"),
            Attribute.of("attributes-natural-language", T.NATURAL_LANGUAGE, "en"),
            Attribute.of("printer-uri", T.URI, URIS.ipp))
    names = {a.name for a in head}
    message = IppMessage((2, 0), operation, 7, (
        AttributeGroup(GroupTag.OPERATION, head + tuple(a for a in attributes
                                                        if a.name not in names)),
        *groups))
    with caplog.at_level(logging.ERROR):
        answer = asyncio.run(asyncio.wait_for(
            service.handle(message, URIS, b"", _body(data)), 10))
    assert not caplog.records, caplog.text
    response, _ = decode_message(answer)
    assert response.request_id == 7
    assert response.code != Status.INTERNAL_ERROR
