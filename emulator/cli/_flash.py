"""``printer-emu flash``: flash an MCUboot image over SMP, to the virtual device or a board.

Built on ``smpclient`` (asyncio) and its base64 serial transport, so the same
command flashes a Zephyr/MCUboot board with mcumgr over its UART and the virtual
device. Usage::

    printer-emu flash --port PORT IMAGE [--test | --confirm] [--no-reset]
    printer-emu flash --port PORT --list
    printer-emu flash --port PORT --confirm-running
    printer-emu flash --port PORT --reset

``--reset`` alone resets the device and reports what runs after it (an image on test
and not confirmed rolls back: a rollback test needs no other tool); with an IMAGE it is
the default. A device that runs no image (MCUboot's serial recovery) is said so by
``--list`` and ``--reset``.

PORT is a device path or a pyserial URL (`emulator.cli._smp_session`); what a flash
does, step by step, is `emulator.cli._flash_client.flash_image`'s. The command parses
its own arguments (``main`` hands them over), so its mistakes show its usage; every
failure is one line on stderr and exit status 2, never a traceback. The client (and
smpclient, half a second to import) is loaded only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

from emulator.cli._common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Subcommands

_QUIET_LOGGERS = ("smpclient", "smp")


def register(subcommands: Subcommands) -> None:
    """List ``flash`` in ``printer-emu --help``; ``main`` hands its arguments to
    `flash_main`, which parses them."""
    subcommands.add_parser("flash", add_help=False,
                           help="flash an MCUboot image over SMP (printer-emu flash --help)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printer-emu flash",
        description=(
            "Flash an MCUboot image over SMP (mcumgr) to the virtual device or a "
            "Zephyr/MCUboot board. PORT is a device path or a pyserial URL "
            "(socket://host:port, rfc2217://host:port)."
        ),
    )
    parser.add_argument("--port", required=True, help="serial port or pyserial URL")
    parser.add_argument("image", nargs="?", type=Path, help="MCUboot image (.bin or .hex)")
    marking = parser.add_mutually_exclusive_group()
    marking.add_argument(
        "--test",
        dest="mode",
        action="store_const",
        const="test",
        help="run the image once; it rolls back at the next reset unless confirmed (default)",
    )
    marking.add_argument(
        "--confirm",
        dest="mode",
        action="store_const",
        const="confirm",
        help="make the image permanent at once",
    )
    resetting = parser.add_mutually_exclusive_group()
    resetting.add_argument(
        "--reset", action="store_true",
        help="reset the device (after the upload, the default; or alone: a rollback test)",
    )
    resetting.add_argument("--no-reset", action="store_true",
                           help="do not reset after marking")
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument("--list", action="store_true", help="show the slots and their states")
    actions.add_argument(
        "--confirm-running", action="store_true", help="confirm the image that runs now"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument(
        "--reset-timeout", type=float, default=30.0, help="seconds to wait for the reboot"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log the SMP traffic")
    return parser


class _ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, nothing otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self._live:
            return
        rate = done / max(time.monotonic() - self._started, 1e-6) / 1000
        percent = 100 * done // max(total, 1)
        self._stream.write(f"\ruploading {percent:3d}%  {done}/{total} bytes  {rate:.1f} kB/s")
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


def flash_main(argv: list[str]) -> int:
    """The ``flash`` subcommand: 0 on success, 2 on any user-facing failure."""
    from emulator.cli._flash_client import (
        confirm_running,
        flash_image,
        list_slots,
        recovery_note,
        reset_device,
    )
    from emulator.cli._smp_session import FlashCommandError
    from hal.serial import PortUnavailable, lock_port

    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # argparse: usage error (2) or --help (0)
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE
    actions = sum((args.image is not None, args.list, args.confirm_running))
    reset_alone = args.reset and args.image is None
    reset_misplaced = args.reset and (args.list or args.confirm_running)
    if reset_misplaced or (actions != 1 and not reset_alone):
        parser.print_usage(sys.stderr)
        print(
            "printer-emu flash: error: give an IMAGE, --list, --confirm-running or --reset"
            + (" (--reset goes alone or with an IMAGE)" if reset_misplaced else ""),
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        # One host per device: the lock `run --port` and the pytest plugin take too, held
        # for the whole command (upload, reset and the wait for the new image).
        device_lock = lock_port(args.port, holder="printer-emu flash")
    except PortUnavailable as exc:
        print(f"printer-emu flash: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    saved_levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    if not args.verbose:
        # smpclient logs timeouts and tracebacks at ERROR; the user gets one line instead.
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        if args.list or reset_alone:
            if reset_alone:
                slots = asyncio.run(reset_device(args.port, timeout_s=args.timeout,
                                                 reset_timeout_s=args.reset_timeout))
                print("reset: the device is back")
            else:
                slots = asyncio.run(list_slots(args.port, timeout_s=args.timeout))
            for slot in slots:
                print(slot.describe())
            note = recovery_note(args.port, slots)
            if note is not None:
                print(note)
        elif args.confirm_running:
            slot = asyncio.run(confirm_running(args.port, timeout_s=args.timeout))
            print(f"confirmed {slot.version} (sha256 {slot.sha256.hex()[:16]})")
        else:
            asyncio.run(
                flash_image(
                    args.port,
                    args.image,
                    mode=args.mode or "test",
                    reset=not args.no_reset,
                    timeout_s=args.timeout,
                    reset_timeout_s=args.reset_timeout,
                    progress=_ProgressLine(sys.stderr),
                )
            )
    except FlashCommandError as exc:
        print(f"printer-emu flash: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("printer-emu flash: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        device_lock.release()
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
    return EXIT_OK
