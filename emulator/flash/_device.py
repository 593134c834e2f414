"""The flashable side of the virtual device: bootloader + SMP server on a port.

`FlashDevice` owns the flash file, boots it the way MCUboot would and answers SMP
requests. It is usable two ways.

Integration API (what ``printer-emu serve`` calls; one thread, not thread-safe)::

    device = FlashDevice(flash_path, policy=BootPolicy(trusted_keys_pem=..., vendor=..., board=...))
    device.provision(image_bytes)                   # optional factory image, before the first boot
    result: BootResult = device.boot()              # power-on; .image is None: no valid image
    device.running_image() -> RunningImage | None   # version / sha256 / confirmed, for HELLO
    reply: bytes = device.handle_smp_line(line)     # one complete SMP line (06 09 / 04 14 .. \\n)
    port.write(reply)                               # write the reply first, then:
    if device.reset_requested:                      # an SMP reset was answered
        result = device.boot()                      # reboot: new boot nonce in HELLO
    device.close()

With no valid image the device still serves SMP (like MCUboot's serial
recovery), so a first image can be flashed. ``serve`` keeps its own demux;
`emulator.flash._smp_server.SerialDemux` tells SMP lines from COBS frames if it wants
it. ``on_boot`` (a constructor hook) is called after every boot with its
`BootResult`, e.g. to send a fresh HELLO. The board reported to SMP clients
(OS info ``i``) defaults to the policy's ``board``.

Standalone loop (tests, benchmarks, the SIGKILL test's subprocess):
`FlashDevice.serve` runs the SMP server on a pty/socket file descriptor or a
pyserial port until a `threading.Event` is set, rebooting on SMP reset, optionally
pacing bytes at a UART's rate. ``python -m emulator.flash._device --flash FILE``
opens a pty, prints ``PORT <path>`` and one ``BOOT <json>`` line per boot on
stdout, and serves until killed.

A power-on never loses a valid image (see `emulator.flash._mcuboot`); RAM state (an
unfinished upload's session) is lost at every boot, as on a real device.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import signal
import sys
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import TypeAlias

import serial

from emulator.flash._mcuboot import (
    Bootloader,
    BootPolicy,
    BootResult,
    RunningImage,
    verify_image,
)
from emulator.flash._smp_server import (
    DEFAULT_BUF_COUNT,
    DEFAULT_BUF_SIZE_BYTES,
    DeviceIdentity,
    SerialDemux,
    SmpServer,
)
from emulator.flash._storage import FlashLayout, FlashStorage

Port: TypeAlias = "int | serial.SerialBase"
"""A file descriptor (pty master, socket) or an open pyserial port."""

_READ_CHUNK_BYTES = 65536
_PACED_SLICE_S = 0.01  # read at most this much line time at once when pacing


class FlashDevice:
    """A device with an emulated flash, an MCUboot-like bootloader and an SMP server."""

    def __init__(
        self,
        flash_path: str | os.PathLike[str],
        *,
        layout: FlashLayout | None = None,
        policy: BootPolicy | None = None,
        identity: DeviceIdentity | None = None,
        buf_size_bytes: int = DEFAULT_BUF_SIZE_BYTES,
        buf_count: int = DEFAULT_BUF_COUNT,
        durable: bool = True,
        storage: FlashStorage | None = None,
        on_boot: Callable[[BootResult], None] | None = None,
        boot_banner: bool = False,
    ) -> None:
        """Open (or create, erased) the flash file; call `boot` before serving.

        ``storage`` replaces the file storage (tests pass one with fault injection).
        ``boot_banner`` makes `serve` print a Zephyr-like console line after each boot,
        which SMP clients must skip (a real device does it).
        """
        self.storage = (
            storage
            if storage is not None
            else FlashStorage(flash_path, layout or FlashLayout(), durable=durable)
        )
        self.bootloader = Bootloader(self.storage, policy)
        if identity is None:
            # The board the policy checks images against is the one the device reports.
            board = self.bootloader.policy.board
            identity = DeviceIdentity(board=board) if board else DeviceIdentity()
        self.identity = identity
        self.buf_size_bytes = buf_size_bytes
        self.buf_count = buf_count
        self.on_boot = on_boot
        self.boot_banner = boot_banner
        self.last_boot: BootResult | None = None
        self.boot_count = 0
        # Bytes `serve` moved, for benchmarks and diagnostics.
        self.bytes_received = 0
        self.bytes_sent = 0
        self._server: SmpServer | None = None

    # -- integration API ------------------------------------------------------------------

    def boot(self) -> BootResult:
        """Power-on or reset: run the bootloader, start a fresh SMP server (RAM is lost)."""
        result = self.bootloader.boot()
        self._server = SmpServer(
            self.bootloader,
            identity=self.identity,
            buf_size_bytes=self.buf_size_bytes,
            buf_count=self.buf_count,
        )
        self.last_boot = result
        self.boot_count += 1
        if self.on_boot is not None:
            self.on_boot(result)
        return result

    def handle_smp_line(self, line: bytes) -> bytes:
        """Serve one SMP line; return the framed reply (``b""`` until a request completes)."""
        return self._require_server().feed(line)

    @property
    def reset_requested(self) -> bool:
        """True once an SMP reset was answered: write the reply, then call `boot`."""
        return self._server is not None and self._server.reset_requested

    def running_image(self) -> RunningImage | None:
        """The image the last boot started, with its current confirmed state."""
        return self.bootloader.running_image()

    @property
    def smp_server(self) -> SmpServer:
        return self._require_server()

    def provision(self, image: bytes) -> None:
        """Factory-program ``image`` into the primary slot, as a debugger would.

        For a device that is off (before `boot`); the image must pass the policy.
        """
        if self._server is not None:
            raise RuntimeError("provision() is factory programming: do it before boot()")
        layout = self.storage.layout
        verify_image(image, self.bootloader.policy, layout.image_capacity_bytes)
        self.storage.erase(layout.slot_offset(0), layout.slot_size_bytes)
        self.storage.write(layout.slot_offset(0), image)
        self.storage.barrier()

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> FlashDevice:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- standalone loop ------------------------------------------------------------------

    def serve(
        self,
        port: Port,
        stop: threading.Event,
        *,
        line_rate_bytes_per_s: float | None = None,
        poll_interval_s: float = 0.02,
    ) -> None:
        """Serve SMP on ``port`` until ``stop`` is set; boots first if never booted.

        ``line_rate_bytes_per_s`` paces reading and writing like a UART (115200 baud
        moves 11,520 bytes/s); None moves bytes as fast as the port allows. A pty
        whose client side is closed is waited on; a socket closed by its peer (end
        of stream) ends the call, so a TCP server can accept the next connection.
        """
        if self._server is None:
            self.boot()
            self._banner(port, line_rate_bytes_per_s)
        demux = SerialDemux(newline_is_boundary=True)
        line_free_at = time.monotonic()  # when the paced line can take the next byte
        while not stop.is_set():
            if line_rate_bytes_per_s:
                budget = max(1, int(line_rate_bytes_per_s * _PACED_SLICE_S))
            else:
                budget = _READ_CHUNK_BYTES
            data = _read(port, budget, poll_interval_s)
            if data is None:
                return  # the other end closed a socket: this connection is over
            if not data:
                continue
            self.bytes_received += len(data)
            if line_rate_bytes_per_s:
                line_free_at = _pace(line_free_at, len(data), line_rate_bytes_per_s)
            for segment in demux.feed(data):
                if not segment.smp:
                    continue  # console noise or another protocol: not ours here
                reply = self.handle_smp_line(segment.data)
                if reply:
                    if line_rate_bytes_per_s:
                        line_free_at = _pace(line_free_at, len(reply), line_rate_bytes_per_s)
                    _write(port, reply)
                    self.bytes_sent += len(reply)
                if self.reset_requested:
                    self.boot()
                    demux = SerialDemux(newline_is_boundary=True)
                    self._banner(port, line_rate_bytes_per_s)

    def _banner(self, port: Port, line_rate_bytes_per_s: float | None) -> None:
        if not self.boot_banner:
            return
        image = self.running_image()
        version = str(image.version) if image is not None else "none"
        text = f"*** Booting printer-emu {self.identity.board} image {version} ***\r\n"
        _write(port, text.encode())

    def _require_server(self) -> SmpServer:
        if self._server is None:
            raise RuntimeError("the device has not booted: call boot() first")
        return self._server


def _pace(line_free_at: float, size_bytes: int, rate_bytes_per_s: float) -> float:
    """Sleep until ``size_bytes`` have crossed the line; return when the line is free."""
    now = time.monotonic()
    free_at = max(line_free_at, now) + size_bytes / rate_bytes_per_s
    delay = free_at - now
    if delay > 0:
        time.sleep(delay)
    return free_at


def _read(port: Port, max_bytes: int, timeout_s: float) -> bytes | None:
    """Bytes available within ``timeout_s`` (maybe none); None at end of stream."""
    if isinstance(port, int):
        try:
            ready, _, _ = select.select([port], [], [], timeout_s)
            if not ready:
                return b""
            return os.read(port, max_bytes) or None
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EAGAIN, errno.EINTR):
                # EIO: the pty's other side is closed right now; wait for a client.
                time.sleep(timeout_s)
                return b""
            raise
    port.timeout = timeout_s
    waiting = port.in_waiting
    data: bytes = port.read(min(max_bytes, waiting) if waiting else 1)
    return data


def _write(port: Port, data: bytes) -> None:
    if isinstance(port, int):
        view = memoryview(data)
        while view:
            try:
                written = os.write(port, view)
            except BlockingIOError:
                select.select([], [port], [], 1.0)
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return  # nobody listens: a UART would drop the bytes too
                raise
            view = view[written:]
        return
    port.write(data)


def open_pty() -> tuple[int, int, str]:
    """A raw pty: (device-side master fd, client-side slave fd, slave path).

    The slave starts in cooked mode (echo, CR/LF translation), which would echo
    SMP replies back into the device; both ends are set raw. Keep the slave fd
    open while serving: with no slave open, reads on the master fail with EIO.
    """
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


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
    """Run a virtual flashable device on a new pty (for tests and manual use)."""
    parser = argparse.ArgumentParser(prog="python -m emulator.flash._device")
    parser.add_argument("--flash", required=True, type=Path, help="flash file (created erased)")
    parser.add_argument("--provision", type=Path, help="factory-program this image first")
    parser.add_argument("--trusted-key", action="append", default=[], type=Path)
    parser.add_argument("--vendor")
    parser.add_argument("--board")
    parser.add_argument("--slot-sectors", type=int, default=FlashLayout().slot_sectors)
    parser.add_argument("--op-delay-ms", type=float, default=0.0, help="slow flash operations")
    parser.add_argument("--baud", type=int, help="pace bytes like a UART at this baud rate")
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
