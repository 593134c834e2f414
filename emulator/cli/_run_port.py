"""``printer-emu run --port URL``: the firmware on a serial device, in real time.

The same firmware, progress display and ``--json`` contract as on the emulated board
(:func:`emulator.cli._common.execute` does the running and the printing), on a
:class:`hal.serial.SerialBoard` opened on ``URL`` (a device path,
``socket://HOST:PORT``, ``rfc2217://HOST:PORT``) with a wall-clock scheduler. The board
file is ``--board`` (or the scenario's), else the one the device names in its HELLO; a
device of another board is refused. ``--scenario`` works where the device offers the
simulation commands (``"sim"`` in its HELLO): otherwise a scenario with fault actions is
a one-line error, exit status 2, as is a port that cannot be opened or a device that does
not answer. ``--trace FILE`` records the run as on the emulated board, plus the link's
frames (``link``/``tx`` and ``link``/``rx``: ``TYPE seq request_id``).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from boards import load_board
from emulator.cli._common import UsageError, execute, jobs_for, scenario_of, seed_of
from emulator.run import BoardObservation, PrintRun, Scenario
from hal.serial import PrinterLinkError, SerialBoard

__all__ = ["SerialObservation", "add_port_option", "run_on_port"]


def add_port_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--port URL``, ``--baud N`` and ``--connect-timeout S`` to ``run``."""
    parser.add_argument(
        "--port", metavar="URL", default=None,
        help="run on the serial device at URL (a device path, socket://HOST:PORT, "
             "rfc2217://HOST:PORT) instead of the emulated board, in real time")
    parser.add_argument(
        "--baud", type=int, default=None, metavar="N",
        help="with --port: the line rate of a real UART (default: the port's setting)")
    parser.add_argument(
        "--connect-timeout", type=float, default=5.0, metavar="S",
        help="with --port: how long to wait for the device to answer (default 5)")


class SerialObservation(BoardObservation):
    """What a run learns of a serial device beyond the firmware's view: the device's
    ``sim.observe`` (the true toner level, tray count and sheets picked), or ``None``
    from a device without simulation commands. One query serves the three figures asked
    together (the summary, the JSON record, each progress refresh)."""

    _MAX_AGE_S = 0.05

    def __init__(self, board: SerialBoard) -> None:
        super().__init__(board)
        self._serial = board
        self._observed: dict[str, Any] | None = None
        self._at: float | None = None

    def _fresh(self) -> dict[str, Any] | None:
        now = time.monotonic()
        if self._at is None or now - self._at > self._MAX_AGE_S:
            observed = self._serial.observe(timeout_s=1.0)
            if observed is not None:
                self._observed = observed
            self._at = time.monotonic()
        return self._observed

    def _figure(self, key: str) -> float | None:
        observed = self._fresh()
        value = None if observed is None else observed.get(key)
        return float(value) if isinstance(value, int | float) else None

    def toner_pct(self) -> float | None:
        return self._figure("toner_pct")

    def tray_sheets(self) -> int | None:
        value = self._figure("tray_sheets")
        return None if value is None else int(value)

    def sheets_used(self) -> int | None:
        value = self._figure("sheets_picked")
        return None if value is None else int(value)


def _has_fault_actions(scenario: Scenario | None) -> bool:
    return scenario is not None and any(t.action.kind != "submit" for t in scenario.actions)


@contextlib.contextmanager
def _traced(run: PrintRun, board: SerialBoard, path: Any) -> Iterator[None]:
    """``--trace``: the run as on the emulated board, plus every frame on the link."""
    if path is None:
        yield
        return
    from emulator.trace import TraceRecorder, open_sink

    recorder = TraceRecorder()
    recorder.add_sink(open_sink(path))
    recorder.attach_run(run)
    recorder.declare("link", "tx", "string", "")
    recorder.declare("link", "rx", "string", "")
    recorder.start()

    def frame(t_ns: int, direction: str, frame_type: str, seq: int, request_id: int) -> None:
        recorder.record(t_ns, "link", direction, f"{frame_type} {seq} {request_id}")

    board.set_trace(frame)
    try:
        yield
    finally:
        board.set_trace(None)
        recorder.stop()


def run_on_port(args: argparse.Namespace) -> int:
    """``printer-emu run --port URL ...``; returns the exit status (user mistakes are
    raised as ``UsageError``/``BoardFileError``/... for ``main`` to print)."""
    if args.speed not in ("max", "realtime"):
        raise UsageError("--speed does not apply with --port: a serial device runs in real "
                         "time")
    if args.baud is not None and args.baud <= 0:
        raise UsageError(f"--baud: expected a positive line rate, got {args.baud}")
    scenario = scenario_of(args)
    board_ref = args.board or (scenario.board if scenario and scenario.board else None)
    config = load_board(board_ref) if board_ref else None
    seed = seed_of(args, scenario)
    jobs = jobs_for(args, scenario)  # every job file read before we touch the port

    try:
        board = SerialBoard(args.port, config, baud=args.baud,
                            open_timeout_s=args.connect_timeout)
    except PrinterLinkError as e:
        raise UsageError(str(e)) from None
    try:
        if _has_fault_actions(scenario) and board.faults is None:
            raise UsageError(
                f"--scenario: the device on {args.port} offers no simulation commands (no "
                "\"sim\" in its HELLO), so the scenario's faults cannot be applied")
        run = PrintRun(board, seed=seed, observation=SerialObservation(board))
        for spec in jobs:
            run.add_job(spec)
        if scenario:
            run.add_actions(scenario.actions)
        with _traced(run, board, getattr(args, "trace", None)):
            return execute(run, args)
    finally:
        board.close()
