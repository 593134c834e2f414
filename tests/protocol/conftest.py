"""Fixtures of the spec-conformance tests: a fresh device of each implementation with a
session brought up by hand (``tests/protocol/_line.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.protocol._line import IMPLEMENTATIONS, RawLine, Session, device, open_session


@pytest.fixture(params=IMPLEMENTATIONS)
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A freshly launched device of each implementation, its session up, and the frames
    it sent up to its first event: where the page's examples start."""
    with device(request.param) as url:
        line = RawLine(url)
        try:
            yield open_session(request.param, line)
        finally:
            line.close()
