"""The IPP printer end to end on the emulated board: jobs measured and printed, states
and reasons that follow the engine, markers that follow the toner, and notifications."""

from __future__ import annotations

import pytest

from firmware import pages_from_text
from firmware.net._ipp_codec import Attribute, AttributeGroup, GroupTag, ValueTag
from firmware.net._ipp_enums import JobState, Operation, PrinterState, Status
from hal import JamPoint, Output
from tests.firmware.net.conftest import NetRig
from tests.firmware.net.ipp_client import IppClient, value, values
from tests.firmware.net.pwg_samples import encode_page, page_header, stream

T = ValueTag
TEXT = "".join(f"line {i}: some words on the page\n" for i in range(150))  # 3 pages


def _client(rig: NetRig) -> IppClient:
    assert rig.front_end.ipp_address is not None
    return IppClient(rig.front_end.ipp_address)


def _job_id(answer: object) -> int:
    from firmware.net._ipp_codec import IppMessage

    assert isinstance(answer, IppMessage)
    assert answer.code == Status.OK, answer
    job_id = value(answer.group(GroupTag.JOB), "job-id")
    assert isinstance(job_id, int)
    return job_id


def _wait_job_state(rig: NetRig, client: IppClient, job_id: int, *states: JobState) -> None:
    rig.wait_for(lambda: value(client.job_attributes(job_id), "job-state") in states,
                 what=f"job {job_id} in {states}")


def test_a_text_job_prints_its_pages(rig: NetRig) -> None:
    client = _client(rig)
    job_id = _job_id(client.print_job(TEXT.encode()))
    _wait_job_state(rig, client, job_id, JobState.COMPLETED)
    job = client.job_attributes(job_id)
    assert value(job, "job-impressions") == 3
    assert value(job, "job-impressions-completed") == 3
    assert values(job, "job-state-reasons") == ["job-completed-successfully"]
    assert value(job, "document-format-detected") == "text/plain"
    imaged = [handle for handle in rig.board.delivered if handle is not None]
    assert len(imaged) == 3
    firmware_job = next(iter(rig.printer.jobs.jobs.values()))
    assert firmware_job.page_coverage_pct == pages_from_text(TEXT)


def test_a_raster_job_is_measured_from_its_pixels_with_copies(rig: NetRig) -> None:
    half = page_header(100, 100) + encode_page([b"\x00" * 50 + b"\xff" * 50] * 100)
    white = page_header(100, 100) + encode_page([b"\xff" * 100] * 100)
    client = _client(rig)
    job_id = _job_id(client.print_job(stream(half, white), "image/pwg-raster",
                                      job=[Attribute.of("copies", T.INTEGER, 2)]))
    _wait_job_state(rig, client, job_id, JobState.COMPLETED)
    assert value(client.job_attributes(job_id), "job-impressions-completed") == 4
    firmware_job = next(iter(rig.printer.jobs.jobs.values()))
    assert firmware_job.page_coverage_pct == (50.0, 0.0, 50.0, 0.0)


def test_marker_level_and_toner_low_follow_the_cartridge(rig: NetRig) -> None:
    client = _client(rig)
    printer = client.printer_attributes("marker-levels", "printer-state-reasons",
                                        "printer-supply")
    assert values(printer, "marker-levels") == [100]
    assert values(printer, "printer-state-reasons") == ["none"]
    rig.on_scheduler(lambda: rig.board.set_toner_pct(7.0))
    rig.wait_for(lambda: "toner-low-report" in values(
        client.printer_attributes("printer-state-reasons"), "printer-state-reasons"),
        what="toner-low-report")
    printer = client.printer_attributes("marker-levels", "printer-supply", "printer-state")
    assert values(printer, "marker-levels") == [7]
    assert b"level=7;" in bytes(value(printer, "printer-supply"))  # type: ignore[arg-type]
    assert value(printer, "printer-state") == PrinterState.IDLE


@pytest.mark.parametrize(("fault", "reason"), [
    ("paper", "media-empty-error"),
    ("cover", "door-open-error"),
    ("jam", "media-jam-error"),
])
def test_a_fault_stops_the_job_and_says_why(rig: NetRig, fault: str, reason: str) -> None:
    client = _client(rig)
    job_id = _job_id(client.print_job(("x\f" * 40).encode()))
    _wait_job_state(rig, client, job_id, JobState.PROCESSING)
    rig.wait_for(lambda: rig.board.sheets_delivered >= 2, what="two sheets out")
    if fault == "paper":
        rig.on_scheduler(lambda: rig.board.set_tray(0))
    elif fault == "cover":
        rig.on_scheduler(lambda: rig.board.set_cover(True))
    else:
        rig.on_scheduler(lambda: rig.board.jam(JamPoint.EXIT))
    _wait_job_state(rig, client, job_id, JobState.PROCESSING_STOPPED)
    printer = client.printer_attributes("printer-state", "printer-state-reasons")
    assert value(printer, "printer-state") == PrinterState.STOPPED
    assert reason in values(printer, "printer-state-reasons")
    assert "printer-stopped" in values(client.job_attributes(job_id), "job-state-reasons")
    if fault == "paper":
        rig.on_scheduler(lambda: rig.board.set_tray(100))
    else:
        rig.on_scheduler(lambda: rig.board.set_cover(True))
        rig.on_scheduler(lambda: rig.board.set_cover(False))
    _wait_job_state(rig, client, job_id, JobState.COMPLETED)
    assert value(client.job_attributes(job_id), "job-impressions-completed") == 40


def test_cancel_job_stops_a_job_the_engine_is_printing(rig: NetRig) -> None:
    client = _client(rig)
    job_id = _job_id(client.print_job(("x\f" * 200).encode()))
    _wait_job_state(rig, client, job_id, JobState.PROCESSING)
    answer = client.call(Operation.CANCEL_JOB, Attribute.of("job-id", T.INTEGER, job_id))
    assert answer.code == Status.OK
    _wait_job_state(rig, client, job_id, JobState.CANCELED)
    done = value(client.job_attributes(job_id), "job-impressions-completed")
    assert isinstance(done, int) and done < 200
    again = client.call(Operation.CANCEL_JOB, Attribute.of("job-id", T.INTEGER, job_id))
    assert again.code == Status.NOT_POSSIBLE


def test_create_job_then_send_document(rig: NetRig) -> None:
    client = _client(rig)
    job_id = _job_id(client.call(Operation.CREATE_JOB))
    assert value(client.job_attributes(job_id), "job-state") == JobState.PENDING_HELD
    answer = client.call(Operation.SEND_DOCUMENT, Attribute.of("job-id", T.INTEGER, job_id),
                         Attribute.of("document-format", T.MIME_MEDIA_TYPE, "text/plain"),
                         Attribute.of("last-document", T.BOOLEAN, True), data=b"hello\n")
    assert answer.code == Status.OK
    _wait_job_state(rig, client, job_id, JobState.COMPLETED)


@pytest.mark.parametrize(("fmt", "data", "status"), [
    ("application/pdf", b"%PDF-1.7", Status.DOCUMENT_FORMAT_NOT_SUPPORTED),
    ("image/pwg-raster", b"not raster at all", Status.DOCUMENT_FORMAT_ERROR),
])
def test_documents_the_printer_cannot_measure_are_refused(rig: NetRig, fmt: str, data: bytes,
                                                          status: Status) -> None:
    answer = _client(rig).print_job(data, fmt)
    assert answer.code == status
    assert rig.printer.jobs.jobs == {}


def _jpeg(width_px: int, height_px: int, *, claimed: tuple[int, int] | None = None) -> bytes:
    """A JPEG, its left half black; ``claimed``: the size its frame header says instead
    (a header is all the printer reads before it refuses an image too large)."""
    import io
    import struct

    from PIL import Image

    image = Image.new("L", (width_px, height_px), 255)
    image.paste(0, (0, 0, width_px // 2, height_px))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    data = bytearray(out.getvalue())
    if claimed is not None:
        sof = data.index(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, claimed[1], claimed[0])
    return bytes(data)


def test_a_jpeg_prints_one_page_measured_from_its_pixels(rig: NetRig) -> None:
    client = _client(rig)
    assert "image/jpeg" in values(client.printer_attributes("document-format-supported"),
                                  "document-format-supported")
    job_id = _job_id(client.print_job(_jpeg(120, 80), "application/octet-stream"))
    _wait_job_state(rig, client, job_id, JobState.COMPLETED)
    assert value(client.job_attributes(job_id), "document-format-detected") == "image/jpeg"
    (firmware_job,) = rig.printer.jobs.jobs.values()
    assert firmware_job.page_coverage_pct == (pytest.approx(50.0, abs=1.0),)


def test_a_jpeg_past_the_pixel_cap_is_unprintable(rig: NetRig) -> None:
    client = _client(rig)
    for claimed, said in (((9_000, 9_000), "9000x9000 pixels"),
                          ((20_000, 20_000), "more pixels than")):
        answer = client.print_job(_jpeg(16, 16, claimed=claimed), "image/jpeg")
        assert answer.code == Status.DOCUMENT_UNPRINTABLE
        assert said in str(value(answer.group(GroupTag.OPERATION), "status-message"))
    assert rig.printer.jobs.jobs == {}


def test_unsupported_job_attributes_are_ignored_or_refused_with_fidelity(rig: NetRig) -> None:
    client = _client(rig)
    sides = Attribute.of("sides", T.KEYWORD, "two-sided-long-edge")
    answer = client.print_job(b"x\n", "text/plain", job=[sides])
    assert answer.code == Status.OK_IGNORED_OR_SUBSTITUTED
    assert value(answer.group(GroupTag.UNSUPPORTED), "sides") == "two-sided-long-edge"
    strict = client.print_job(b"x\n", "text/plain",
                              Attribute.of("ipp-attribute-fidelity", T.BOOLEAN, True),
                              job=[sides])
    assert strict.code == Status.ATTRIBUTES_OR_VALUES_NOT_SUPPORTED


def test_identify_printer_blinks_the_attention_led(rig: NetRig) -> None:
    seen: list[bool] = []
    rig.on_scheduler(lambda: rig.board.add_probe(
        lambda t, scope, signal, v: seen.append(bool(v)) if signal == Output.LED_ATTENTION
        else None))
    answer = _client(rig).call(Operation.IDENTIFY_PRINTER,
                               Attribute.of("identify-actions", T.KEYWORD, "flash"))
    assert answer.code == Status.OK
    rig.wait_for(lambda: seen.count(True) >= 3, what="the LED blinking")
    rig.wait_for(lambda: not rig.board.outputs[Output.LED_ATTENTION], what="the LED back off")


def test_a_printer_subscription_hears_toner_low_while_the_job_goes_on(rig: NetRig) -> None:
    client = _client(rig)
    answer = client.call(
        Operation.CREATE_PRINTER_SUBSCRIPTIONS,
        groups=[AttributeGroup(GroupTag.SUBSCRIPTION, (
            Attribute.of("notify-pull-method", T.KEYWORD, "ippget"),
            Attribute.of("notify-events", T.KEYWORD, "printer-state-changed",
                         "job-completed")))])
    assert answer.code == Status.OK
    sub_id = value(answer.group(GroupTag.SUBSCRIPTION), "notify-subscription-id")
    assert isinstance(sub_id, int)
    job_id = _job_id(client.print_job(("x\f" * 20).encode()))
    _wait_job_state(rig, client, job_id, JobState.PROCESSING)
    rig.on_scheduler(lambda: rig.board.set_toner_pct(5.0))
    seen: list[AttributeGroup] = []
    for _ in range(20):
        notes = client.call(Operation.GET_NOTIFICATIONS,
                            Attribute.of("notify-subscription-ids", T.INTEGER, sub_id),
                            Attribute.of("notify-sequence-numbers", T.INTEGER, len(seen) + 1),
                            Attribute.of("notify-wait", T.BOOLEAN, True))
        seen += notes.groups_of(GroupTag.EVENT_NOTIFICATION)
        if any("toner-low-report" in values(g, "printer-state-reasons") for g in seen):
            break
    toner_low = next(g for g in seen if "toner-low-report" in values(g, "printer-state-reasons"))
    assert value(toner_low, "notify-subscribed-event") == "printer-state-changed"
    assert value(toner_low, "printer-state") == PrinterState.PROCESSING
    assert value(client.job_attributes(job_id), "job-state") == JobState.PROCESSING
    _wait_job_state(rig, client, job_id, JobState.COMPLETED)
    later = client.call(Operation.GET_NOTIFICATIONS,
                        Attribute.of("notify-subscription-ids", T.INTEGER, sub_id),
                        Attribute.of("notify-sequence-numbers", T.INTEGER, len(seen) + 1))
    kinds = [value(g, "notify-subscribed-event")
             for g in later.groups_of(GroupTag.EVENT_NOTIFICATION)]
    assert "job-completed" in kinds


def test_a_repeated_status_request_is_answered_under_its_own_request_id(
        rig: NetRig) -> None:
    import http.client

    from firmware.net._ipp_codec import IppMessage, decode_message, encode_message

    client = _client(rig)
    operation = AttributeGroup(GroupTag.OPERATION, (
        Attribute.of("attributes-charset", T.CHARSET, "utf-8"),
        Attribute.of("attributes-natural-language", T.NATURAL_LANGUAGE, "en"),
        Attribute.of("printer-uri", T.URI, client.uri),
        Attribute.of("requested-attributes", T.KEYWORD, "printer-state")))
    for request_id in (7, 8, 7, 9):
        body = encode_message(IppMessage((2, 0), int(Operation.GET_PRINTER_ATTRIBUTES),
                                         request_id, (operation,)))
        connection = http.client.HTTPConnection(client.host, client.port, timeout=30)
        try:
            connection.request("POST", "/ipp/print", body, {"Content-Type": "application/ipp"})
            answer, _ = decode_message(connection.getresponse().read())
        finally:
            connection.close()
        assert (answer.code, answer.request_id) == (Status.OK, request_id)
        assert value(answer.group(GroupTag.PRINTER), "printer-state") == PrinterState.IDLE
