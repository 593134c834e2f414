"""HIL: printing over the network, as a computer on the LAN would: a PWG raster job over
IPP and a PJL-wrapped text job over port 9100, each waited for by the printer's own
events. Runs on whatever board the session has (the emulated board, its time tied to
the wall by the ``printer_network`` marker; a serial device in real time)."""

from __future__ import annotations

import socket

import pytest

from emulator import PrinterHarness
from tests.firmware.net.ipp_client import IppClient, value
from tests.firmware.net.pwg_samples import encode_page, page_header, stream

pytestmark = pytest.mark.printer_network


def _job_time_s(printer: PrinterHarness, pages: int) -> float:
    config = printer.board.config
    return config.fuser.warmup_limit_s + 2 * pages * 60.0 / config.engine.rated_ppm + 10.0


def _half_black_page(width_px: int = 200, height_px: int = 100) -> bytes:
    rows = [b"\x00" * (width_px // 2) + b"\xff" * (width_px // 2)] * height_px
    return page_header(width_px, height_px) + encode_page(rows)


def test_a_pwg_raster_job_over_ipp_prints_its_pages(printer: PrinterHarness) -> None:
    with printer.network(raw=False) as net:
        assert net.ipp_address is not None and net.ipp_uri is not None
        answer = IppClient(net.ipp_address).print_job(
            stream(_half_black_page(), _half_black_page()), "image/pwg-raster")
        assert answer.code == 0, answer  # successful-ok
        queued = printer.wait_for("job_queued", timeout_s=30)
        done = printer.wait_for("job_done", timeout_s=_job_time_s(printer, 2),
                                job=queued.detail["job"])
        assert done.detail["state"] == "completed"
        assert printer.delivered_pages(queued.detail["job"]) == [
            (queued.detail["job"], 1), (queued.detail["job"], 2)]
        job = printer.printer.jobs.jobs[queued.detail["job"]]
        assert job.page_coverage_pct == pytest.approx((50.0, 50.0))
        printer.run_until(lambda: net.status.jobs.get(1) is not None
                          and net.status.jobs[1].finished, 10, "the status published")
        attributes = IppClient(net.ipp_address).job_attributes(1)
        assert value(attributes, "job-state") == 9  # completed
        assert value(attributes, "job-impressions-completed") == 2


def test_a_pjl_text_job_on_port_9100_prints_a_page_per_form_feed(
        printer: PrinterHarness) -> None:
    with printer.network(ipp=False) as net:
        assert net.raw_address is not None
        with socket.create_connection(net.raw_address, timeout=30) as client:
            client.sendall(b"\x1b%-12345X@PJL JOB NAME=\"memo\"\r\n"
                           b"@PJL ENTER LANGUAGE=TEXT\r\n"
                           b"Memo\fpage two\fpage three\n\x1b%-12345X@PJL EOJ\r\n"
                           b"\x1b%-12345X")
        queued = printer.wait_for("job_queued", timeout_s=30)
        job_id = queued.detail["job"]
        printer.wait_for("job_done", timeout_s=_job_time_s(printer, 3), job=job_id)
        job = printer.printer.jobs.jobs[job_id]
        assert (job.name, job.pages, job.delivered) == ("memo", 3, 3)
        assert [page for _, page in printer.delivered_pages(job_id)] == [1, 2, 3]


def test_the_network_needs_a_board_that_follows_the_wall(printer: PrinterHarness) -> None:
    from emulator.board import EmulatedBoard
    from hal import Scheduler

    if not isinstance(printer.board, EmulatedBoard):
        pytest.skip("a serial board always runs in real time")
    virtual = PrinterHarness(EmulatedBoard(printer.board.config, Scheduler(), seed=0))
    with pytest.raises(ValueError, match="printer_network"), virtual.network():
        pass
