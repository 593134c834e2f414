"""The payloads of the serial-attached board's frames: CBOR (RFC 8949) maps, one schema
per frame type (docs/protocol.md, "Payloads").

* :class:`Hello` — HELLO and HELLO_ACK (the link's handshake).
* :class:`Request`, :class:`Response`, :class:`ErrorReply`, :class:`Event` — what the
  application's data frames carry.
* :func:`encode_payload` / :func:`decode_payload` — any value to CBOR and back.

Parsing raises :class:`MalformedPayload` (or :class:`ProtocolVersionMismatch` for a HELLO
of another major version); unknown keys are ignored, as later minor versions add some.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import cbor2

from hal.serial._errors import (
    ErrorCode,
    MalformedPayload,
    PrinterLinkError,
    ProtocolVersionMismatch,
    rejection_for,
)
from hal.serial._frames import (
    DEFAULT_MAX_PAYLOAD,
    MAX_PAYLOAD_LIMIT,
    MAX_WINDOW,
    MIN_MAX_PAYLOAD,
    PROTOCOL_MAJOR,
    PROTOCOL_VERSION,
    Role,
)


def encode_payload(value: Any) -> bytes:
    """``value`` as CBOR. Raises :class:`ValueError` for values CBOR cannot hold."""
    try:
        return cbor2.dumps(value)
    except cbor2.CBOREncodeError as exc:
        raise ValueError(f"cannot encode payload as CBOR: {exc}") from None


def decode_payload(payload: bytes) -> Any:
    """The CBOR value of a payload; ``None`` for an empty payload.

    Raises :class:`MalformedPayload` for anything that is not one well-formed CBOR item
    (the decoder may fail in several ways on hostile input; all of them land here).
    """
    if not payload:
        return None
    try:
        return cbor2.loads(payload)
    except Exception as exc:  # cbor2 raises more than CBORDecodeError on hostile input
        raise MalformedPayload(f"payload is not valid CBOR: {exc}") from None


def _payload_map(payload: bytes, what: str) -> dict[Any, Any]:
    value = decode_payload(payload)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{what} payload must be a CBOR map, got {type(value).__name__}")
    return value


def _get(m: dict[Any, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    try:
        value = m[key]
    except KeyError:
        raise MalformedPayload(f"{what}: {key!r} missing") from None
    # bool is an int in Python but not in CBOR; refuse it where an integer is wanted.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise MalformedPayload(f"{what}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _get_uint(m: dict[Any, Any], key: str, what: str, bits: int) -> int:
    value: int = _get(m, key, int, what)
    if not 0 <= value < 1 << bits:
        raise MalformedPayload(f"{what}: {key!r} = {value} is not a u{bits}")
    return value


def _opt(m: dict[Any, Any], key: str, kind: type, default: Any, what: str) -> Any:
    return _get(m, key, kind, what) if key in m else default


@dataclass(frozen=True, slots=True)
class Hello:
    """The payload of HELLO and HELLO_ACK (docs/protocol.md, "HELLO").

    ``boot_nonce`` changes exactly when the sender reboots; ``session`` changes whenever
    the sender starts a new link session (sequence numbers from 0); ``peer_session`` is
    the peer session the sender has heard, 0 if none. ``max_payload`` and ``window`` are
    what the sender *accepts*; ``dead_after_ns`` is how long it waits in silence before
    declaring the link down (so the peer heartbeats well within it).
    """

    role: Role
    boot_nonce: int
    session: int
    peer_session: int = 0
    version: int = PROTOCOL_VERSION
    capabilities: frozenset[str] = field(default_factory=frozenset)
    max_payload: int = DEFAULT_MAX_PAYLOAD
    window: int = 8
    dead_after_ns: int = 3_000_000_000
    device_id: str = ""
    board: str = ""
    image_version: str = ""
    image_sha256: str = ""
    """Hex SHA-256 of the running image ("" when the sender has no image to tell of)."""
    image_confirmed: bool | None = None
    """Whether the running image is confirmed (None: not told)."""

    def to_payload(self) -> bytes:
        """The CBOR payload. Raises :class:`ValueError` if a field is out of range or
        the HELLO would not fit in :data:`MIN_MAX_PAYLOAD` bytes."""
        if not (
            0 <= self.boot_nonce < 1 << 64
            and 0 < self.session < 1 << 32
            and 0 <= self.peer_session < 1 << 32
            and MIN_MAX_PAYLOAD <= self.max_payload <= MAX_PAYLOAD_LIMIT
            and 1 <= self.window <= MAX_WINDOW
            and self.dead_after_ns > 0
        ):
            raise ValueError(f"HELLO field out of range: {self!r}")
        image: dict[str, Any] = {}
        if self.image_sha256:
            image["image_sha"] = self.image_sha256
        if self.image_confirmed is not None:
            image["image_ok"] = self.image_confirmed
        payload = encode_payload(
            {
                "version": self.version,  # first: a receiver checks it before anything else
                "role": str(self.role),
                "caps": sorted(self.capabilities),
                "limits": {
                    "max_payload": self.max_payload,
                    "window": self.window,
                    "dead_after_ns": self.dead_after_ns,
                },
                "device_id": self.device_id,
                "board": self.board,
                "image": self.image_version,
                **image,
                "boot": self.boot_nonce,
                "session": self.session,
                "peer_session": self.peer_session,
            }
        )
        if len(payload) > MIN_MAX_PAYLOAD:
            raise ValueError(f"HELLO is {len(payload)} bytes; it must fit in {MIN_MAX_PAYLOAD}")
        return payload

    @classmethod
    def from_payload(cls, payload: bytes) -> Hello:
        """Parse a HELLO payload. Unknown keys are ignored (later minor versions add
        some). Raises :class:`ProtocolVersionMismatch` when the major version differs
        (checked first, so a HELLO of any version is told apart), else
        :class:`MalformedPayload` for a missing or ill-typed field."""
        what = "HELLO"
        m = _payload_map(payload, what)
        version = _get_uint(m, "version", what, 8)
        if version >> 4 != PROTOCOL_MAJOR:
            raise ProtocolVersionMismatch(PROTOCOL_VERSION, version)
        role_text = _get(m, "role", str, what)
        try:
            role = Role(role_text)
        except ValueError:
            raise MalformedPayload(f"{what}: unknown role {role_text!r}") from None
        caps = _opt(m, "caps", list, [], what)
        if not all(isinstance(c, str) for c in caps):
            raise MalformedPayload(f"{what}: 'caps' must be a list of text strings")
        limits = _get(m, "limits", dict, what)
        max_payload = _get_uint(limits, "max_payload", what, 16)
        window = _get_uint(limits, "window", what, 16)
        if max_payload < MIN_MAX_PAYLOAD or not 1 <= window <= MAX_WINDOW:
            raise MalformedPayload(f"{what}: limits out of range: {limits!r}")
        dead_after_ns = _get_uint(limits, "dead_after_ns", what, 64)
        session = _get_uint(m, "session", what, 32)
        if session == 0:
            raise MalformedPayload(f"{what}: session must not be 0")
        return cls(
            role=role,
            boot_nonce=_get_uint(m, "boot", what, 64),
            session=session,
            peer_session=_get_uint(m, "peer_session", what, 32),
            version=version,
            capabilities=frozenset(caps),
            max_payload=max_payload,
            window=window,
            dead_after_ns=dead_after_ns,
            device_id=_opt(m, "device_id", str, "", what),
            board=_opt(m, "board", str, "", what),
            image_version=_opt(m, "image", str, "", what),
            image_sha256=_opt(m, "image_sha", str, "", what),
            image_confirmed=_opt(m, "image_ok", bool, None, what),
        )


@dataclass(frozen=True, slots=True)
class Request:
    """REQUEST payload: ``{"cmd": tstr, ? "args": map}``."""

    cmd: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> bytes:
        return request_payload(self.cmd, self.args)

    @classmethod
    def from_payload(cls, payload: bytes) -> Request:
        """Raises :class:`MalformedPayload`."""
        return cls(*parse_request(payload))


@dataclass(frozen=True, slots=True)
class Response:
    """RESPONSE payload: ``{? "result": any}``; an empty payload means no result."""

    result: Any = None

    def to_payload(self) -> bytes:
        return response_payload(self.result)

    @classmethod
    def from_payload(cls, payload: bytes) -> Response:
        """Raises :class:`MalformedPayload`."""
        return cls(parse_response(payload))


# Per message these, not the classes: ~15-25 us less each after idle (benchmarks serial).


def request_payload(cmd: str, args: dict[str, Any] | None) -> bytes:
    """``Request(cmd, args).to_payload()``."""
    return encode_payload({"cmd": cmd, "args": args} if args else {"cmd": cmd})


def parse_request(payload: bytes) -> tuple[str, dict[str, Any]]:
    """A REQUEST payload's ``(cmd, args)``. Raises :class:`MalformedPayload`."""
    m = _plain_map(payload)
    if m is not None:
        cmd = m.get("cmd")
        args = m.get("args", _NO_ARGS)
        if type(cmd) is str:
            if args is _NO_ARGS:
                return cmd, {}
            if type(args) is dict:
                return cmd, args
    # Anything unusual: the checked parse, which words the error.
    m = _payload_map(payload, "REQUEST")
    return _get(m, "cmd", str, "REQUEST"), _opt(m, "args", dict, {}, "REQUEST")


def response_payload(result: Any) -> bytes:
    """``Response(result).to_payload()``."""
    return b"" if result is None else encode_payload({"result": result})


def parse_response(payload: bytes) -> Any:
    """A RESPONSE payload's ``result`` (``None`` when it has none). Raises
    :class:`MalformedPayload`."""
    m = _plain_map(payload)
    if m is not None:
        return m.get("result")
    return _payload_map(payload, "RESPONSE").get("result")


_NO_ARGS: Any = object()


def _plain_map(payload: bytes) -> dict[Any, Any] | None:
    """The payload's CBOR map, or ``None`` for anything else (empty, not CBOR, not a
    map), which the checked parse then words."""
    if not payload:
        return None
    try:
        m = cbor2.loads(payload)
    except Exception:
        return None
    return m if type(m) is dict else None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """ERROR payload: ``{"code": uint, ? "msg": tstr, ? "detail": any}``.

    ``code`` is an :class:`ErrorCode` (or a device-specific 128-255);
    :meth:`to_exception` gives the :class:`DeviceRejected` subclass for it.
    """

    code: int
    message: str = ""
    detail: Any = None

    def to_payload(self) -> bytes:
        m: dict[str, Any] = {"code": int(self.code)}
        if self.message:
            m["msg"] = self.message
        if self.detail is not None:
            m["detail"] = self.detail
        return encode_payload(m)

    @classmethod
    def from_payload(cls, payload: bytes) -> ErrorReply:
        """Raises :class:`MalformedPayload`."""
        what = "ERROR"
        m = _payload_map(payload, what)
        code: int = _get_uint(m, "code", what, 8)
        with contextlib.suppress(ValueError):  # a device's own code stays a plain int
            code = ErrorCode(code)
        return cls(code, _opt(m, "msg", str, "", what), m.get("detail"))

    def to_exception(self) -> PrinterLinkError:
        """The :class:`DeviceRejected` (subclass) this answer means."""
        return rejection_for(self.code, self.message, self.detail)


@dataclass(frozen=True, slots=True)
class Event:
    """EVENT payload: ``{"kind": tstr, "t_ns": uint, ? "data": map}``; ``t_ns`` is the
    device's clock when the event happened (not when it was sent)."""

    kind: str
    t_ns: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> bytes:
        m: dict[str, Any] = {"kind": self.kind, "t_ns": self.t_ns}
        if self.data:
            m["data"] = self.data
        return encode_payload(m)

    @classmethod
    def from_payload(cls, payload: bytes) -> Event:
        """Raises :class:`MalformedPayload`."""
        edge = _parse_input_event(payload)
        if edge is not None:
            return edge
        what = "EVENT"
        m = _payload_map(payload, what)
        return cls(
            _get(m, "kind", str, what),
            _get_uint(m, "t_ns", what, 64),
            _opt(m, "data", dict, {}, what),
        )


# --- input edges, built and read without cbor2 -----------------------------------------
#
# Not cbor2 for the event a firmware waits on: ~60 us off a release's p50 (benchmarks serial).


def _cbor_head(major: int, value: int) -> bytes:
    """The shortest CBOR head of ``major`` type for an argument ``0 <= value < 2**64``."""
    if value < 24:
        return bytes((major << 5 | value,))
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes((major << 5 | extra,)) + value.to_bytes(width, "big")
    raise ValueError(f"{value} does not fit a CBOR head")


def _cbor_text(text: str) -> bytes:
    encoded = text.encode()
    return _cbor_head(3, len(encoded)) + encoded


_INPUT_PREFIX = b"\xa3" + _cbor_text("kind") + _cbor_text("input") + _cbor_text("t_ns")
"""``{"kind": "input", "t_ns": ``: what every input edge's payload starts with."""
_INPUT_DATA = _cbor_text("data") + b"\xa2" + _cbor_text("name")
"""Between ``t_ns`` and the name: ``"data": {"name": ``."""
_INPUT_LEVEL = (_cbor_text("level") + b"\xf4", _cbor_text("level") + b"\xf5")
"""What ends the payload: ``"level": false}}`` and ``"level": true}}``."""
_UINT_WIDTH = {24: 1, 25: 2, 26: 4, 27: 8}
"""Extra bytes after a CBOR head's first byte, by its low five bits (24 and up)."""


def input_event_payload(t_ns: int, name: str, level: bool) -> bytes:
    """``Event("input", t_ns, {"name": name, "level": level}).to_payload()``, byte for
    byte, built without cbor2 (see above). Raises :class:`ValueError` where
    :meth:`Event.to_payload` does: a ``name`` that is not valid text."""
    if not 0 <= t_ns < 1 << 64:  # a negative or bignum instant: cbor2's own encoding
        return Event("input", t_ns, {"name": name, "level": bool(level)}).to_payload()
    try:
        name_text = _cbor_text(name)
    except UnicodeEncodeError:
        return Event("input", t_ns, {"name": name, "level": bool(level)}).to_payload()
    return b"".join((_INPUT_PREFIX, _cbor_head(0, t_ns), _INPUT_DATA, name_text,
                     _INPUT_LEVEL[bool(level)]))


def _parse_input_event(payload: bytes) -> Event | None:
    """The input edge a payload of exactly :func:`input_event_payload`'s shape holds, or
    ``None`` for any other payload (which :meth:`Event.from_payload` then gives to
    cbor2). Never raises. What it returns is what cbor2 would have made of the bytes."""
    if not payload.startswith(_INPUT_PREFIX):
        return None
    i = len(_INPUT_PREFIX)
    try:
        head = payload[i]
        if head < 24:
            t_ns = head
            i += 1
        else:
            width = _UINT_WIDTH.get(head)
            if width is None:
                return None
            t_ns = int.from_bytes(payload[i + 1:i + 1 + width], "big")
            i += 1 + width
        if payload[i:i + len(_INPUT_DATA)] != _INPUT_DATA:
            return None
        i += len(_INPUT_DATA)
        head = payload[i]
        if 0x60 <= head < 0x78:
            length = head - 0x60
            i += 1
        elif head == 0x78:
            length = payload[i + 1]
            i += 2
        else:
            return None
        name_bytes = payload[i:i + length]
        rest = payload[i + length:]
        if len(name_bytes) != length or rest not in _INPUT_LEVEL:
            return None
        name = name_bytes.decode()
    except (IndexError, UnicodeDecodeError):
        return None  # truncated, or not text: cbor2 says what is wrong
    return Event("input", t_ns, {"name": name, "level": rest == _INPUT_LEVEL[1]})
