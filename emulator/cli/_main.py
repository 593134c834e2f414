"""``printer-emu``: the command line, its parser and its dispatch.

Every user mistake (an unknown board, a bad scenario, an unreadable job file, a port
that does not exist) is one line on stderr naming what and where, and exit status 2 —
never a traceback. Exit status 1 means the run itself did not finish its jobs (a job
failed, or the printer was left waiting on its operator).

Each command is a module with a ``register(subcommands)`` that adds its parser and
sets its handler (``args.handler(args)`` returns the exit status): `_run` (with
`_run_port` for ``--port``), `_serve`, `_flash`, `_plot`, `_diagram`, `_boards`;
what they share is `_common`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from emulator.cli import _boards, _diagram, _flash, _plot, _run, _serve
from emulator.cli._common import EXIT_INTERRUPTED, USER_ERRORS, CommandParser, report_error


def build_parser() -> argparse.ArgumentParser:
    """The ``printer-emu`` parser, every command registered."""
    parser = CommandParser(prog="printer-emu",
                           description="A laser printer's firmware on an emulated or serial "
                                       "board.")
    parser.add_argument("--version", action="version",
                        version=f"printer-emu {metadata.version('printer-emu')}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _run.register(sub)
    _boards.register(sub)
    _serve.register(sub)
    _diagram.register(sub)
    _plot.register(sub)
    _flash.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. Returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["flash"]:
        return _flash.flash_main(arguments[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except USER_ERRORS as e:
        return report_error(str(e))
    except KeyboardInterrupt:
        print("printer-emu: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
