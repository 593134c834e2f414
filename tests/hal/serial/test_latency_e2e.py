"""A job over a real link with 50 ms of latency each way (issue 15, item 1): `printer-emu
serve --tcp` behind a small in-test relay that holds every chunk 50 ms, both ways, and a
SerialBoard on the relay. The firmware judges the paper path in the device's time, so
the slow link declares no misfeed and no jam.

The board is devkit's logic on slower mechanics (a board file written here): its sheet
takes 167 ms from the feed sensor to the drum, so an imaging request asked for at the
feed edge still crosses the link both ways in time, while its feed deadline (200 ms of
travel and a 50 ms margin, from the pickup) is shorter than travel and a round trip:
the host-timed firmware misfed every sheet through this link.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from pathlib import Path

from boards import load_board
from emulator.device import ServeProcess
from emulator.run import JobSpec, Outcome, PrintRun
from hal.serial import SerialBoard

_LATENCY_S = 0.050
_PAGES = 10
_BOARD = """\
extends = "devkit"

[board]
name = "devkit-slow"
description = "devkit's logic on 300 mm/s mechanics: a link's latency fits its drum"

[engine]
rated_ppm = 100
paper_speed_mm_s = 300.0
sheet_length_mm = 148.0
"""


class DelayRelay:
    """A TCP relay to ``upstream`` for one client, holding every chunk ``delay_s`` in each
    direction (a constant latency: order kept). Threads end with the sockets."""

    def __init__(self, upstream_port: int, delay_s: float) -> None:
        self._upstream_port = upstream_port
        self._delay_s = delay_s
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(10.0)
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def _serve(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", self._upstream_port), timeout=10.0)
        self._sockets += [client, upstream]
        for src, dst in ((client, upstream), (upstream, client)):
            held: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
            for target, args in ((self._read, (src, held)), (self._write, (dst, held))):
                thread = threading.Thread(target=target, args=args, daemon=True)
                self._threads.append(thread)
                thread.start()

    def _read(self, src: socket.socket, held: queue.Queue[tuple[float, bytes] | None]) -> None:
        src.settimeout(None)
        try:
            while data := src.recv(65536):
                held.put((time.monotonic() + self._delay_s, data))
        except OSError:
            pass
        held.put(None)

    def _write(self, dst: socket.socket, held: queue.Queue[tuple[float, bytes] | None]) -> None:
        while (item := held.get()) is not None:
            due, data = item
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5.0)
        assert not any(t.is_alive() for t in self._threads), "a relay thread hung"


def test_a_job_through_a_50ms_link_has_no_misfeed_and_no_jam(tmp_path: Path) -> None:
    board_file = tmp_path / "devkit-slow.toml"
    board_file.write_text(_BOARD)
    config = load_board(board_file)
    with ServeProcess(board_file, transport="tcp") as device:
        port = int(device.url.rsplit(":", 1)[1])
        relay = DelayRelay(port, _LATENCY_S)
        try:
            with SerialBoard(f"socket://127.0.0.1:{relay.port}", config, strict=True,
                             open_timeout_s=10.0) as board:
                run = PrintRun(board, seed=0)
                run.add_job(JobSpec(pages=_PAGES, coverage_pct=5.0))
                outcome = run.run(max_run_ns=60_000_000_000)
        finally:
            relay.close()
    kinds = [e["kind"] for e in run.events]
    assert outcome is Outcome.COMPLETED, kinds
    assert "misfeed" not in kinds and "jam" not in kinds and "fuser_error" not in kinds, kinds
    assert "link_down" not in kinds, kinds
    assert [p["page"] for p in run.page_log] == list(range(1, _PAGES + 1))
