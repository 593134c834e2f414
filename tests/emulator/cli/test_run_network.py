"""``printer-emu run --ipp/--raw/--snmp``: the printer stays up on the network, prints
what clients send, and stops cleanly on SIGINT (exit 0, the summary); every mistake
(a busy port, ``--speed max``, a bad address) is one line, exit status 2."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.cli._run_network import parse_address

REPO = Path(__file__).resolve().parents[3]
WAIT_S = 30.0


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    return subprocess.Popen([sys.executable, "-m", "emulator", "run", "--board", "devkit",
                             *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _read_until(stream: object, pattern: str) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no line matching {pattern!r} in {lines}")


def _stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=WAIT_S)
    return process.returncode, out, err


def test_addresses_default_to_loopback_and_read_every_form() -> None:
    default = ("127.0.0.1", 8631)
    assert parse_address("9000", default) == ("127.0.0.1", 9000)
    assert parse_address("0.0.0.0:9000", default) == ("0.0.0.0", 9000)
    assert parse_address(":9000", default) == ("127.0.0.1", 9000)
    assert parse_address("[::1]:9000", default) == ("::1", 9000)
    assert parse_address("localhost", default) == ("localhost", 8631)
    with pytest.raises(ValueError, match="brackets"):
        parse_address("::1:9000", default)


def test_a_raw_job_prints_and_sigint_ends_with_the_summary() -> None:
    process = _start("--raw", "127.0.0.1:0", "--ipp", "127.0.0.1:0")
    try:
        lines = _read_until(process.stdout, r"socket://")
        text = "".join(lines)
        assert re.search(r"ipp://127\.0\.0\.1:\d+/ipp/print", text), text
        port = int(re.findall(r"socket://127\.0\.0\.1:(\d+)", text)[0])
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as client:
            client.sendall(b"\x1b%-12345X@PJL JOB NAME=\"letter\"\r\n"
                           b"@PJL ENTER LANGUAGE=TEXT\r\nDear reader,\fpage two\n"
                           b"\x1b%-12345X@PJL EOJ\r\n\x1b%-12345X")
        _read_until(process.stdout, r"job 1 completed: 2/2 pages")
    finally:
        code, out, err = _stop(process)
    assert code == 0, err
    assert "Traceback" not in out + err
    assert re.search(r"pages delivered\s*│\s*2 of 2", out), out


def test_json_keeps_stdout_to_one_object_with_the_addresses() -> None:
    process = _start("--ipp", "127.0.0.1:0", "--json", "--speed", "2")
    try:
        _read_until(process.stderr, r"ipp://")
    finally:
        code, out, err = _stop(process)
    assert code == 0, err
    result = json.loads(out)
    assert re.fullmatch(r"ipp://127\.0\.0\.1:\d+/ipp/print", result["network"]["ipp"])
    assert result["pages_delivered"] == 0 and result["jobs"] == []


def test_a_busy_port_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["run", "--board", "devkit", "--raw", f"127.0.0.1:{port}"]) == 2
    _, err = capsys.readouterr()
    assert err == (f"printer-emu: error: cannot listen for raw on 127.0.0.1:{port}: "
                   "address already in use\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--ipp", "--speed", "max"], "--speed max does not apply with --ipp/--raw/--snmp"),
    (["--snmp", "127.0.0.1:70000"], "argument --snmp: port 70000 is not within 0..65535"),
    (["--ipp", "--port", "/dev/null", "--speed", "2"], "--speed does not apply with --port"),
])
def test_mistakes_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                          args: list[str], message: str) -> None:
    assert main(["run", *args]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and message in err, err


def test_a_non_loopback_address_warns_in_one_line() -> None:
    process = _start("--ipp", "0.0.0.0:0", "--quiet")
    try:
        lines = _read_until(process.stderr, r"ipp://")
    finally:
        code, out, err = _stop(process)
    warnings = [line for line in lines if "warning" in line]
    assert warnings == ["printer-emu: warning: IPP listens on 0.0.0.0: the printer is open "
                        "to the network (anyone who reaches it can print and read its "
                        "state)\n"]
    assert code == 0 and out.startswith("stopped: 0 pages printed"), out + err
