"""Errors of the serial link, and the error codes a device answers with.

One hierarchy, rooted at :class:`PrinterLinkError`, split by *whose fault it is*, because
that decides what the caller should do:

``LinkFailure`` — the world failed (a cable, a line, a device that rebooted). Nothing
was wrong with the request; retrying after the link is back may well succeed.

* :class:`LinkDown` — the link is not up (never came up, went silent, the peer restarted).
* :class:`LinkTimeout` — an answer did not come in time (also a :class:`TimeoutError`);
  :class:`NoDeviceAnswer` — no device completed the handshake when a board was opened.
* :class:`PortUnavailable` — the port cannot be opened (also a :class:`ConnectionError`).
* :class:`DeviceReset` — the device rebooted (new boot nonce); its state is gone.
* :class:`FrameDecodeError` — bytes arrived damaged. The decoder *returns* these as
  values (:class:`~hal.serial.CorruptFrame`); the classes exist for callers that want to
  raise one (``corrupt.error()``). One subclass per :class:`DecodeErrorKind`.

``ProtocolMisuse`` — one side asked for something the protocol or the other side does
not allow. Retrying the same thing fails the same way; fix the caller, the firmware or
the configuration.

* :class:`IncompatiblePeer` — the ends cannot talk: :class:`ProtocolVersionMismatch`,
  two hosts on one line, a line that echoes our own frames, :class:`BoardMismatch` (the
  device is another board than the board file).
* :class:`MalformedPayload` — a payload that is not the CBOR its frame type requires.
* :class:`PayloadTooLarge` — a payload above the peer's advertised limit (also a
  :class:`ValueError`: it is the caller's argument that is wrong).
* :class:`DeviceRejected` — the device answered a request with an ERROR frame; one
  subclass per :class:`ErrorCode` (:func:`rejection_for` picks it). :class:`DeviceBusy` is
  the one rejection worth retrying as is (``retryable = True``).

Nothing here imports the codec or the link, so any layer may import it.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar


class ErrorCode(enum.IntEnum):
    """The ``code`` of an ERROR frame (see docs/protocol.md, "ERROR").

    0 is never sent. 1-127 are defined here; 128-255 are free for a device's own codes,
    which map to plain :class:`DeviceRejected`.
    """

    UNKNOWN_COMMAND = 1
    """The device has no command of that name."""
    BAD_ARGUMENT = 2
    """An argument is missing, of the wrong type or out of range."""
    BUSY = 3
    """The device cannot take the command now (resources held); retry later."""
    NOT_SUPPORTED = 4
    """The command exists but this device or board does not offer it."""
    INTERNAL = 5
    """The device failed in a way that is its own bug."""
    INVALID_STATE = 6
    """The command is not allowed in the device's current state."""
    NO_RESOURCES = 7
    """Out of memory, buffers or handles."""
    TOO_LARGE = 8
    """A request or a value in it exceeds what the device can hold."""
    CANCELLED = 9
    """The operation was cancelled before it completed."""
    TIMEOUT = 10
    """The device's hardware did not respond in time."""
    IO_ERROR = 11
    """The device's hardware reported an error."""


class DecodeErrorKind(enum.Enum):
    """Why a chunk of bytes between delimiters is not a frame (see docs/protocol.md,
    "Receiving"). The order is the order the decoder checks in."""

    BAD_COBS = "bad_cobs"
    """The chunk is not valid COBS (a length code runs past the end)."""
    TRUNCATED = "truncated"
    """Shorter than the 16 bytes of header and CRC."""
    BAD_MARKER = "bad_marker"
    """A well-formed frame (its CRC holds) whose first byte is not 0xA5."""
    BAD_CRC = "bad_crc"
    """The CRC-32 does not match."""
    BAD_VERSION = "bad_version"
    """A protocol major version this decoder does not speak."""
    TOO_LONG = "too_long"
    """Payload length above the limit, or no delimiter within the largest frame."""
    LENGTH_MISMATCH = "length_mismatch"
    """The header's payload length disagrees with the bytes received."""
    UNKNOWN_TYPE = "unknown_type"
    """A frame type this version does not define."""


class LinkDownReason(enum.Enum):
    """Why a link session ended."""

    SILENCE = "silence"
    """Nothing valid was heard from the peer for ``dead_after_ns``."""
    NO_PROGRESS = "no_progress"
    """The peer was heard but acknowledged nothing for ``dead_after_ns``."""
    PEER_RESTARTED = "peer_restarted"
    """The peer started a new session without rebooting (same boot nonce)."""
    PEER_RESET = "peer_reset"
    """The peer rebooted (a new boot nonce)."""
    LOCAL_RESET = "local_reset"
    """This end was told to start over (``LinkEndpoint.reset``)."""
    NOT_CONNECTED = "not_connected"
    """The link has not come up yet."""


class PrinterLinkError(Exception):
    """Base of every error of the serial link."""


# --- the world failed -------------------------------------------------------------------


class LinkFailure(PrinterLinkError):
    """The line, the cable or the device failed; the request itself was fine."""


class LinkDown(LinkFailure):
    """The link is not up, so nothing can be sent or answered."""

    def __init__(self, reason: LinkDownReason, message: str = "") -> None:
        super().__init__(message or f"link down ({reason.value})")
        self.reason = reason


class LinkTimeout(LinkFailure, TimeoutError):
    """An answer did not arrive in time although the link stayed up."""


class NoDeviceAnswer(LinkTimeout):
    """The port opened, but no device completed the handshake (and the first
    ``board.snapshot``) within the time allowed."""

    def __init__(self, url: str, timeout_s: float, detail: str = "") -> None:
        more = f" ({detail})" if detail else ""
        super().__init__(
            f"no printer board answered on {url} within {timeout_s:g} s{more}: is a device "
            "there, running the serial protocol?"
        )
        self.url = url


class PortUnavailable(LinkFailure, ConnectionError):
    """The port cannot be opened: no such device, no permission, connection refused."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot open port {url}: {reason}")
        self.url = url


class DeviceReset(LinkFailure):
    """The device rebooted (its HELLO carried a new boot nonce): all its state is gone
    and requests in flight will never be answered."""

    def __init__(self, old_boot_nonce: int, new_boot_nonce: int) -> None:
        super().__init__(
            f"device reset (boot nonce {old_boot_nonce:#018x} -> {new_boot_nonce:#018x})"
        )
        self.old_boot_nonce = old_boot_nonce
        self.new_boot_nonce = new_boot_nonce


class FrameDecodeError(LinkFailure):
    """Bytes arrived that are not a valid frame. ``raw`` is the chunk as received
    (COBS-encoded, without delimiters)."""

    kind: ClassVar[DecodeErrorKind]

    def __init__(self, message: str, raw: bytes = b"") -> None:
        super().__init__(message)
        self.raw = raw


class BadCobs(FrameDecodeError):
    kind = DecodeErrorKind.BAD_COBS


class TruncatedFrame(FrameDecodeError):
    kind = DecodeErrorKind.TRUNCATED


class BadMarker(FrameDecodeError):
    kind = DecodeErrorKind.BAD_MARKER


class BadCrc(FrameDecodeError):
    kind = DecodeErrorKind.BAD_CRC


class FrameTooLong(FrameDecodeError):
    kind = DecodeErrorKind.TOO_LONG


class LengthMismatch(FrameDecodeError):
    kind = DecodeErrorKind.LENGTH_MISMATCH


class UnknownFrameType(FrameDecodeError):
    kind = DecodeErrorKind.UNKNOWN_TYPE


# BAD_VERSION is deliberately absent: a frame of another major version is not damage but
# an incompatible peer, so it maps to ProtocolVersionMismatch (see decode_error_for).
_DECODE_ERROR_CLASS: dict[DecodeErrorKind, type[FrameDecodeError]] = {
    cls.kind: cls
    for cls in (
        BadCobs,
        TruncatedFrame,
        BadMarker,
        BadCrc,
        FrameTooLong,
        LengthMismatch,
        UnknownFrameType,
    )
}


# --- one side misused the protocol -------------------------------------------------------


class ProtocolMisuse(PrinterLinkError):
    """One side asked for something the protocol or the peer does not allow; retrying
    the same thing fails the same way."""


class IncompatiblePeer(ProtocolMisuse):
    """The two ends cannot talk to each other (wrong version, wrong roles, an echoing
    line). The link stays down until the configuration changes."""


class ProtocolVersionMismatch(IncompatiblePeer):
    """The peer speaks another major version of the protocol.

    ``local`` and ``remote`` are version bytes (``major << 4 | minor``).
    """

    def __init__(self, local: int, remote: int) -> None:
        super().__init__(
            f"protocol version mismatch: we speak {local >> 4}.{local & 0xF}, "
            f"the peer {remote >> 4}.{remote & 0xF}"
        )
        self.local = local
        self.remote = remote


class BoardMismatch(IncompatiblePeer):
    """The device says it is another board than the board file describes (or one that
    no board file describes)."""


class MalformedPayload(ProtocolMisuse):
    """A payload is not the CBOR its frame type requires (docs/protocol.md, "Payloads")."""


class PayloadTooLarge(ProtocolMisuse, ValueError):
    """A payload is longer than the peer accepts (its HELLO's ``max_payload``)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"payload of {size} bytes exceeds the peer's limit of {limit}")
        self.size = size
        self.limit = limit


class DeviceRejected(ProtocolMisuse):
    """The device answered a request with an ERROR frame.

    ``code`` is the wire code (an :class:`ErrorCode` when the code is a standard one,
    else the plain int), ``message`` the device's text, ``detail`` whatever extra CBOR
    value it sent (or ``None``).
    """

    retryable: ClassVar[bool] = False
    """True when sending the same request again later may succeed."""

    def __init__(self, code: int, message: str = "", detail: Any = None) -> None:
        try:
            name = ErrorCode(code).name.lower()
        except ValueError:
            name = f"device error {code}"
        super().__init__(f"{name}: {message}" if message else name)
        self.code: ErrorCode | int = _as_code(code)
        self.message = message
        self.detail = detail


class UnknownCommand(DeviceRejected):
    pass


class BadArgument(DeviceRejected):
    pass


class DeviceBusy(DeviceRejected):
    retryable = True


class NotSupported(DeviceRejected):
    pass


class DeviceInternalError(DeviceRejected):
    pass


class InvalidState(DeviceRejected):
    pass


class NoResources(DeviceRejected):
    pass


class RequestTooLarge(DeviceRejected):
    pass


class RequestCancelled(DeviceRejected):
    pass


class DeviceTimeout(DeviceRejected):
    pass


class DeviceIoError(DeviceRejected):
    pass


_REJECTION_CLASS: dict[ErrorCode, type[DeviceRejected]] = {
    ErrorCode.UNKNOWN_COMMAND: UnknownCommand,
    ErrorCode.BAD_ARGUMENT: BadArgument,
    ErrorCode.BUSY: DeviceBusy,
    ErrorCode.NOT_SUPPORTED: NotSupported,
    ErrorCode.INTERNAL: DeviceInternalError,
    ErrorCode.INVALID_STATE: InvalidState,
    ErrorCode.NO_RESOURCES: NoResources,
    ErrorCode.TOO_LARGE: RequestTooLarge,
    ErrorCode.CANCELLED: RequestCancelled,
    ErrorCode.TIMEOUT: DeviceTimeout,
    ErrorCode.IO_ERROR: DeviceIoError,
}


def _as_code(code: int) -> ErrorCode | int:
    try:
        return ErrorCode(code)
    except ValueError:
        return code


def rejection_for(code: int, message: str = "", detail: Any = None) -> DeviceRejected:
    """The exception for a device's ERROR answer: the subclass of :class:`DeviceRejected`
    for a standard code, plain :class:`DeviceRejected` for any other code. Never raises."""
    known = _as_code(code)
    cls = _REJECTION_CLASS[known] if isinstance(known, ErrorCode) else DeviceRejected
    return cls(code, message, detail)


def decode_error_for(
    kind: DecodeErrorKind, message: str, raw: bytes = b"", *, local: int = 0, remote: int = 0
) -> PrinterLinkError:
    """The exception for a decode error: the :class:`FrameDecodeError` subclass of
    ``kind``, or :class:`ProtocolVersionMismatch` (built from ``local``/``remote``) for
    :attr:`DecodeErrorKind.BAD_VERSION`. Never raises."""
    if kind is DecodeErrorKind.BAD_VERSION:
        return ProtocolVersionMismatch(local, remote)
    return _DECODE_ERROR_CLASS[kind](message, raw)
