"""``printer-emu serve``: the virtual device on a pty, a TCP port or RFC 2217.

Usage::

    printer-emu serve [--board NAME] [--pty | --tcp [HOST:]PORT | --rfc2217 [HOST:]PORT]
                      [--bind ADDR] [--baud N] [--trace FILE] [--flash FILE] [--no-sim]
                      [--seed N] [--verbose]

The first line on stdout is where a host connects (the pty's path, ``socket://...`` or
``rfc2217://...``); the device serves until SIGINT or SIGTERM (exit status 0). What it
does is :func:`emulator.device.serve`'s; this module turns the command line into
:class:`~emulator.device.ServeOptions`. A user's mistake (an unknown board, an address in
use, a bad ``--baud``) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emulator.cli._common import Subcommands, UsageError, report_error
from emulator.device import DEFAULT_BOARD, DEFAULT_HOST, ServeError, ServeOptions, serve

_DESCRIPTION = (
    "Run an emulated board behind the serial board protocol on a pty, a TCP port or "
    "RFC 2217; the first line on stdout says where to connect."
)
_MAX_BAUD = 100_000_000


def register(subcommands: Subcommands) -> None:
    """Add ``printer-emu serve``; its handler returns the exit status."""
    p = subcommands.add_parser(
        "serve",
        help="serve an emulated board as a serial device (pty, TCP, RFC 2217)",
        description=_DESCRIPTION,
    )
    add_arguments(p)
    p.set_defaults(handler=_cmd_serve)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``serve`` options, on any parser."""
    p.add_argument(
        "--board", default=DEFAULT_BOARD, help=f"board name or TOML path (default {DEFAULT_BOARD})"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--pty", action="store_true", help="serve on a new pty and print its path (the default)"
    )
    where.add_argument(
        "--tcp",
        metavar="[HOST:]PORT",
        help="serve on a TCP port (0: any free port) and print socket://...",
    )
    where.add_argument(
        "--rfc2217",
        metavar="[HOST:]PORT",
        help="serve RFC 2217 on a TCP port and print rfc2217://...",
    )
    p.add_argument("--bind", metavar="ADDR", help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument(
        "--baud",
        type=int,
        metavar="N",
        help="pace bytes like a UART at N baud (N/10 bytes a second, both ways)",
    )
    p.add_argument("--trace", type=Path, metavar="FILE", help="trace the board (.vcd, .jsonl)")
    p.add_argument(
        "--flash",
        type=Path,
        metavar="FILE",
        help="MCUboot flash file (created erased); enables SMP on the port",
    )
    p.add_argument(
        "--no-sim",
        dest="sim",
        action="store_false",
        help="do not offer the simulation commands (as a real device)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the board's random draws")
    p.add_argument("-v", "--verbose", action="store_true", help="log sessions on stderr")


def options_from(args: argparse.Namespace) -> ServeOptions:
    """Check the parsed arguments; raises :class:`UsageError`."""
    transport, address = "pty", None
    if args.tcp is not None:
        transport, address = "tcp", _parse_address(args.tcp, "--tcp")
    elif args.rfc2217 is not None:
        transport, address = "rfc2217", _parse_address(args.rfc2217, "--rfc2217")
    host = args.bind or DEFAULT_HOST
    port = 0
    if address is not None:
        given, port = address
        if given is not None:
            if args.bind is not None and args.bind != given:
                raise UsageError(f"--bind {args.bind} contradicts --{transport} {given}:{port}")
            host = given
    elif args.bind is not None:
        raise UsageError("--bind needs --tcp or --rfc2217")
    if args.baud is not None and not 0 < args.baud <= _MAX_BAUD:
        raise UsageError(f"--baud: expected a rate in 1..{_MAX_BAUD}, got {args.baud}")
    return ServeOptions(
        board=args.board,
        transport=transport,
        host=host,
        port=port,
        baud=args.baud,
        trace=args.trace,
        flash=args.flash,
        sim=args.sim,
        seed=args.seed,
        verbose=args.verbose,
    )


def _parse_address(text: str, what: str) -> tuple[str | None, int]:
    """``PORT``, ``HOST:PORT`` or ``[V6HOST]:PORT``."""
    host: str | None = None
    port_text = text
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or not text[close + 1 :].startswith(":"):
            raise UsageError(f"{what}: expected [HOST]:PORT, got {text!r}")
        host, port_text = text[1:close], text[close + 2 :]
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"{what}: expected [HOST:]PORT, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"{what}: port must be in 0..65535, got {port}")
    return (host or None), port


def _cmd_serve(args: argparse.Namespace) -> int:
    options = options_from(args)
    try:
        return serve(options)
    except ServeError as exc:
        return report_error(str(exc))
