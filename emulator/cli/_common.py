"""What the commands share: exit statuses, usage errors, the ``run`` options both ways of
running take (jobs, speed, scenario, seed, ``--trace``), and running a print run with
its display.

Every user mistake is a `UsageError` (or another of `USER_ERRORS`) that ``main`` prints
as one line, ``printer-emu: error: ...``, with exit status `EXIT_USAGE`; a command that
reports its own mistake does it with `report_error`, in the same words.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from rich.console import Console

from boards import BoardFileError
from emulator.run import (
    MAX_PAGES,
    MAX_SEED,
    JobSpec,
    Outcome,
    PrintRun,
    Scenario,
    ScenarioError,
    load_scenario,
)
from emulator.trace import TRACE_SUFFIXES, TraceError
from firmware import JobFileError, read_job_file

EXIT_OK = 0
EXIT_RUN_INCOMPLETE = 1
"""The run did not finish its jobs: a job failed, or the printer waits on its operator."""
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
"""Ctrl-C: the run was interrupted (its record says ``interrupted``)."""

DEFAULT_BOARD = "lp-2000"
DEFAULT_PAGES = 20
DEFAULT_COVERAGE_PCT = 5.0

Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"
"""What ``add_subparsers`` returns: each command's ``register`` adds its parser to it."""

RecordAmendment: TypeAlias = Callable[[dict[str, Any]], dict[str, Any]]
"""What a way of running adds to the ``--json`` record beyond :meth:`PrintRun.result`
(a serial device's session figures): takes the record, returns the record to print."""


class UsageError(Exception):
    """A user's mistake: reported as one line, exit status 2."""


USER_ERRORS: tuple[type[Exception], ...] = (
    UsageError, BoardFileError, ScenarioError, JobFileError, TraceError,
)
"""The exceptions ``main`` reports as a user's mistake (one line, `EXIT_USAGE`)."""


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose mistakes raise `UsageError` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def report_error(message: str) -> int:
    """Print ``message`` as a user's mistake, one line on stderr; return `EXIT_USAGE`."""
    print(f"printer-emu: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def parse_speed(text: str) -> float | None:
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


def trace_path(text: str) -> Path:
    """``--trace`` argument type: a path ending in .vcd or .jsonl in a directory that
    exists, not something other than a regular file (argparse turns the error into one
    usage line)."""
    path = Path(text)
    if path.suffix.lower() not in TRACE_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"a trace file ends in .vcd or .jsonl, got {text!r}")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"no directory {str(parent)!r} for {text!r}")
    if path.exists() and not path.is_file():  # a FIFO would block, a device never fill
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a regular file (a trace is written to one)")
    return path


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--trace FILE`` (``.vcd`` or ``.jsonl``) to a subcommand's parser."""
    parser.add_argument(
        "--trace", type=trace_path, metavar="FILE", default=None,
        help="record the run: FILE.vcd (waveforms for GTKWave/Surfer) or FILE.jsonl "
             "(one event a line)")


def scenario_of(args: argparse.Namespace) -> Scenario | None:
    """The ``--scenario`` file, loaded (`ScenarioError` names what is wrong and where)."""
    return load_scenario(args.scenario) if args.scenario else None


def seed_of(args: argparse.Namespace, scenario: Scenario | None) -> int:
    """``--seed``, else the scenario's, else 0."""
    if args.seed is not None:
        if not 0 <= args.seed <= MAX_SEED:
            raise UsageError(f"--seed: {args.seed} is out of range [0, {MAX_SEED}]")
        return int(args.seed)
    return scenario.seed if scenario is not None and scenario.seed is not None else 0


def jobs_for(args: argparse.Namespace, scenario: Scenario | None) -> list[JobSpec]:
    """The run's jobs: the scenario's, then ``--job`` files, then the demo job (when
    ``--pages``/``--coverage`` ask for it or nothing else was given). Every job file is
    read now, so a bad one fails before the run starts, with its name."""
    jobs: list[JobSpec] = list(scenario.jobs) if scenario else []
    for path in args.job:
        read_job_file(path)
        jobs.append(JobSpec(file=Path(path)))
    if args.pages is not None or args.coverage is not None or not jobs:
        pages = DEFAULT_PAGES if args.pages is None else args.pages
        coverage = DEFAULT_COVERAGE_PCT if args.coverage is None else args.coverage
        if pages < 1:
            raise UsageError(f"--pages: expected at least 1, got {pages}")
        if pages > MAX_PAGES:
            raise UsageError(f"--pages: {pages} is out of range [1, {MAX_PAGES}]")
        if not 0.0 <= coverage <= 100.0:
            raise UsageError(f"--coverage: expected a percentage in [0, 100], got {coverage:g}")
        jobs.append(JobSpec(pages=pages, coverage_pct=coverage))
    for spec in jobs:
        if spec.file is not None:
            read_job_file(spec.file)
    return jobs


def execute(run: PrintRun, args: argparse.Namespace,
            amend: RecordAmendment | None = None) -> int:
    """Run ``run`` to its end and show it as ``--json``/``--quiet``/neither ask (a live
    progress display and a summary); return `EXIT_OK`, `EXIT_RUN_INCOMPLETE`, or
    `EXIT_INTERRUPTED` after Ctrl-C (the record then says ``interrupted``, with the
    pages delivered until then). ``amend`` completes the ``--json`` record."""
    console = Console(stderr=False, highlight=False)
    try:
        if args.json or args.quiet:
            run.run()
        else:
            from emulator.cli._console import RunConsole

            view = RunConsole(run, console, live=console.is_terminal)
            try:
                run.run(on_progress=view.progress)
            finally:
                view.finish()
    except KeyboardInterrupt:
        print("printer-emu: interrupted", file=sys.stderr)
    result = run.result()
    if args.json:
        sys.stdout.write(json.dumps(result if amend is None else amend(result)) + "\n")
    elif args.quiet:
        print(f"{result['outcome']}: {result['pages_delivered']} of {run.pages_total} pages "
              f"in {result['sim_time_s']:.3f} s simulated on {result['board']}")
    if run.outcome is Outcome.INTERRUPTED:
        return EXIT_INTERRUPTED
    return EXIT_OK if run.outcome is Outcome.COMPLETED else EXIT_RUN_INCOMPLETE
