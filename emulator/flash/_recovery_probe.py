"""Is the device on a port in MCUboot's serial recovery? The question a host asks when no
printer board answered its HELLO: a device without a bootable image (a flash made for
another board, a keyed board not flashed yet) speaks SMP only, and the user needs to be
told to flash it, not that nothing is there.

`serial_recovery_message` sends one SMP image state read on the port and reads the
answer for a bounded time. A device that answers SMP and reports no running image is in
serial recovery; anything else (no answer, garbage, an image that runs) is not judged
here (None). The port must be free: call it after the host has closed its own.
"""

from __future__ import annotations

import contextlib
import time

import serial
from smp import image_management as smpimg
from smp.exceptions import SMPException

from emulator.flash._smp_serial import SmpFrameDecoder, encode_smp_frame

_READ_BYTES = 4096
_MAX_ANSWER_BYTES = 65536
"""What is read at most while waiting: a chatty device cannot keep the probe reading."""


def running_image_of(port: str, *, timeout_s: float = 1.0,
                     baud: int | None = None) -> tuple[bool, str] | None:
    """Ask the device on ``port`` for its image slots over SMP: ``(True, version)`` when
    an image runs, ``(False, "")`` when it answers with none running, None when no SMP
    answer came within ``timeout_s`` (or the port cannot be opened)."""
    request = bytes(smpimg.ImageStatesReadRequest())
    try:
        line = serial.serial_for_url(port, baudrate=baud or 115200, timeout=0)
    except (serial.SerialException, OSError, ValueError):
        return None
    decoder = SmpFrameDecoder()
    try:
        line.write(encode_smp_frame(request))
        deadline = time.monotonic() + timeout_s
        pending = b""
        read = 0
        while time.monotonic() < deadline and read < _MAX_ANSWER_BYTES:
            chunk = line.read(_READ_BYTES)
            if not chunk:
                time.sleep(0.01)
                continue
            read += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for text in lines:
                start = text.find(b"\x06\x09")
                start = start if start >= 0 else text.find(b"\x04\x14")
                if start < 0:
                    continue  # not SMP: the link's frames, console noise
                packet = decoder.feed_line(text[start:] + b"\n")
                if packet is None:
                    continue
                try:
                    answer = smpimg.ImageStatesReadResponse.loads(packet)
                except (SMPException, ValueError):
                    continue
                running = [s for s in answer.images if s.active]
                return (True, running[0].version) if running else (False, "")
    except (serial.SerialException, OSError):
        return None
    finally:
        with contextlib.suppress(serial.SerialException, OSError):
            line.close()
    return None


def serial_recovery_message(port: str, *, timeout_s: float = 1.0,
                            baud: int | None = None) -> str | None:
    """One line for a user when the device on ``port`` is in serial recovery (see the
    module docstring), else None."""
    state = running_image_of(port, timeout_s=timeout_s, baud=baud)
    if state is None or state[0]:
        return None
    return (f"the device on {port} is in serial recovery (MCUboot: no bootable image, SMP "
            f"only): flash an image with 'printer-emu flash --port {port} IMAGE'")
