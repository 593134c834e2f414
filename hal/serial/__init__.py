"""The serial-attached board and the wire protocol it speaks (docs/protocol.md,
docs/board-commands.md).

What is here, bottom up (each in its own module):

* the error tree (``_errors``): :class:`PrinterLinkError` and everything under it;
* frames (``_frames``): COBS, header, CRC, :class:`FrameDecoder`; payloads
  (``_payloads``): the CBOR of HELLO, REQUEST, RESPONSE, ERROR and EVENT;
* the byte stream's demultiplexer (``_demux``): SMP lines beside the frames;
* the link (``_link``): :class:`LinkEndpoint`, sans-IO, the same at both ends, and
  :class:`LinkPump` (``_pump``), which runs one on a scheduler for the host and the
  device alike; the link's timings for a board file (``_timings``);
* the line: :class:`LinePacer` (``_pacer``), the one UART pacing rule, and the host's
  :class:`PortTransport` (``_transport``, with :class:`PtyYield` from ``_pty_yield``);
  :func:`lock_port` (``_port_lock``: one host per device, the lock every host tool takes);
* the host: :class:`SerialBoard` (``_board``) over ``_host_link`` (requests and their
  answers), synchronised after link loss and device resets (``_resync``), with the
  simulated-fault commands (``_sim_faults``) and its analog poll (``_analog_poll``).

Exported: what the device side (``emulator.device``, ``emulator.flash``), the CLI and
tools use, and the whole error tree (what a caller catches).
"""

from hal.serial._board import EventListener, SerialBoard
from hal.serial._demux import LineDemux
from hal.serial._errors import (
    BadArgument,
    BadCobs,
    BadCrc,
    BadMarker,
    BoardMismatch,
    DecodeErrorKind,
    DeviceBusy,
    DeviceInternalError,
    DeviceIoError,
    DeviceRejected,
    DeviceReset,
    DeviceTimeout,
    ErrorCode,
    FrameDecodeError,
    FrameTooLong,
    IncompatiblePeer,
    InvalidState,
    LengthMismatch,
    LinkDown,
    LinkDownReason,
    LinkFailure,
    LinkTimeout,
    MalformedPayload,
    NoDeviceAnswer,
    NoResources,
    NotSupported,
    PayloadTooLarge,
    PortUnavailable,
    PrinterLinkError,
    ProtocolMisuse,
    ProtocolVersionMismatch,
    RequestCancelled,
    RequestTooLarge,
    TruncatedFrame,
    UnknownCommand,
    UnknownFrameType,
    rejection_for,
)
from hal.serial._frames import CorruptFrame, Frame, FrameDecoder, FrameType, Noise, Role
from hal.serial._host_link import SerialBoardStats, TraceHook
from hal.serial._link import (
    HandshakeFailed,
    LinkEndpoint,
    LinkEstablished,
    LinkEvent,
    LinkLost,
    LinkState,
    suggested_rto_ns,
)
from hal.serial._pacer import LinePacer
from hal.serial._payloads import (
    ErrorReply,
    Event,
    Hello,
    Request,
    Response,
    input_event_payload,
    parse_request,
    response_payload,
)
from hal.serial._port_lock import PortInUse, PortLock, device_key, lock_dir, lock_port
from hal.serial._pty_yield import PtyYield
from hal.serial._pump import LinkPump
from hal.serial._timings import device_link_options
from hal.serial._transport import PortTransport, Transport

__all__ = [
    "BadArgument",
    "BadCobs",
    "BadCrc",
    "BadMarker",
    "BoardMismatch",
    "CorruptFrame",
    "DecodeErrorKind",
    "DeviceBusy",
    "DeviceInternalError",
    "DeviceIoError",
    "DeviceRejected",
    "DeviceReset",
    "DeviceTimeout",
    "ErrorCode",
    "ErrorReply",
    "Event",
    "EventListener",
    "Frame",
    "FrameDecodeError",
    "FrameDecoder",
    "FrameTooLong",
    "FrameType",
    "HandshakeFailed",
    "Hello",
    "IncompatiblePeer",
    "InvalidState",
    "LengthMismatch",
    "LineDemux",
    "LinePacer",
    "LinkDown",
    "LinkDownReason",
    "LinkEndpoint",
    "LinkEstablished",
    "LinkEvent",
    "LinkFailure",
    "LinkLost",
    "LinkPump",
    "LinkState",
    "LinkTimeout",
    "MalformedPayload",
    "NoDeviceAnswer",
    "NoResources",
    "Noise",
    "NotSupported",
    "PayloadTooLarge",
    "PortInUse",
    "PortLock",
    "PortTransport",
    "PortUnavailable",
    "PrinterLinkError",
    "ProtocolMisuse",
    "ProtocolVersionMismatch",
    "PtyYield",
    "Request",
    "RequestCancelled",
    "RequestTooLarge",
    "Response",
    "Role",
    "SerialBoard",
    "SerialBoardStats",
    "TraceHook",
    "Transport",
    "TruncatedFrame",
    "UnknownCommand",
    "UnknownFrameType",
    "device_key",
    "device_link_options",
    "input_event_payload",
    "lock_dir",
    "lock_port",
    "parse_request",
    "rejection_for",
    "response_payload",
    "suggested_rto_ns",
]
