"""The README's "Writing HIL tests" example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"


def _example() -> str:
    text = README.read_text()
    section = text.split("## Writing HIL tests", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's HIL section has no python example"
    return blocks[0]


def test_the_readme_hil_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme_example=_example())
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
