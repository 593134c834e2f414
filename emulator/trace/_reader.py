"""Reading a trace back: the events of a ``.jsonl`` or ``.vcd`` file (for ``plot`` and
tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from emulator.trace._signals import TRACE_SUFFIXES, TraceError

TraceEvent = tuple[int, str, str, object]
"""``(t_ns, scope, signal, value)``, as recorded."""

_VCD_ESCAPE = re.compile(r"\\(\\|t|n|r|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")
_VCD_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def _vcd_unescape(text: str) -> str:
    return _VCD_ESCAPE.sub(
        lambda m: _VCD_UNESCAPE.get(m.group(1)) or chr(int(m.group(1)[1:], 16)), text)


def read_trace(path: str | Path) -> list[TraceEvent]:
    """The events of a ``.jsonl`` or ``.vcd`` trace, in file order. A VCD gives the
    initial values and then only the changes. Raises TraceError for an unreadable file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in TRACE_SUFFIXES:
        raise TraceError(f"a trace file ends in .vcd or .jsonl, got {str(path)!r}")
    try:
        if p.exists() and not p.is_file():  # a FIFO would block until a writer came
            raise TraceError(f"{path}: not a regular file (a trace is read from one)")
        if suffix == ".jsonl":
            return _read_jsonl(p)
        return _read_vcd(p)
    except OSError as e:
        raise TraceError(f"cannot read trace {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise TraceError(f"{p.name}: not a trace: not text (byte {e.start})") from None


def _read_jsonl(path: Path) -> list[TraceEvent]:
    events: list[TraceEvent] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                events.append((int(obj["t_ns"]), str(obj["scope"]), str(obj["signal"]),
                               obj["value"]))
            except (ValueError, KeyError, TypeError, OverflowError):  # 1e400 is inf
                raise TraceError(f"{path.name}:{number}: not a trace event") from None
    return events


def _read_vcd(path: Path) -> list[TraceEvent]:
    from vcd.reader import TokenKind, VCDParseError, tokenize

    names: dict[str, list[tuple[str, str]]] = {}
    scopes: list[str] = []
    events: list[TraceEvent] = []
    t_ns = 0
    with path.open("rb") as f:
        try:
            for token in tokenize(f):
                kind = token.kind
                if kind is TokenKind.CHANGE_TIME:
                    t_ns = token.data  # type: ignore[assignment]
                    continue
                if kind is TokenKind.SCOPE:
                    scopes.append(token.scope.ident)
                elif kind is TokenKind.UPSCOPE:
                    scopes.pop()
                elif kind is TokenKind.VAR:
                    var = token.var
                    names.setdefault(var.id_code, []).append((".".join(scopes), var.reference))
                value: object
                if kind is TokenKind.CHANGE_SCALAR:
                    ident, raw = token.scalar_change
                    value = {"1": True, "0": False}.get(raw)
                elif kind is TokenKind.CHANGE_VECTOR:
                    ident, vector = token.vector_change
                    value = vector if isinstance(vector, int) else None
                elif kind is TokenKind.CHANGE_REAL:
                    ident, value = token.real_change
                elif kind is TokenKind.CHANGE_STRING:
                    ident, text = token.string_change
                    value = _vcd_unescape(text)
                else:
                    continue
                for scope, name in names.get(ident, ()):
                    events.append((t_ns, scope, name, value))
        except VCDParseError as e:
            raise TraceError(f"{path.name}: not a VCD file: {e}") from None
    return events
