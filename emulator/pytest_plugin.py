"""printer-emu's pytest plugin: HIL tests that run unchanged on the emulated board and
on serial devices. Registered through the ``pytest11`` entry point; installing the
project is enough.

Everything it adds is namespaced ``printer``, so it does not clash with other
plugins' ``target``, ``port`` or ``dut``:

* options: ``--printer-board NAME|PATH`` (default ``devkit``), ``--printer-port URL``
  (a serial device instead of the in-process emulated board; ``--printer-baud N``, its
  UART's line rate, which also sizes the link's timeouts), ``--printer-serve
  pty|tcp|rfc2217`` (start a virtual device, one per xdist worker, and test over it),
  ``--printer-seed N``, ``--printer-trace-dir DIR``;
* fixtures: ``printer_board`` (the board), ``printer`` (a :class:`PrinterHarness`: the
  firmware booted and idle on the chosen board), ``printer_faults`` (the board's fault
  injection; the test is skipped where the board has none);
* markers: ``printer_caps("faults", ...)``: skip, with the reason, on a board that
  lacks a capability; ``printer_network(speed=10.0)``: the emulated board's time follows
  the wall, ``speed`` times real time, so the test can put the printer on the network
  (``printer.network()``: IPP, port 9100, SNMP on loopback). A serial board runs in
  real time whatever the marker says.

A failing test's report gets a ``printer`` section: the active objects' states, the last
events, and the path of a trace of the run (JSONL, every interrupt, state change and
request). Device ports are locked while a test uses them (no two workers on one device)
and released however the test ends.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boards import BoardConfig, load_board
from emulator.run import PrinterHarness
from emulator.trace import TraceRecorder
from hal import Board, FaultInjector, Scheduler, VirtualClock

_DEFAULT_BOARD = "devkit"
_NETWORK_SPEED = 10.0
"""The emulated board's speed over real time in a ``printer_network`` test."""
_LOCK_WAIT_S = 60.0
_TRACE_RING = 20_000
_HARNESS_KEY = pytest.StashKey[PrinterHarness]()
_TRACE_KEY = pytest.StashKey[TraceRecorder]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("printer", "printer-emu hardware-in-the-loop")
    group.addoption("--printer-board", default=None, metavar="NAME|PATH",
                    help=f"board file or shipped board name (default {_DEFAULT_BOARD})")
    group.addoption("--printer-port", default=None, metavar="URL",
                    help="run on the serial device at URL (a device path, socket://, "
                         "rfc2217://) instead of the in-process emulated board")
    group.addoption("--printer-baud", default=None, type=int, metavar="N",
                    help="the line rate of --printer-port's UART, in baud; it also sizes "
                         "the link's retransmission timeout (default: none, for a pty or "
                         "a socket)")
    group.addoption("--printer-serve", default=None, choices=("pty", "tcp", "rfc2217"),
                    help="start a virtual device (printer-emu serve) for this session, "
                         "one per xdist worker, and run on it")
    group.addoption("--printer-seed", default=0, type=int, metavar="N",
                    help="seed of the emulated board's random draws (default 0)")
    group.addoption("--printer-trace-dir", default=None, metavar="DIR",
                    help="where the traces of failing tests are written "
                         "(default: printer-emu-traces in the system's temporary "
                         "directory)")


def pytest_configure(config: pytest.Config) -> None:
    baud = config.getoption("--printer-baud")
    if baud is not None:
        if not config.getoption("--printer-port"):
            raise pytest.UsageError("--printer-baud is the line rate of --printer-port's "
                                    "UART: it needs --printer-port")
        if baud <= 0:
            raise pytest.UsageError(f"--printer-baud: expected a positive line rate, got {baud}")
    config.addinivalue_line(
        "markers",
        "printer_caps(*caps): run only on a printer board offering every capability "
        "named (e.g. 'faults'); skipped with the reason elsewhere",
    )
    config.addinivalue_line(
        "markers",
        f"printer_network(speed={_NETWORK_SPEED:g}): the emulated board's time follows the "
        "wall (speed times real time), so printer.network() can serve clients",
    )


# -- the board ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def printer_board_config(request: pytest.FixtureRequest) -> BoardConfig:
    """The board file the session tests against."""
    return load_board(request.config.getoption("--printer-board") or _DEFAULT_BOARD)


@pytest.fixture(scope="session")
def printer_device_url(request: pytest.FixtureRequest,
                       printer_board_config: BoardConfig) -> Iterator[str | None]:
    """The serial device's URL, or None for the in-process emulated board. With
    ``--printer-serve`` a virtual device is started for this worker and stopped at the
    end of the session."""
    port = request.config.getoption("--printer-port")
    serve = request.config.getoption("--printer-serve")
    if port and serve:
        raise pytest.UsageError("give --printer-port or --printer-serve, not both")
    if serve:
        from emulator.device import ServeProcess

        # A flash of its own in the session's temp dir: a test session leaves nothing
        # in the user's state directory, and xdist workers never share one.
        flash = request.getfixturevalue("tmp_path_factory").mktemp("device") / "flash"
        with ServeProcess(printer_board_config.source, transport=serve,
                          extra_args=["--flash", str(flash)]) as device:
            yield device.url
        return
    yield port


@contextlib.contextmanager
def _port_lock(url: str) -> Iterator[None]:
    """The device's lock (:func:`hal.serial.lock_port`, the one ``run --port`` and
    ``flash`` take too) for the duration of a test, waiting up to ``_LOCK_WAIT_S`` for
    another test to let it go. The kernel releases it when the holder dies, so a crashed
    worker never leaves a stale lock behind."""
    from hal.serial import PortInUse, PortLock, lock_port

    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            lock: PortLock = lock_port(url, holder="pytest")
            break
        except PortInUse as exc:
            if time.monotonic() > deadline:
                raise pytest.fail.Exception(
                    f"printer device {url} stayed locked for {_LOCK_WAIT_S:g} s: {exc}"
                ) from None
            time.sleep(0.05)
    with lock:
        yield


@pytest.fixture
def printer_board(request: pytest.FixtureRequest, printer_board_config: BoardConfig,
                  printer_device_url: str | None) -> Iterator[Board]:
    """A board to test on: the emulated board in virtual time, or the serial device
    (locked for this test, connected afresh, closed afterwards)."""
    if printer_device_url is None:
        from emulator.board import EmulatedBoard

        seed = request.config.getoption("--printer-seed")
        network = request.node.get_closest_marker("printer_network")
        ratio = float(network.kwargs.get("speed", _NETWORK_SPEED)) if network else None
        yield EmulatedBoard(printer_board_config, Scheduler(VirtualClock(ratio)), seed=seed)
        return
    from hal.serial import PrinterLinkError, SerialBoard

    with _port_lock(printer_device_url):
        problem = ""
        try:
            board = SerialBoard(printer_device_url, printer_board_config,
                                baud=request.config.getoption("--printer-baud"))
        except (PrinterLinkError, OSError) as exc:
            problem = f"printer device {printer_device_url}: {exc}"
        if problem:  # the world's failure, not the test's: one line, no traceback
            pytest.fail(problem, pytrace=False)
        try:
            board.power_cycle()
            yield board
        finally:
            board.close()


def _skip_for_caps(request: pytest.FixtureRequest, board: Board) -> None:
    for marker in request.node.iter_markers("printer_caps"):
        missing = [cap for cap in marker.args if cap not in board.capabilities]
        if missing:
            pytest.skip(f"board {board.config.name} lacks {', '.join(missing)} "
                        f"(has: {', '.join(sorted(board.capabilities)) or 'nothing extra'})")


@pytest.fixture
def printer(request: pytest.FixtureRequest, printer_board: Board) -> PrinterHarness:
    """The firmware booted and idle on ``printer_board``."""
    _skip_for_caps(request, printer_board)
    harness = PrinterHarness(printer_board, seed=request.config.getoption("--printer-seed"))
    recorder = TraceRecorder(ring_size=_TRACE_RING)
    recorder.attach_run(harness.run)
    recorder.start()
    request.node.stash[_HARNESS_KEY] = harness
    request.node.stash[_TRACE_KEY] = recorder
    harness.boot()
    return harness


@pytest.fixture
def printer_faults(request: pytest.FixtureRequest, printer_board: Board) -> FaultInjector:
    """The board's fault injection (simulation commands on a virtual serial device)."""
    faults = printer_board.faults
    if faults is None:
        pytest.skip(f"board {printer_board.config.name} cannot inject faults")
    return faults


# -- failure reports ----------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    harness = item.stash.get(_HARNESS_KEY, None)
    recorder = item.stash.get(_TRACE_KEY, None)
    if harness is None or recorder is None:
        return report
    if report.when == "call" and report.failed:
        trace_path = _write_trace(item, recorder)
        report.sections.append(
            ("printer", f"{harness.describe()}\ntrace of the run: {trace_path}"))
    if report.when == "teardown":
        recorder.stop()
    return report


def _write_trace(item: pytest.Item, recorder: TraceRecorder) -> Path:
    trace_dir_opt = item.config.getoption("--printer-trace-dir")
    if trace_dir_opt:
        trace_dir = Path(trace_dir_opt)
    else:
        trace_dir = Path(tempfile.gettempdir()) / "printer-emu-traces"
    trace_dir.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", item.nodeid)[-120:]
    path = trace_dir / f"{safe}.jsonl"
    with path.open("w") as f:
        recorder.write_tail(f)
    return path
