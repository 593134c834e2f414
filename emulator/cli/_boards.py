"""``printer-emu boards``: the shipped boards, one a line, with their descriptions."""

from __future__ import annotations

import argparse

from boards import available_boards, load_board
from emulator.cli._common import EXIT_OK, Subcommands


def register(subcommands: Subcommands) -> None:
    """Add ``printer-emu boards``; its handler returns the exit status."""
    p = subcommands.add_parser("boards", help="list the shipped boards")
    p.set_defaults(handler=_cmd_boards)


def _cmd_boards(args: argparse.Namespace) -> int:
    for name in available_boards():
        config = load_board(name)
        print(f"{name:12} {config.board.description}")
    return EXIT_OK
