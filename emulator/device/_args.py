"""The arguments of a request, checked as docs/board-commands.md types them.

Each check returns the value or raises the :class:`~hal.serial.DeviceRejected` the device
answers with (``BAD_ARGUMENT``, naming the argument): a host's mistake is an ERROR
answer, never the device's failure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from hal.serial import DeviceRejected, ErrorCode, rejection_for

Args = dict[str, Any]
"""A request's ``args`` map."""

_E = TypeVar("_E")


def bad_argument(message: str) -> DeviceRejected:
    """The refusal of a request whose arguments are wrong."""
    return rejection_for(ErrorCode.BAD_ARGUMENT, message)


def not_supported(message: str) -> DeviceRejected:
    """The refusal of a request this device cannot carry out (not a host's mistake in
    its arguments)."""
    return rejection_for(ErrorCode.NOT_SUPPORTED, message)


def arg(args: Args, key: str) -> Any:
    """Argument ``key``, of any type."""
    try:
        return args[key]
    except KeyError:
        raise bad_argument(f"argument {key!r} missing") from None


def boolean(args: Args, key: str) -> bool:
    value = arg(args, key)
    if not isinstance(value, bool):
        raise bad_argument(f"{key!r} must be a boolean, got {type(value).__name__}")
    return value


def number(args: Args, key: str) -> float:
    """A finite integer or float (CBOR has no other numbers we take), as a float: an
    integer too large for a double is refused like ``inf``."""
    value = arg(args, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_argument(f"{key!r} must be a number, got {type(value).__name__}")
    try:
        as_float = float(value)  # an integer beyond a double (10**400) overflows
    except OverflowError:
        as_float = math.inf
    if not math.isfinite(as_float):
        shown = value if isinstance(value, float) else f"an integer of {value.bit_length()} bits"
        raise bad_argument(f"{key!r} must be a finite number, got {shown}")
    return as_float


def uint(args: Args, key: str) -> int:
    value = arg(args, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_argument(f"{key!r} must be an unsigned integer, got {value!r}")
    return value


def text(args: Args, key: str) -> str:
    value = arg(args, key)
    if not isinstance(value, str):
        raise bad_argument(f"{key!r} must be a text string, got {type(value).__name__}")
    return value


def name(args: Args, key: str, kind: Callable[[str], _E]) -> _E:
    """A name of ``kind`` (an enum of the board: ``Output``, ``AnalogChannel``, ...)."""
    value = text(args, key)
    known = _NAMES.setdefault(kind, {})
    member: _E | None = known.get(value)
    if member is None:
        try:
            member = known[value] = kind(value)
        except ValueError:
            raise bad_argument(f"{key!r}: no such name {value!r}") from None
    return member


# Not kind(value) each time: an Enum call is ~20 us after idle (benchmarks serial, requests).
_NAMES: dict[Any, dict[str, Any]] = {}
