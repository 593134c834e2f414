"""``python -m emulator.flash --flash FILE``: a flashable device on a new pty.

For tests (the SIGKILL test's subprocess) and manual use with any SMP client. It
opens a raw pty, prints ``PORT <path>`` and one ``BOOT <json>`` line per boot
(version, sha256, confirmed, swap, resumed, notes) on stdout, flushed, and serves
SMP (`FlashDevice.serve`) until SIGTERM or SIGINT. ``--op-delay-ms`` slows every
flash operation, so a test can kill the process in the middle of a swap.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from emulator.flash import (
    BootPolicy,
    BootResult,
    FlashDevice,
    FlashLayout,
    FlashStorage,
    open_pty,
)


def _boot_json(result: BootResult) -> str:
    image = result.image
    return json.dumps(
        {
            "version": str(image.version) if image else None,
            "sha256": image.sha256.hex() if image else None,
            "confirmed": image.confirmed if image else None,
            "swap": result.swap.name,
            "resumed": result.resumed,
            "notes": list(result.notes),
        }
    )


def main(argv: list[str] | None = None) -> int:
    """Run a flashable device on a new pty until a signal stops it; returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m emulator.flash",
        description="A flashable device (MCUboot + SMP) on a new pty: prints PORT <path>, "
                    "then BOOT <json> after every boot, and serves until SIGTERM/SIGINT.")
    parser.add_argument("--flash", required=True, type=Path, metavar="FILE",
                        help="flash file (created erased)")
    parser.add_argument("--provision", type=Path, metavar="IMAGE",
                        help="factory-program this image first")
    parser.add_argument("--trusted-key", action="append", default=[], type=Path, metavar="PEM",
                        help="boot only images signed with this key (repeatable)")
    parser.add_argument("--vendor", help="the device's vendor (imgtool --vid); with --board")
    parser.add_argument("--board", help="the device's board (imgtool --cid); with --vendor")
    parser.add_argument("--slot-sectors", type=int, default=FlashLayout().slot_sectors,
                        metavar="N", help="sectors per image slot, trailer included")
    parser.add_argument("--op-delay-ms", type=float, default=0.0, metavar="MS",
                        help="slow every flash operation down")
    parser.add_argument("--baud", type=int, metavar="N",
                        help="pace bytes like a UART at this baud rate")
    args = parser.parse_args(argv)

    policy = BootPolicy(
        trusted_keys_pem=tuple(path.read_bytes() for path in args.trusted_key),
        vendor=args.vendor,
        board=args.board,
    )
    layout = FlashLayout(slot_sectors=args.slot_sectors)
    storage = FlashStorage(args.flash, layout, op_delay_s=args.op_delay_ms / 1000)

    def report(result: BootResult) -> None:
        print(f"BOOT {_boot_json(result)}", flush=True)

    device = FlashDevice(
        args.flash,
        policy=policy,
        storage=storage,
        on_boot=report,
        boot_banner=True,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    master, slave, path = open_pty()
    try:
        if args.provision is not None:
            device.provision(args.provision.read_bytes())
        print(f"PORT {path}", flush=True)
        rate = args.baud / 10 if args.baud else None  # 8N1: ten bits per byte
        device.serve(master, stop, line_rate_bytes_per_s=rate)
    finally:
        device.close()
        os.close(master)
        os.close(slave)
    return 0


if __name__ == "__main__":
    sys.exit(main())
