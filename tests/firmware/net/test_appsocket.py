"""The raw port on the emulated board: jobs by connection, PJL status asked and pushed."""

from __future__ import annotations

import socket
import time

from firmware.net._pjl import UEL
from hal import JamPoint
from tests.firmware.net.conftest import NetRig
from tests.firmware.net.pwg_samples import encode_page, page_header, stream


def _connect(rig: NetRig) -> socket.socket:
    assert rig.front_end.raw_address is not None
    sock = socket.create_connection(rig.front_end.raw_address, timeout=30)
    sock.settimeout(30)
    return sock


def _read_until(sock: socket.socket, needle: bytes, timeout_s: float = 30.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout_s
    while needle not in data:
        assert time.monotonic() < deadline, f"no {needle!r} in {data!r}"
        chunk = sock.recv(4096)
        assert chunk, f"connection closed before {needle!r}; got {data!r}"
        data += chunk
    return data


def _page_count(rig: NetRig) -> int:
    with _connect(rig) as sock:
        sock.sendall(UEL + b"@PJL INFO PAGECOUNT\r\n" + UEL)
        sock.shutdown(socket.SHUT_WR)
        reply = _read_until(sock, b"\f")
    line = next(x for x in reply.split(b"\r\n") if x.startswith(b"PAGECOUNT="))
    return int(line.split(b"=")[1])


def test_a_plain_raw_job_prints_its_pages(rig: NetRig) -> None:
    assert _page_count(rig) == 0
    with _connect(rig) as sock:
        sock.sendall(b"one\ftwo\fthree\f")
    rig.wait_for(lambda: rig.board.sheets_delivered == 3, what="three pages out")
    rig.wait_for(lambda: _page_count(rig) == 3, what="the page count at 3")


def test_a_pjl_wrapped_raster_job(rig: NetRig) -> None:
    raster = stream(page_header(64, 8) + encode_page([b"\x00" * 64] * 8),
                    page_header(64, 8) + encode_page([b"\xff" * 64] * 8))
    with _connect(rig) as sock:
        sock.sendall(UEL + b'@PJL JOB NAME="raster"\r\n@PJL USTATUS JOB=ON\r\n'
                     b"@PJL ENTER LANGUAGE=PWGRASTER\r\n" + raster + UEL + b"@PJL EOJ\r\n" + UEL)
        sock.shutdown(socket.SHUT_WR)
        reply = _read_until(sock, b"PAGES=2\r\n\f")
    assert b'@PJL USTATUS JOB\r\nSTART\r\nNAME="raster"\r\n\f' in reply
    job = next(iter(rig.printer.jobs.jobs.values()))
    assert job.page_coverage_pct == (100.0, 0.0)


def test_info_status_when_ready(rig: NetRig) -> None:
    with _connect(rig) as sock:
        sock.sendall(UEL + b"@PJL INFO STATUS\r\n@PJL INFO ID\r\n" + UEL)
        sock.shutdown(socket.SHUT_WR)
        reply = _read_until(sock, b'"\r\n\f')
    assert reply.startswith(b'@PJL INFO STATUS\r\nCODE=10001\r\nDISPLAY="Ready"\r\n'
                            b"ONLINE=TRUE\r\n\f@PJL INFO ID\r\n")


def test_ustatus_device_pushes_each_condition_unasked(rig: NetRig) -> None:
    with _connect(rig) as sock:
        sock.sendall(UEL + b"@PJL USTATUS DEVICE=ON\r\n")
        with _connect(rig) as job:
            job.sendall(b"x\f" * 60)
        _read_until(sock, b"CODE=10023")  # printing
        rig.on_scheduler(lambda: rig.board.set_toner_pct(6.0))
        _read_until(sock, b"CODE=10006")
        rig.on_scheduler(lambda: rig.board.set_cover(True))
        _read_until(sock, b"CODE=40021")
        rig.on_scheduler(lambda: rig.board.set_cover(False))
        rig.on_scheduler(lambda: rig.board.set_tray(0))
        _read_until(sock, b"CODE=41104")
        rig.on_scheduler(lambda: rig.board.set_tray(100))
        _read_until(sock, b"CODE=10006")  # printing again, toner still low
        rig.wait_for(lambda: rig.board.sheets_in_path > 0, what="a sheet in the path")
        rig.on_scheduler(lambda: rig.board.jam(JamPoint.EXIT))
        _read_until(sock, b"CODE=421")
