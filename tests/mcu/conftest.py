"""Fixtures of the C reference device's tests: a device per kind, launched per test.

``mcu_device`` is parametrized over :data:`DEVICE_KINDS` (the host build on a pty, and
the Cortex-M builds under QEMU); each test gets a freshly launched device, stopped and
cleaned up afterwards. ``devkit`` is the board file they all run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from boards import BoardConfig, load_board
from tests.mcu._mcu import DEVICE_KINDS, McuDevice


@pytest.fixture(scope="session")
def devkit() -> BoardConfig:
    return load_board("devkit")


@pytest.fixture(params=DEVICE_KINDS)
def mcu_device(request: pytest.FixtureRequest) -> Iterator[McuDevice]:
    """A freshly launched device of each kind."""
    with McuDevice(request.param) as device:
        yield device
