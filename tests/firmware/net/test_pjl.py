"""PJL framing of the raw port (sans-IO), status codes, and command parsing."""

from __future__ import annotations

import pytest

from firmware.net._pjl import (
    UEL,
    JobData,
    JobEnd,
    PjlCommand,
    PjlParser,
    device_status,
    parse_command,
)
from firmware.net._printer_status import PrinterStatus


def _parse(data: bytes, chunk: int) -> list[object]:
    parser = PjlParser()
    events: list[object] = []
    for i in range(0, len(data), chunk):
        events += parser.feed(data[i:i + chunk])
    events += parser.close()
    merged: list[object] = []
    for event in events:  # data may come in pieces: join neighbours
        if isinstance(event, JobData) and merged and isinstance(merged[-1], JobData):
            merged[-1] = JobData(merged[-1].data + event.data)
        else:
            merged.append(event)
    return merged


WRAPPED = (UEL + b"@PJL JOB NAME=\"a b\"\r\n@PJL ENTER LANGUAGE=PWGRASTER\r\n"
           + b"RaS2 data \x1b% not a uel" + UEL + b"@PJL EOJ\r\n" + UEL)


@pytest.mark.parametrize("chunk", [1, 2, 5, 9, 10, 1000])
def test_a_wrapped_job_in_any_chunking(chunk: int) -> None:
    assert _parse(WRAPPED, chunk) == [
        PjlCommand('@PJL JOB NAME="a b"'), PjlCommand("@PJL ENTER LANGUAGE=PWGRASTER"),
        JobData(b"RaS2 data \x1b% not a uel"), JobEnd(), PjlCommand("@PJL EOJ")]


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_plain_appsocket_is_all_data(chunk: int) -> None:
    assert _parse(b"hello\fworld\n", chunk) == [JobData(b"hello\fworld\n"), JobEnd()]


def test_status_only_connections_have_no_job() -> None:
    assert _parse(UEL + b"@PJL INFO STATUS\r\n", 1) == [PjlCommand("@PJL INFO STATUS")]
    assert _parse(b"@pjl info id", 4) == [PjlCommand("@pjl info id")]


def test_bytes_that_are_not_pjl_start_the_job() -> None:
    assert _parse(UEL + b"@PJL\r\nplain text", 1) == [
        PjlCommand("@PJL"), JobData(b"plain text"), JobEnd()]


def test_commands_parse_to_verb_settings_and_words() -> None:
    assert parse_command('@PJL USTATUS DEVICE = verbose') == ("USTATUS", {"DEVICE": "verbose"},
                                                               [])
    assert parse_command('@PJL JOB NAME="My job" START=1') == (
        "JOB", {"NAME": "My job", "START": "1"}, [])
    assert parse_command("@PJL INFO status") == ("INFO", {}, ["STATUS"])


@pytest.mark.parametrize(("fields", "code", "online"), [
    ({}, 10001, True),
    ({"engine": "printing"}, 10023, True),
    ({"engine": "printing", "toner": "low"}, 10006, True),
    ({"toner": "empty", "engine": "held"}, 40038, False),
    ({"cover_open": True, "engine": "open"}, 40021, False),
    ({"paper_out": True, "engine": "held"}, 41104, False),
    ({"jam_at": "exit", "engine": "jammed"}, 42102, False),
])
def test_device_status_codes(fields: dict[str, object], code: int, online: bool) -> None:
    status = PrinterStatus(seq=1, **fields)  # type: ignore[arg-type]
    answer = device_status(status, "iso_a4_210x297mm")
    assert (answer.code, answer.online) == (code, online)
    message = answer.message("@PJL INFO STATUS")
    assert message.startswith(b"@PJL INFO STATUS\r\nCODE=")
    assert message.endswith(b"\f")
