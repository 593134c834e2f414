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
recovery), so a first image can be flashed. A port shared with the device's own
protocol tells SMP lines from its frames with `hal.serial.LineDemux`. ``on_boot`` (a
constructor hook) is called after every boot with its `BootResult`, e.g. to send a
fresh HELLO. The board reported to SMP clients (OS info ``i``) defaults to the
policy's ``board``.

Standalone loop (tests, benchmarks, the SIGKILL test's subprocess):
`FlashDevice.serve` runs the SMP server on a pty/socket file descriptor or a
pyserial port until a `threading.Event` is set, rebooting on SMP reset, optionally
pacing bytes at a UART's rate. ``python -m emulator.flash`` runs it on a pty
(`emulator.flash.__main__`).

A power-on never loses a valid image (see `emulator.flash._bootloader`); RAM state (an
unfinished upload's session) is lost at every boot, as on a real device.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from types import TracebackType
from typing import TypeAlias

import serial

from emulator.flash._bootloader import Bootloader, BootResult, RunningImage
from emulator.flash._smp_serial import DEFAULT_BUF_SIZE_BYTES
from emulator.flash._smp_server import DEFAULT_BUF_COUNT, DeviceIdentity, SmpServer
from emulator.flash._storage import FlashLayout, FlashStorage
from emulator.flash._verify import BootPolicy, verify_image
from hal.serial import LineDemux, LinePacer

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
        # Console text before an SMP line is noise up to its \\n, so SMP is found after it.
        demux = LineDemux()
        # One pacer for both directions: the line is half-duplex here, as it is used.
        pacer = LinePacer(line_rate_bytes_per_s) if line_rate_bytes_per_s else None
        budget = pacer.bytes_in(_PACED_SLICE_S) if pacer is not None else _READ_CHUNK_BYTES
        while not stop.is_set():
            data = _read(port, budget, poll_interval_s)
            if data is None:
                return  # the other end closed a socket: this connection is over
            if not data:
                continue
            self.bytes_received += len(data)
            if pacer is not None:
                pacer.cross(len(data))
            for is_smp, piece in demux.feed(data):
                if not is_smp:
                    continue  # console noise or another protocol: not ours here
                reply = self.handle_smp_line(piece)
                if reply:
                    if pacer is not None:
                        pacer.cross(len(reply))
                    _write(port, reply)
                    self.bytes_sent += len(reply)
                if self.reset_requested:
                    self.boot()
                    demux.reset()
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
