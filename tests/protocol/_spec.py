"""What docs/protocol.md states, read from the page itself: its worked examples (the
```` ```wire ```` blocks) and its vocabulary tables (each after a
``<!-- vocabulary: NAME -->`` line), so that tests check the page as written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

_HEX_BYTE = re.compile(r"^[0-9a-f]{2}$")


@dataclass(frozen=True)
class WireExample:
    """One worked example: the header fields it names and its bytes at each stage."""

    name: str
    frame_type: str
    flags: int
    seq: int
    ack: int
    request_id: int
    payload: bytes
    header: bytes
    crc: bytes
    encoded: bytes


def _hex(words: list[str]) -> bytes:
    """The bytes of a block's hex words (``(none)`` and other words are not bytes)."""
    return bytes.fromhex(" ".join(w for w in words if _HEX_BYTE.match(w)))


def _page() -> str:
    return PROTOCOL_MD.read_text(encoding="utf-8")


def wire_examples() -> dict[str, WireExample]:
    """Every ```` ```wire example=NAME ```` block of the page, by name."""
    examples: dict[str, WireExample] = {}
    for name, body in re.findall(r"```wire example=(\S+)\n(.*?)```", _page(), re.S):
        fields: dict[str, list[str]] = {}
        label = ""
        for line in body.splitlines():
            if line[:1].strip():
                label, _, line = line.partition(" ")
            fields.setdefault(label, []).extend(line.split())
        words = fields.pop("frame")
        header = dict(zip(words[1::2], words[2::2], strict=True))

        examples[name] = WireExample(
            name, words[0], int(header["flags"]), int(header["seq"]), int(header["ack"]),
            int(header["request_id"]), _hex(fields["payload"]), _hex(fields["header"]),
            _hex(fields["crc"]), _hex(fields["encoded"]),
        )
    return examples


def vocabulary(name: str) -> list[list[str]]:
    """The rows of the table marked ``<!-- vocabulary: NAME -->``, each a list of its
    cells with the backticks of code spans removed."""
    match = re.search(rf"<!-- vocabulary: {re.escape(name)} -->\n((?:\|.*\n)+)", _page())
    assert match is not None, f"docs/protocol.md has no vocabulary table {name!r}"
    rows = match.group(1).strip().splitlines()[2:]  # past the heading and its rule
    return [[cell.strip().replace("`", "") for cell in row.strip("|").split("|")]
            for row in rows]


def first_column(name: str) -> list[str]:
    return [row[0] for row in vocabulary(name)]
