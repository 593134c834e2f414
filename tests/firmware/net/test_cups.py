"""CUPS end to end: a cupsd of the test's own (its configuration in a temporary folder,
on a free loopback port) makes a driverless queue for the emulated printer
(``lpadmin -m everywhere``) and prints a PDF to it: CUPS renders PWG raster, the printer
measures it and delivers exactly the PDF's pages; with the toner low, ``lpstat -l``
shows the printer's alert while the job prints at the rated pitch."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.firmware.net.conftest import NetRig, close_rig, make_rig
from tests.firmware.net.pwg_samples import text_pdf

TOOLS = ("cupsd", "lpadmin", "lp", "lpstat", "cupsfilter", "gs")
pytestmark = [
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason="missing tool: CUPS (cups, cups-filters) or Ghostscript"),
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="missing tool: root (cupsd runs its filters as root here)"),
]

_CUPSD_CONF = """Listen 127.0.0.1:{port}
LogLevel warn
WebInterface No
Browsing Off
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
    Allow all
  </Limit>
</Policy>
"""
_CUPS_FILES_CONF = """ServerRoot {root}
StateDir {root}/state
CacheDir {root}/cache
RequestRoot {root}/spool
TempDir {root}/tmp
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
Sandboxing Relaxed
"""
PAGES = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cupsd() -> Iterator[str]:
    # Not under pytest's tmp_path: cupsd runs its filters as the "lp" user, who must be
    # able to walk to the queue's PPD and temporary folder (pytest's folders are 0700).
    root = Path(tempfile.mkdtemp(prefix="printer-emu-cups-"))
    root.chmod(0o755)
    for folder in ("state", "cache", "spool", "tmp", "log", "ppd"):
        (root / folder).mkdir()
    (root / "tmp").chmod(0o1777)
    port = _free_port()
    (root / "cupsd.conf").write_text(_CUPSD_CONF.format(port=port))
    (root / "cups-files.conf").write_text(_CUPS_FILES_CONF.format(root=root))
    process = subprocess.Popen(["cupsd", "-f", "-c", str(root / "cupsd.conf"),
                                "-s", str(root / "cups-files.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["lpstat", "-h", server, "-r"], capture_output=True,
                             timeout=30).returncode != 0:
            assert process.poll() is None, "cupsd exited"
            assert time.monotonic() < deadline, "cupsd did not start"
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def printer() -> Iterator[NetRig]:
    rig = make_rig(ratio=2.0)
    try:
        yield rig
    finally:
        close_rig(rig)


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout


def _print_and_wait(rig: NetRig, server: str, pdf: Path, jobs_before: int) -> list[int]:
    _run("lp", "-h", server, "-d", "emu", str(pdf))
    rig.wait_for(lambda: len(rig.printer.jobs.jobs) > jobs_before, what="the job to arrive")
    job = list(rig.printer.jobs.jobs.values())[jobs_before]
    rig.wait_for(lambda: job.finished, timeout_s=120, what="the job to be printed")
    assert job.pages == PAGES
    assert job.delivered == PAGES
    return [e.t_ns for e in list(rig.events)
            if e.kind == "page_delivered" and e.detail["job"] == job.id]


def test_cups_prints_a_pdf_and_shows_the_toner_alert(cupsd: str, printer: NetRig,
                                                     tmp_path: Path) -> None:
    assert printer.front_end.ipp_address is not None
    host, port = printer.front_end.ipp_address
    _run("lpadmin", "-h", cupsd, "-p", "emu", "-E", "-v",
         f"ipp://{host}:{port}/ipp/print", "-m", "everywhere")
    text = "\f".join(f"Page {n}\n" + "The quick brown fox jumps over the lazy dog.\n" * 40
                     for n in range(1, PAGES + 1))
    pdf = text_pdf(tmp_path / "letter.pdf", text)
    delivered = _print_and_wait(printer, cupsd, pdf, 0)
    assert len(delivered) == PAGES
    assert all(0.5 < c < 20 for c in printer.printer.jobs.jobs[1].page_coverage_pct)
    assert "toner-low-report" not in _run("lpstat", "-h", cupsd, "-l", "-p", "emu")

    low_pct = printer.board.config.toner.low_pct
    printer.on_scheduler(lambda: printer.board.set_toner_pct(low_pct - 2.0))
    delivered = _print_and_wait(printer, cupsd, pdf, 1)
    pitch_ns = printer.board.config.page_pitch_ns
    assert {b - a for a, b in itertools.pairwise(delivered)} == {pitch_ns}
    deadline = time.monotonic() + 60
    while "toner-low-report" not in (status := _run("lpstat", "-h", cupsd, "-l", "-p", "emu")):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert "Alerts: toner-low-report" in status
