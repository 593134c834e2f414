"""``printer-emu``: the command line.

Every user mistake (an unknown board, a bad scenario, an unreadable job file, a port
that does not exist) is one line on stderr naming what and where, and exit status 2 —
never a traceback. Exit status 1 means the run itself did not finish its jobs (a job
failed, or the printer was left waiting on its operator).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from boards import BoardFileError, available_boards, load_board
from emulator._compiled import stale_message, stale_modules
from emulator.cli import _diagram
from emulator.cli._run_port import add_port_option, run_on_port
from emulator.device import _serve
from emulator.run._print_run import Outcome, PrintRun
from emulator.run._scenario import JobSpec, Scenario, ScenarioError, load_scenario
from emulator.trace import _plot
from emulator.trace._recorder import TraceError, add_trace_option, trace_run
from firmware import JobFileError, read_job_file
from hal import Scheduler, VirtualClock

DEFAULT_BOARD = "lp-2000"
DEFAULT_PAGES = 20
DEFAULT_COVERAGE_PCT = 5.0

EXIT_OK = 0
EXIT_RUN_INCOMPLETE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A user's mistake: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parse_speed(text: str) -> float | None:
    """``max`` (as fast as the CPU allows), ``realtime`` (1.0) or a ratio > 0."""
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    try:
        ratio = float(text)
    except ValueError:
        raise UsageError(f"--speed: expected max, realtime or a number, got {text!r}") from None
    if not ratio > 0:
        raise UsageError(f"--speed: the ratio must be > 0, got {text!r}")
    return ratio


def _add_run(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run the firmware on a board and print jobs",
                       description="Run the printer firmware on an emulated board (or on a "
                                   "serial device with --port) and print jobs.")
    p.add_argument("--board", help=f"board name or TOML path (default {DEFAULT_BOARD})")
    p.add_argument("--pages", type=int, help=f"pages of the demo job (default {DEFAULT_PAGES})")
    p.add_argument("--coverage", type=float, metavar="PCT",
                   help="toner coverage of the demo job, percent "
                        f"(default {DEFAULT_COVERAGE_PCT:g})")
    p.add_argument("--job", action="append", default=[], metavar="FILE",
                   help="a text file to print (repeatable)")
    p.add_argument("--seed", type=int, help="seed of the run's random draws (default 0)")
    p.add_argument("--speed", default="max", help="max | realtime | a ratio to real time")
    p.add_argument("--scenario", metavar="FILE", help="a scenario file (TOML)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.add_argument("--quiet", action="store_true", help="print only the final line")
    add_trace_option(p)
    add_port_option(p)
    p.set_defaults(handler=_cmd_run)


def _add_boards(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("boards", help="list the shipped boards")
    p.set_defaults(handler=_cmd_boards)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="printer-emu",
                     description="A laser printer's firmware on an emulated or serial board.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_run(sub)
    _add_boards(sub)
    _serve.register(sub)
    _diagram.register(sub)
    _plot.register(sub)
    # `flash` parses its own arguments (main() hands them over); listed here for --help.
    sub.add_parser("flash", add_help=False,
                   help="flash an MCUboot image over SMP (printer-emu flash --help)")
    return parser


def _cmd_boards(args: argparse.Namespace) -> int:
    for name in available_boards():
        config = load_board(name)
        print(f"{name:12} {config.board.description}")
    return EXIT_OK


def _jobs_for(args: argparse.Namespace, scenario: Scenario | None) -> list[JobSpec]:
    jobs: list[JobSpec] = list(scenario.jobs) if scenario else []
    for path in args.job:
        read_job_file(path)  # fail now, with the file's name, not mid-run
        jobs.append(JobSpec(file=Path(path)))
    if args.pages is not None or args.coverage is not None or not jobs:
        pages = DEFAULT_PAGES if args.pages is None else args.pages
        coverage = DEFAULT_COVERAGE_PCT if args.coverage is None else args.coverage
        if pages < 1:
            raise UsageError(f"--pages: expected at least 1, got {pages}")
        if not 0.0 <= coverage <= 100.0:
            raise UsageError(f"--coverage: expected a percentage in [0, 100], got {coverage:g}")
        jobs.append(JobSpec(pages=pages, coverage_pct=coverage))
    for spec in jobs:
        if spec.file is not None:
            read_job_file(spec.file)
    return jobs


def _cmd_run(args: argparse.Namespace) -> int:
    if args.port is not None:
        return run_on_port(args)
    from emulator.board import EmulatedBoard  # the physics, only when a run needs them

    scenario = load_scenario(args.scenario) if args.scenario else None
    board_ref = args.board or (scenario.board if scenario and scenario.board else DEFAULT_BOARD)
    config = load_board(board_ref)
    seed = args.seed if args.seed is not None else (scenario.seed if scenario and
                                                     scenario.seed is not None else 0)
    speed = _parse_speed(args.speed)
    jobs = _jobs_for(args, scenario)

    scheduler = Scheduler(VirtualClock(speed))
    board = EmulatedBoard(config, scheduler, seed=seed)
    run = PrintRun(board, seed=seed)
    for spec in jobs:
        run.add_job(spec)
    if scenario:
        run.add_actions(scenario.actions)
    with trace_run(run, args.trace):
        return _execute(run, args)


def _execute(run: PrintRun, args: argparse.Namespace) -> int:
    console = Console(stderr=False, highlight=False)
    if args.json or args.quiet:
        run.run()
    else:
        from emulator.cli._console import RunConsole

        view = RunConsole(run, console, live=console.is_terminal)
        try:
            run.run(on_progress=view.progress)
        finally:
            view.finish()
    result = run.result()
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    elif args.quiet:
        print(f"{result['outcome']}: {result['pages_delivered']} of {run.pages_total} pages "
              f"in {result['sim_time_s']:.3f} s simulated on {result['board']}")
    return EXIT_OK if run.outcome is Outcome.COMPLETED else EXIT_RUN_INCOMPLETE


_USER_ERRORS: tuple[type[Exception], ...] = (
    UsageError, BoardFileError, ScenarioError, JobFileError, TraceError,
)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. Returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["flash"]:
        from emulator.cli._flash import flash_main

        return flash_main(arguments[1:])
    stale = stale_modules()
    if stale:
        print(f"printer-emu: warning: {stale_message(stale)}", file=sys.stderr)
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except _USER_ERRORS as e:
        print(f"printer-emu: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("printer-emu: interrupted", file=sys.stderr)
        return 130


def console_main() -> None:
    sys.exit(main())
