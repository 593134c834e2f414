"""The pytest plugin's own contract, checked by running pytest inside pytest."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]

_PASSING = """
from emulator import PrinterHarness

def test_prints(printer: PrinterHarness) -> None:
    job = printer.submit(pages=3)
    printer.run_until_idle(timeout_s=60)
    assert job.delivered == 3
"""

_FAILING = """
from emulator import PrinterHarness

def test_expects_too_much(printer: PrinterHarness) -> None:
    printer.submit(pages=2)
    printer.run_until_idle(timeout_s=60)
    assert printer.delivered_pages() == []
"""


def test_fixtures_run_a_job_on_the_emulated_board(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_PASSING)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_options_are_namespaced(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "*--printer-board=NAME|PATH*", "*--printer-port=URL*", "*--printer-baud=N*",
        "*--printer-seed=N*",
    ])


@pytest.mark.parametrize(("args", "message"), [
    (["--printer-baud=115200"], "*--printer-baud * needs --printer-port*"),
    (["--printer-port=/dev/null", "--printer-baud=0"],
     "*--printer-baud: expected a positive line rate, got 0*"),
])
def test_a_baud_without_a_port_or_not_positive_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], message: str,
) -> None:
    pytester.makepyfile("def test_x(printer): pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_the_baud_reaches_the_serial_board(pytester: pytest.Pytester) -> None:
    """A UART's rate sizes the link: at 9,600 baud a window of frames takes seconds on the
    wire, far beyond the 15 ms devkit's board file gives a pty."""
    from boards import load_board
    from emulator.device import ServeProcess
    from hal.serial._timings import host_link_options

    expected_ns = host_link_options(load_board("devkit"), 9600)["rto_ns"]
    assert expected_ns > 1_000_000_000
    pytester.makepyfile(f"""
def test_rto(printer_board):
    assert printer_board.link.rto_ns == {expected_ns}
""")
    with ServeProcess("devkit") as device:
        result = pytester.runpytest("-p", "no:cacheprovider", f"--printer-port={device.url}",
                                    "--printer-baud=9600")
    result.assert_outcomes(passed=1)


def test_a_failing_test_reports_states_events_and_a_trace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_FAILING)
    trace_dir = pytester.path / "traces"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--printer-trace-dir={trace_dir}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*- printer -*", "states: cover=closed, fuser=*engine=standby*",
        "*page_delivered job=1 page=2*", "trace of the run: *traces*.jsonl",
    ])
    traces = list(trace_dir.glob("*.jsonl"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0


def test_printer_caps_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
import pytest

@pytest.mark.printer_caps("teleport")
def test_needs_teleport(printer) -> None:
    raise AssertionError("must not run")
""")
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*lacks teleport*"])


def test_the_board_option_picks_the_board(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
def test_board(printer_board) -> None:
    assert printer_board.config.name == "lp-2000"
""")
    result = pytester.runpytest("-p", "no:cacheprovider", "--printer-board=lp-2000")
    result.assert_outcomes(passed=1)


def test_an_unknown_board_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(printer): pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--printer-board=lp-9")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*unknown board 'lp-9'*"])


def test_a_device_port_is_locked_while_used_and_released_after_a_crash() -> None:
    # The plugin takes the shared device lock (hal.serial.lock_port), the one `run --port`
    # and `flash` take: another process is refused, naming this one, until the test ends.
    import subprocess
    import sys

    from emulator import pytest_plugin

    url = "socket://127.0.0.1:1"

    def held_elsewhere() -> str:
        probe = subprocess.run(
            [sys.executable, "-c",
             f"from hal.serial import PortInUse, lock_port\n"
             f"try:\n    lock_port({url!r})\nexcept PortInUse as e:\n    print(e)"],
            capture_output=True, text=True, timeout=30, check=True)
        return probe.stdout.strip()

    with pytest.raises(RuntimeError), pytest_plugin._port_lock(url):
        assert held_elsewhere() == f"{url} is in use by pid {os.getpid()} (pytest)"
        raise RuntimeError("the test crashed")
    assert held_elsewhere() == ""
