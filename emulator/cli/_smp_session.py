"""An SMP session with a device, for the host's flash client: smpclient's base64 serial
transport, and every library failure turned into a one-line `FlashCommandError`.

Ports: smpclient's serial transport opens ``serial.Serial(port=...)``, i.e. a device
path only (``/dev/ttyACM0``, ``COM3``, a pty such as ``/dev/pts/5``). pyserial URLs
(``socket://host:port``, ``rfc2217://host:port``, ``spy://...``) are not understood by
smpclient; this module adds them by backing the same transport with
``serial.serial_for_url`` (`_UrlSerialTransport`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import serial
from smp import error as smperr
from smp import image_management as smpimg
from smp.exceptions import SMPException
from smpclient import SMPClient
from smpclient.exceptions import SMPBadSequence, SMPValidationException
from smpclient.generics import error, error_v1, error_v2
from smpclient.transport import SMPTransportDisconnected
from smpclient.transport.serial import SMPSerialTransport

RETRY_INTERVAL_S = 0.2
"""How long to wait before asking again: to open a port, or after a reset."""


class FlashCommandError(Exception):
    """A failure to report to the user in one line (the CLI exits with status 2)."""


class _UrlPort:
    """The subset of a pyserial port smpclient's transport uses, over ``serial_for_url``.

    URL handlers (socket, rfc2217) lack ``out_waiting`` and a useful ``in_waiting``;
    writes are synchronous, so there is never anything waiting to go out.
    """

    out_waiting = 0

    def __init__(self, port: Any) -> None:
        self._port = port
        self.port: str = port.portstr
        tcp = getattr(port, "_socket", None)  # pyserial's socket:// handler keeps it there
        if isinstance(tcp, socket.socket):
            # The transport writes a frame line by line; with Nagle's algorithm each
            # request then waits for the peer's delayed ACK (~40 ms).
            tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> int:
        written: int = self._port.write(data)
        return written

    def read_all(self) -> bytes:
        data: bytes = self._port.read(65536)  # opened with timeout=0: what is there
        return data

    def reset_input_buffer(self) -> None:
        self._port.reset_input_buffer()

    def close(self) -> None:
        self._port.close()


class _UrlSerialTransport(SMPSerialTransport):
    """smpclient's serial transport over a pyserial URL (``socket://``, ``rfc2217://``)."""

    async def connect(self, address: str, timeout_s: float) -> None:
        self._reset_state()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                port = serial.serial_for_url(address, timeout=0)
                break
            except (serial.SerialException, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"cannot open {address}: {exc}") from None
                await asyncio.sleep(RETRY_INTERVAL_S)
        # smpclient declares _conn Final and documents overriding connect() to back the
        # transport with another byte pipe; this is the one place that swaps it.
        object.__setattr__(self, "_conn", _UrlPort(port))


def is_url(port: str) -> bool:
    """A pyserial URL (``socket://``, ``rfc2217://``), not a device path."""
    return "://" in port


def _transport(port: str) -> SMPSerialTransport:
    return _UrlSerialTransport() if is_url(port) else SMPSerialTransport()


@asynccontextmanager
async def connected(port: str, timeout_s: float) -> AsyncIterator[SmpSession]:
    """An SMP session on ``port``; the device must answer within ``timeout_s``."""
    if not is_url(port) and not os.path.exists(port):
        raise FlashCommandError(f"no device: there is no serial port {port}")
    session = SmpSession(port, timeout_s)
    try:
        await session.open()
        yield session
    finally:
        await session.close()


class SmpSession:
    """An smpclient connection with every library failure turned into a user message."""

    def __init__(self, port: str, timeout_s: float) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.transport = _transport(port)
        self.client = SMPClient(self.transport, port, timeout_s=timeout_s)
        self._open = False

    async def open(self) -> None:
        try:
            await self.client.connect(connect_timeout_s=self.timeout_s)
        except TimeoutError:
            raise FlashCommandError(f"no device: cannot open {self.port}") from None
        except (serial.SerialException, OSError) as exc:
            raise FlashCommandError(f"no device: cannot open {self.port}: {exc}") from None
        except SMPException as exc:
            # Bytes that are no SMP frame: a device mid-reset, or no SMP device at all.
            # A user message, so the wait after a reset asks again.
            with suppress(serial.SerialException, OSError):
                await self.client.disconnect()
            raise FlashCommandError(f"garbled answer from {self.port}: {exc}") from None
        self._open = True

    async def close(self) -> None:
        if self._open:
            self._open = False
            # The port may already be gone (a device that reset and re-enumerated).
            with suppress(serial.SerialException, OSError):
                await self.client.disconnect()

    async def request(self, request: Any, what: str, timeout_s: float | None = None) -> Any:
        """Send ``request``; return the success response or raise a user message."""
        try:
            response = await self.client.request(request, timeout_s=timeout_s)
        except TimeoutError:
            raise FlashCommandError(
                f"no answer from {self.port} to {what} within "
                f"{timeout_s or self.timeout_s:g} s (is an SMP device on this port?)"
            ) from None
        except SMPTransportDisconnected:
            raise FlashCommandError(f"lost the connection to {self.port} during {what}") from None
        except (SMPBadSequence, SMPValidationException) as exc:
            raise FlashCommandError(f"unexpected reply from {self.port} to {what}: {exc}") from None
        except SMPException as exc:
            raise FlashCommandError(f"garbled answer from {self.port} to {what}: {exc}") from None
        if error(response):
            raise FlashCommandError(f"{what} refused: {describe_smp_error(response)}")
        return response


_IMG = smpimg.IMG_MGMT_ERR
_IMAGE_ERROR_TEXT: dict[int, str] = {
    _IMG.INVALID_IMAGE_TOO_LARGE: "image too large for the slot",
    _IMG.INVALID_HASH: "bad hash: the data the device received does not match the image",
    _IMG.INVALID_TLV: "bad signature: the device only accepts images signed with its key",
    _IMG.INVALID_FLASH_ADDRESS: "wrong board: the image was built for another board",
    _IMG.CURRENT_VERSION_IS_NEWER: (
        "downgrade refused: the image's version or security counter is lower than "
        "the running image's"
    ),
    _IMG.NO_FREE_SLOT: (
        "device busy: the running image is on test and not confirmed; confirm it "
        "(--confirm-running) or reset the device to roll back, then flash again"
    ),
    _IMG.IMAGE_ALREADY_PENDING: "another image is already pending",
    _IMG.INVALID_IMAGE_HEADER: "the device does not accept this image (bad MCUboot header)",
    _IMG.INVALID_IMAGE_HEADER_MAGIC: "not an MCUboot image",
    _IMG.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED: "that image is the one running",
    _IMG.HASH_NOT_FOUND: "the device holds no image with that hash",
    _IMG.NO_IMAGE: "no image runs on the device",
    _IMG.FLASH_WRITE_FAILED: "the device failed to write its flash",
    _IMG.FLASH_ERASE_FAILED: "the device failed to erase its flash",
    _IMG.INVALID_SLOT: "the device has no such image slot",
    _IMG.INVALID_IMAGE_DATA_OVERRUN: "the device received more data than announced",
}


def describe_smp_error(response: Any) -> str:
    """One line for an SMP error reply (version 1 ``rc``/``rsn`` or version 2 ``err``)."""
    if error_v2(response):
        rc = response.err.rc
        text = _IMAGE_ERROR_TEXT.get(int(rc)) if response.err.group == 1 else None
        name = getattr(rc, "name", str(rc))
        return f"{text} ({name})" if text else f"error {name} in group {response.err.group}"
    if error_v1(response):
        code = smperr.MGMT_ERR(response.rc)
        reason = f": {response.rsn}" if response.rsn else ""
        return f"{code.name}{reason}"
    return str(response)
