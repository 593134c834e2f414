"""The serial benchmark's per-device figures (benchmarks/mcu_device.py): a device that
cannot be built is reported unavailable with the reason, never a failure. Plumbing only:
no timing is asserted."""

from __future__ import annotations

import pytest

from benchmarks import _serial, mcu_device


def test_a_missing_tool_makes_the_device_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mcu_device, "_BUILT", {})
    monkeypatch.setattr(mcu_device.shutil, "which", lambda _tool: None)
    with pytest.raises(mcu_device.DeviceUnavailable, match="not installed"):
        mcu_device.build("microbit")
    figures = _serial._device_figures("microbit", count=1, pages=1)
    assert figures["available"] is False
    assert "qemu-system-arm" in figures["reason"]


def test_the_cortex_m_builds_are_opened_at_115200_baud() -> None:
    assert mcu_device.McuDevice("mps2").line_baud == 115_200
    assert mcu_device.McuDevice("host").line_baud is None
