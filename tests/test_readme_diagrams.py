"""The README's state diagrams are the code's: this fails when they no longer match.

The block between ``<!-- diagrams:begin -->`` and ``<!-- diagrams:end -->`` in README.md,
and docs/diagrams.md, must equal what ``printer-emu diagram --markdown`` prints now. To
fix a failure, regenerate and paste::

    printer-emu diagram --markdown -o docs/diagrams.md

and replace the README's block (markers included) with that file's text.
"""

from __future__ import annotations

from pathlib import Path

from emulator.cli._diagram import BEGIN_MARKER, END_MARKER, readme_section, render_readme_section

ROOT = Path(__file__).resolve().parents[1]
_FIX = ("regenerate with `printer-emu diagram --markdown -o docs/diagrams.md` and paste that "
        f"file over the README's block from {BEGIN_MARKER} to {END_MARKER}")


def test_readme_diagrams_match_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme_section(readme)
    assert section is not None, f"README.md has no {BEGIN_MARKER} ... {END_MARKER} block"
    assert section == render_readme_section(), f"README.md's state diagrams are stale: {_FIX}"


def test_docs_diagrams_match_the_code() -> None:
    docs = (ROOT / "docs" / "diagrams.md").read_text(encoding="utf-8")
    assert docs == render_readme_section(), f"docs/diagrams.md is stale: {_FIX}"
