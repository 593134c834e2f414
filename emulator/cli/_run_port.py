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

With ``--ipp``/``--raw``/``--snmp`` the printer goes on the network until Ctrl-C
(`emulator.cli._run_network`), the firmware on the serial device: jobs from clients are
printed there, and status answers read what the firmware publishes of that device.

The record is the session's (:class:`SerialObservation`): ``sheets_used``, pages and
jams counted from the session's start, whatever the device did before; ``device`` says
what the device says of itself (``reset_cause``; ``new_boot_nonce``: whether it rebooted
during the session; ``since_boot``: its own counts since its boot). A figure that cannot
be had (a device without simulation commands, or one gone mid-job) is ``null`` with its
reason under ``unknown`` (``{"sheets_used": "the link to the device on ... is down; 12 at
3.4 s into the session"}``), never a bare ``null``.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from boards import load_board
from emulator.cli._common import UsageError, execute, jobs_for, scenario_of, seed_of
from emulator.cli._run_network import network_jobs, serve_network, wants_network
from emulator.run import BoardObservation, PrintRun, Scenario
from hal.serial import NoDeviceAnswer, PrinterLinkError, SerialBoard

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


_NO_SIM = ("the device offers no simulation commands (no \"sim\" in its HELLO), so it "
           "does not tell")
_LEVELS = ("toner_pct", "tray_sheets")
"""What the device reads now (consumables carry over from session to session)."""


class SerialObservation(BoardObservation):
    """What a run learns of a serial device beyond the firmware's view, from the device's
    ``sim.observe`` (the true toner level, tray count and sheets picked).

    Counters are the session's: :meth:`begin` takes the device's counts when the session
    starts, and ``sheets_used`` is what the device picked since (on a reused ``serve``
    it does not grow run after run); the device's own counts since its boot go to the
    record's ``device`` part. A figure that cannot be had is ``None`` and
    :meth:`unknown` says why (a device without ``"sim"``, a link that is down, a device
    that stopped answering or rebooted mid-session). One query serves the figures asked
    together (the summary, the JSON record, each progress refresh)."""

    _MAX_AGE_S = 0.05

    def __init__(self, board: SerialBoard) -> None:
        super().__init__(board)
        self._serial = board
        self._start: dict[str, Any] | None = None
        """``sim.observe`` when the session started."""
        self._latest: dict[str, Any] | None = None
        self._why: str | None = None
        """Why the latest ask got no answer (``None``: it got one)."""
        self._asked_at: float | None = None
        self._has_sim = "sim" in board.device_capabilities
        hello = board.hello
        self._boot_nonce = None if hello is None else hello.boot_nonce
        self._reset_cause = board.reset_cause
        """What the device said of its last reset when the session started."""

    def begin(self) -> None:
        """Take the device's counts at the session's start (before the first job)."""
        self._start = self._ask()

    def _ask(self) -> dict[str, Any] | None:
        board = self._serial
        self._asked_at = time.monotonic()
        if not self._has_sim:
            self._why = _NO_SIM
            return None
        if not board.synced:
            self._why = f"the link to the device on {board.url} is down"
            return None
        try:
            answer = board.query("sim.observe", None, timeout_s=1.0)
        except PrinterLinkError as e:
            self._why = f"the device on {board.url} did not answer ({e})"
            return None
        if not isinstance(answer, dict):
            self._why = f"the device on {board.url} answered sim.observe with {answer!r}"
            return None
        self._why = None
        self._latest = answer
        return answer

    def _fresh(self) -> dict[str, Any] | None:
        if self._asked_at is None or time.monotonic() - self._asked_at > self._MAX_AGE_S:
            self._ask()
        return self._latest if self._why is None else None

    def _rebooted(self) -> bool | None:
        """Whether the device has a boot nonce other than the session's first; ``None``
        while the link is down (it may be rebooting)."""
        hello = self._serial.hello
        if not self._serial.synced or hello is None:
            return None
        return hello.boot_nonce != self._boot_nonce

    def _number(self, key: str) -> float | None:
        observed = self._fresh()
        value = None if observed is None else observed.get(key)
        return float(value) if isinstance(value, int | float) else None

    def toner_pct(self) -> float | None:
        return self._number("toner_pct")

    def tray_sheets(self) -> int | None:
        value = self._number("tray_sheets")
        return None if value is None else int(value)

    def sheets_used(self) -> int | None:
        now = self._number("sheets_picked")
        start = None if self._start is None else self._start.get("sheets_picked")
        if now is None or not isinstance(start, int) or self._rebooted() is not False:
            return None
        return int(now) - start

    # -- the record ----------------------------------------------------------------------

    def unknown(self, pages_delivered: int) -> dict[str, str]:
        """Why each figure of the record that is ``None`` is not known (none: ``{}``);
        ``pages_delivered``, the firmware's count, bounds the sheets used from below."""
        self._fresh()
        out: dict[str, str] = {}
        at_least = f"; at least {pages_delivered} (the pages delivered)"
        if self._start is None:
            out["sheets_used"] = f"no count at the session's start: {self._why or _NO_SIM}"
        elif self._why is not None:
            out["sheets_used"] = self._why + at_least
        elif self._rebooted() is None:
            out["sheets_used"] = f"the link to the device on {self._serial.url} is down"
        elif self._rebooted():
            out["sheets_used"] = ("the device rebooted during the session (a new boot "
                                  "nonce), so its count of sheets started again" + at_least)
        if self._why is not None:
            for key in _LEVELS:
                out[key] = self._why
        return out

    def amend(self, record: dict[str, Any]) -> dict[str, Any]:
        """The ``--json`` record with the device's part and the reasons of the unknown
        figures (`emulator.cli._common.RecordAmendment`)."""
        unknown = self.unknown(int(record["pages_delivered"]))
        rebooted = self._rebooted()
        device: dict[str, Any] = {"reset_cause": str(self._reset_cause),
                                  "new_boot_nonce": rebooted}
        if rebooted:
            device["reboot_cause"] = str(self._serial.reset_cause)
        if rebooted is None:
            unknown["device.new_boot_nonce"] = (
                f"the link to the device on {self._serial.url} is down: whether it "
                "rebooted is not known")
        since_boot = self._fresh()
        if since_boot is None:
            device["since_boot"] = None
            unknown["device.since_boot"] = self._why or _NO_SIM
        else:
            device["since_boot"] = {k: since_boot[k] for k in
                                    ("sheets_picked", "sheets_delivered", "sheets_removed")
                                    if k in since_boot}
        amended = {**record, "device": device}
        if unknown:
            amended["unknown"] = unknown
        return amended


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
    network = wants_network(args)
    # Every job file is read before we touch the port.
    jobs = network_jobs(args, scenario) if network else jobs_for(args, scenario)

    try:
        board = SerialBoard(args.port, config, baud=args.baud,
                            open_timeout_s=args.connect_timeout)
    except NoDeviceAnswer as e:
        # No printer protocol: perhaps MCUboot's serial recovery (no bootable image).
        from emulator.flash import serial_recovery_message  # SMP libraries load only here

        raise UsageError(serial_recovery_message(args.port, baud=args.baud) or str(e)) from None
    except PrinterLinkError as e:
        raise UsageError(str(e)) from None
    try:
        if _has_fault_actions(scenario) and board.faults is None:
            raise UsageError(
                f"--scenario: the device on {args.port} offers no simulation commands (no "
                "\"sim\" in its HELLO), so the scenario's faults cannot be applied")
        observation = SerialObservation(board)
        observation.begin()
        run = PrintRun(board, seed=seed, observation=observation)
        for spec in jobs:
            run.add_job(spec)
        if scenario:
            run.add_actions(scenario.actions)
        with _traced(run, board, getattr(args, "trace", None)):
            if network:  # a serial board's time is the wall's: speed 1
                return serve_network(run, args, 1.0, observation.amend)
            return execute(run, args, observation.amend)
    finally:
        board.close()
