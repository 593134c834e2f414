"""``printer-emu``, the command line: one module per command (``run``, ``serve``,
``flash``, ``plot``, ``diagram``, ``boards``), a parser that dispatches to them, and
what they share (exit statuses, usage errors, job specs).

`main` is the console script (``printer-emu``, ``python -m emulator``); it returns
the exit status: `EXIT_OK`, `EXIT_RUN_INCOMPLETE` (a run that did not finish its jobs)
or `EXIT_USAGE` (a user's mistake, one line on stderr).
"""

from emulator.cli._common import (
    EXIT_OK,
    EXIT_RUN_INCOMPLETE,
    EXIT_USAGE,
    CommandParser,
    UsageError,
    add_trace_option,
)
from emulator.cli._main import build_parser, main

__all__ = [
    "EXIT_OK",
    "EXIT_RUN_INCOMPLETE",
    "EXIT_USAGE",
    "CommandParser",
    "UsageError",
    "add_trace_option",
    "build_parser",
    "main",
]
