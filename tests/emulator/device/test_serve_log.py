"""serve's log stays bounded whatever a client sends: warnings of one kind pass once per
10 s with a count of those suppressed, and a malformed RFC 2217 suboption drops the
client in one line, never a traceback."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from emulator.device import ServeProcess
from emulator.device._log_limit import RateLimit
from emulator.flash import encode_smp_frame


def _record(msg: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("printer_emu.serve", level, __file__, 1, msg, args, None)


def test_one_warning_of_a_kind_per_window_then_the_count_of_those_suppressed() -> None:
    now = [100.0]
    limit = RateLimit(window_s=10.0, clock=lambda: now[0])
    assert limit.filter(_record("SMP frame dropped: %s", "line is not base64"))
    passed = [limit.filter(_record("SMP frame dropped: %s", f"why {n}")) for n in range(500)]
    assert not any(passed)
    assert limit.filter(_record("handshake failed: %s", "other kind"))  # its own budget
    now[0] += 10.0
    record = _record("SMP frame dropped: %s", "CRC mismatch")
    assert limit.filter(record)
    assert record.getMessage() == (
        "SMP frame dropped: CRC mismatch (500 more like it in the last 10 s suppressed)")
    assert limit.filter(_record("client connected (%s)", "x", level=logging.INFO))
    assert limit.filter(_record("client connected (%s)", "y", level=logging.INFO))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_malformed_rfc2217_suboptions_and_smp_lines_make_a_bounded_log(tmp_path: Path) -> None:
    iac, sb, se, com_port = b"\xff", b"\xfa", b"\xf0", b"\x2c"
    short_set_baud = iac + sb + com_port + b"\x01\x00" + iac + se  # 4 bytes of baud wanted
    with ServeProcess("devkit", transport="rfc2217",
                      extra_args=["--flash", str(tmp_path / "d.flash")]) as device:
        host, port = device.url.removeprefix("rfc2217://").rsplit(":", 1)
        for _ in range(30):
            with socket.create_connection((host, int(port)), timeout=2) as sock:
                sock.sendall(encode_smp_frame(b"\x00" * 3) + b"\x06\x09!!!\n" + short_set_baud)
                sock.settimeout(2)
                try:
                    while sock.recv(4096):  # until serve drops us
                        pass
                except (ConnectionResetError, TimeoutError):
                    pass
        log = device.stderr_text()
    assert "Traceback" not in log, log
    lines = log.strip().splitlines()
    rfc = [line for line in lines if "RFC 2217" in line]
    assert rfc and rfc[0].startswith("printer-emu serve: RFC 2217 from 127.0.0.1:")
    assert "malformed Telnet (error: unpack requires a buffer of 4 bytes); dropped" in rfc[0]
    assert len(lines) <= 4, "\n".join(lines)  # one line per kind: SMP x2, RFC 2217
