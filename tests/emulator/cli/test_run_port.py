"""``printer-emu run --port`` over ``serve --pty`` (devkit): the network printer on a
serial device (jobs over port 9100 and IPP printed there exactly once, SNMP and IPP
status of that printer) and a session's own figures (the same in two sessions on one
device; explicit unknowns with reasons when the device goes away mid-job).

The child's output is read line by line on threads, so every wait has a bound, and
leaving a test always ends the child (SIGINT, then SIGKILL) and the device."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from emulator.device import ServeProcess
from tests.conftest import MISSING_TOOL

REPO = Path(__file__).resolve().parents[3]
WAIT_S = 30.0


class Lines:
    """A child's text stream, read on a thread of its own into a queue."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._ended = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in iter(stream.readline, ""):
                self._queue.put(line)
        finally:
            self._queue.put(None)

    def _next(self, timeout_s: float) -> str | None:
        line = self._queue.get(timeout=timeout_s)
        if line is None:
            self._ended = True
        else:
            self.seen.append(line)
        return line

    def wait_for(self, pattern: str, timeout_s: float = WAIT_S) -> re.Match[str]:
        """The first line from here on matching ``pattern``; AssertionError after
        ``timeout_s`` or at the end of the stream."""
        deadline = time.monotonic() + timeout_s
        while not self._ended:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self._next(remaining)
            except queue.Empty:
                break
            if line is not None and (match := re.search(pattern, line)):
                return match
        raise AssertionError(f"no line matching {pattern!r} within {timeout_s:g} s: "
                             f"{''.join(self.seen)}")

    def rest(self, timeout_s: float = WAIT_S) -> str:
        """Everything up to the end of the stream (the child has ended)."""
        deadline = time.monotonic() + timeout_s
        while not self._ended and time.monotonic() < deadline:
            try:
                self._next(max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                break
        return "".join(self.seen)


class RunOnPort:
    """``printer-emu run --port URL ARGS...`` as a child: ``with RunOnPort(url, ...) as
    run``; leaving the block always ends it."""

    def __init__(self, url: str, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emulator", "run", "--port", url, *args], cwd=REPO,
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout = Lines(self.process.stdout)
        self.stderr = Lines(self.process.stderr)

    def __enter__(self) -> RunOnPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def stop(self, timeout_s: float = WAIT_S) -> int:
        """SIGINT and wait (bounded) for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float = WAIT_S) -> int:
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def record(self) -> dict[str, Any]:
        """The ``--json`` record (the child has ended)."""
        out = self.stdout.rest()
        assert out.count("\n") == 1, out + self.stderr.rest()
        return dict(json.loads(out))


# -- the network printer on a serial device ---------------------------------------------

TEXT_JOB = "first page\fsecond page\n"
RAW_JOB = b"one\ftwo\fthree\n"
SUPPLY_LEVEL = "1.3.6.1.2.1.43.11.1.1.9.1.1"
PRINTER_STATUS = "1.3.6.1.2.1.25.3.5.1.1.1"
ERROR_STATE = "1.3.6.1.2.1.25.3.5.1.2.1"


def _snmpget(address: tuple[str, int], *oids: str) -> list[str]:
    host, port = address
    out = subprocess.run(["snmpget", "-v2c", "-c", "public", "-Oqv", "-t", "5",
                          f"{host}:{port}", *oids],
                         capture_output=True, text=True, timeout=WAIT_S, check=True)
    return out.stdout.split("\n")[:len(oids)]


def _wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_jobs_from_the_network_print_once_on_the_serial_device() -> None:
    if shutil.which("snmpget") is None:
        pytest.skip(f"{MISSING_TOOL}net-snmp's snmpget")
    from firmware.net._ipp_codec import GroupTag
    from firmware.net._ipp_enums import JobState, PrinterState, Status
    from tests.firmware.net.ipp_client import IppClient, value

    with ServeProcess("devkit", transport="pty") as device, RunOnPort(
            device.url, "--board", "devkit", "--json", "--ipp", "127.0.0.1:0",
            "--raw", "127.0.0.1:0", "--snmp", "127.0.0.1:0") as run:
        ipp_port = int(run.stderr.wait_for(r"ipp://127\.0\.0\.1:(\d+)/ipp/print")[1])
        raw_port = int(run.stderr.wait_for(r"socket://127\.0\.0\.1:(\d+)")[1])
        snmp = ("127.0.0.1", int(run.stderr.wait_for(r"udp:127\.0\.0\.1:(\d+)")[1]))
        client = IppClient(("127.0.0.1", ipp_port))

        def impressions() -> object:
            printer = client.printer_attributes("printer-impressions-completed")
            return value(printer, "printer-impressions-completed")

        assert impressions() == 0  # no demo job: on the network the jobs are the clients'
        with socket.create_connection(("127.0.0.1", raw_port), timeout=WAIT_S) as raw:
            raw.sendall(RAW_JOB)
        _wait_for("the raw job's 3 pages", lambda: impressions() == 3)
        answer = client.print_job(TEXT_JOB.encode())  # its call is bounded (60 s)
        assert answer.code == Status.OK, answer
        job_id = value(answer.group(GroupTag.JOB), "job-id")
        assert isinstance(job_id, int)
        _wait_for("the IPP job completed", lambda: value(
            client.job_attributes(job_id), "job-state") == JobState.COMPLETED)
        assert value(client.job_attributes(job_id), "job-impressions-completed") == 2
        _wait_for("the printer idle", lambda: value(client.printer_attributes(
            "printer-state"), "printer-state") == PrinterState.IDLE)
        printer = client.printer_attributes("printer-state-reasons", "marker-levels",
                                            "printer-impressions-completed")
        assert value(printer, "printer-state-reasons") == "none"
        assert value(printer, "printer-impressions-completed") == 5
        level, status, errors = _snmpget(snmp, SUPPLY_LEVEL, PRINTER_STATUS, ERROR_STATE)
        assert status == "3"  # idle
        assert int(errors.strip().strip('"').replace(" ", ""), 16) == 0
        assert int(level) == value(printer, "marker-levels")
        assert run.stop() == 0, run.stderr.rest()
        record = run.record()
    assert "Traceback" not in run.stderr.rest()
    delivered = [(p["job"], p["page"]) for p in record["page_log"]]
    assert len(delivered) == len(set(delivered)) == 5, delivered  # each page exactly once
    assert [(j["pages"], j["delivered"], j["state"]) for j in record["jobs"]] == [
        (3, 3, "completed"), (2, 2, "completed")]
    assert record["sheets_used"] == 5 and record["jams"] == 0
    assert abs(record["toner_pct"] - int(level)) <= 1  # SNMP read the device's cartridge
    assert set(record["network"]) == {"ipp", "raw", "snmp"}


# -- session figures -----------------------------------------------------------------

SESSION_FIGURES = ("outcome", "pages_delivered", "sheets_used", "jams", "warnings")


def test_two_sessions_on_one_device_report_the_same_session_figures() -> None:
    records = []
    with ServeProcess("devkit", transport="pty") as device:
        for _ in range(2):
            with RunOnPort(device.url, "--board", "devkit", "--pages", "5", "--json") as run:
                assert run.wait() == 0, run.stderr.rest()
                records.append(run.record())
    first, second = records
    assert {k: first[k] for k in SESSION_FIGURES} == {k: second[k] for k in SESSION_FIGURES}
    assert first["sheets_used"] == first["pages_delivered"] == 5
    assert "unknown" not in first and "unknown" not in second
    # The device's own counts since its boot are apart from the session's, and grow.
    assert first["device"]["since_boot"]["sheets_picked"] == 5
    assert second["device"]["since_boot"]["sheets_picked"] == 10
    # The same boot of the device both times: what it says of it, and no new nonce.
    for record in records:
        assert record["device"]["reset_cause"] == "power_on"
        assert record["device"]["new_boot_nonce"] is False


def _bare_nulls(record: dict[str, Any]) -> list[str]:
    """The figures that are ``null`` with no reason under ``unknown``."""
    unknown = record.get("unknown", {})
    nulls = [k for k, v in record.items() if v is None]
    nulls += [f"device.{k}" for k, v in record["device"].items() if v is None]
    return [k for k in nulls if not unknown.get(k)]


def test_a_device_gone_mid_job_leaves_explicit_unknowns_with_reasons(tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    # Over TCP, not a pty: the host keeps trying the gone device's address for seconds,
    # holding its lock, and the kernel hands a freed pty's number to the next pty made,
    # here another test's device under xdist.
    with ServeProcess("devkit", transport="tcp") as device, RunOnPort(
            device.url, "--board", "devkit", "--pages", "500", "--json",
            "--trace", str(trace)) as run:
        # The trace's first batch is written some thousands of events (pages and link
        # frames) into the session: then the device goes, mid-job.
        _wait_for("the session's first trace batch", lambda: trace.exists()
                  and trace.stat().st_size > 0, timeout_s=60.0)
        device.stop()
        assert run.wait(60.0) == 1, run.stderr.rest()
        record = run.record()
    assert record["outcome"] == "stalled"
    assert 0 <= record["pages_delivered"] < 300
    assert _bare_nulls(record) == []
    unknown = record["unknown"]
    assert record["sheets_used"] is None
    assert unknown["sheets_used"] == (f"the link to the device on {device.url} is down; at "
                                      f"least {record['pages_delivered']} (the pages "
                                      "delivered)")
    for level in ("toner_pct", "tray_sheets"):
        assert record[level] is None and "is down" in unknown[level]
    assert record["device"]["new_boot_nonce"] is None
    assert "whether it rebooted is not known" in unknown["device.new_boot_nonce"]
