"""The C reference device (mcu/) in the tests: :mod:`benchmarks.mcu_device` builds and
launches it; here what it cannot do becomes a test outcome. A missing tool (a compiler,
QEMU, newlib, zcbor's sources) skips with ``missing tool: ...`` (a failure in CI, by
tests/conftest.py); a failed build or launch fails the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import mcu_device
from benchmarks.mcu_device import MCU_DIR, QEMU_MACHINES
from boards import BoardConfig
from hal.serial import SerialBoard
from tests.conftest import MISSING_TOOL

__all__ = ["DEVICE_KINDS", "MCU_DIR", "QEMU_MACHINES", "McuDevice", "build", "serial_board"]

DEVICE_KINDS = ("host", "microbit", "mps2")
"""The devices every link test runs on (``host-asan`` joins where memory matters)."""


@contextlib.contextmanager
def _as_test_outcome() -> Iterator[None]:
    try:
        yield
    except mcu_device.ToolMissing as exc:
        pytest.skip(f"{MISSING_TOOL}{exc}")
    except mcu_device.BuildFailed as exc:
        pytest.fail(f"{exc}\n{exc.output}", pytrace=False)
    except mcu_device.DeviceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def build(target: str) -> Path:
    """Build ``target`` (see :func:`benchmarks.mcu_device.build`), or skip / fail."""
    with _as_test_outcome():
        return mcu_device.build(target)


class McuDevice(mcu_device.McuDevice):
    """:class:`benchmarks.mcu_device.McuDevice`, whose launch skips or fails the test
    when the device cannot be had."""

    def start(self) -> str:
        with _as_test_outcome():
            return super().start()


@contextlib.contextmanager
def serial_board(device: mcu_device.McuDevice, config: BoardConfig,
                 **options: Any) -> Iterator[SerialBoard]:
    """A :class:`SerialBoard` on ``device`` at its line rate (``options`` for the
    board), closed however the test ends."""
    board = SerialBoard(device.url, config, baud=device.line_baud, **options)
    try:
        yield board
    finally:
        board.close()
