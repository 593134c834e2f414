"""The C device's heater regulator (``output.regulate``, capability ``"regulator"``): the
device itself switches the heater from ``fuser_c`` every ``MCU_ADC_SAMPLE_US``, so the
fuser stays in its band however slow the link (QEMU's UARTs among them); ``output.set``
of the heater, and link loss, end it. Sent as raw requests (``SerialBoard.query``).
"""

from __future__ import annotations

import re
import time

import pytest

from boards import BoardConfig
from hal.serial import BadArgument, NotSupported, SerialBoard
from tests.mcu._mcu import MCU_DIR, McuDevice, serial_board

S = 1_000_000_000

HOLD_S = 1.5
"""Real time the band is watched for (about 25 of the devkit fuser's cycles)."""

LATE_S = 0.002
"""How late the device's main loop takes a sample, beyond its period, as a rule: the
host build's process or QEMU's timer scheduled late, or a QEMU port writing an answer
byte by byte (measured: up to 2 ms on the host build, 4 ms under QEMU)."""

RARELY_LATE_S = 0.015
"""How late it may be now and then on a machine the tests share (13 ms seen once, with
other tests running). A loop closed by the host is late by the link's round trip, every
time."""

MOSTLY = 0.9
"""The share of readings that must lie within the band and the usual lateness's margin."""


def _sample_period_s() -> float:
    config = (MCU_DIR / "include" / "printer_mcu" / "config.h").read_text()
    match = re.search(r"#define MCU_ADC_SAMPLE_US (\d+)u", config)
    assert match is not None
    return int(match.group(1)) / 1e6


def _band(config: BoardConfig) -> tuple[float, float]:
    """The firmware's own band: ``ready_c`` ± ``hysteresis_c``."""
    fuser = config.fuser
    return fuser.ready_c - fuser.hysteresis_c, fuser.ready_c + fuser.hysteresis_c


def _margin_c(config: BoardConfig, late_s: float) -> float:
    """How far past the band the fuser can get between two samples: its fastest rate near
    the band (cooling at the bottom, heating at the top; first order towards ambient or
    ``max_c``) over a sampling period and a wake ``late_s`` late."""
    fuser = config.fuser
    low_c, high_c = _band(config)
    rate_c_s = max(low_c - fuser.ambient_c, fuser.max_c - high_c) / fuser.tau_s
    return rate_c_s * (_sample_period_s() + late_s)




def _fuser_c(board: SerialBoard) -> float:
    value = board.query("analog.read", {"channel": "fuser_c"}, timeout_s=5.0)["value"]
    assert isinstance(value, float)
    return value


def _heater(board: SerialBoard) -> bool:
    on = board.query("board.snapshot", timeout_s=5.0)["outputs"]["heater"]
    assert isinstance(on, bool)
    return on


def _regulate(board: SerialBoard, low_c: float, high_c: float,
              output: str = "heater", channel: str = "fuser_c") -> None:
    result = board.query("output.regulate",
                         {"output": output, "channel": channel, "low": low_c, "high": high_c},
                         timeout_s=5.0)
    assert result is None


def _reach_band(board: SerialBoard, config: BoardConfig) -> None:
    """Regulate from cold: on at once (the rule applies to the first sample), then the
    fuser warms into the band within its warm-up limit."""
    low_c, high_c = _band(config)
    assert _fuser_c(board) < low_c
    _regulate(board, low_c, high_c)
    assert _heater(board)  # below the band: switched on by the device, no output.set
    assert board.scheduler.run_until(lambda: _fuser_c(board) >= low_c,
                                     timeout_ns=round(config.fuser.warmup_limit_s * 2 * S))


def _readings(board: SerialBoard, seconds: float) -> list[float]:
    """``fuser_c`` read over ``seconds`` of real time (``analog.read``: a short answer,
    which holds the device's loop up least on ports that write byte by byte)."""
    readings: list[float] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        readings.append(_fuser_c(board))
    return readings


def _heater_states(board: SerialBoard, seconds: float) -> set[bool]:
    """The heater's states the snapshots show, until both are seen or ``seconds`` pass."""
    states: set[bool] = set()
    until = time.monotonic() + seconds
    while len(states) < 2 and time.monotonic() < until:
        states.add(_heater(board))
    return states


def test_the_device_holds_the_fuser_in_the_band_by_itself(mcu_device: McuDevice,
                                                          devkit: BoardConfig) -> None:
    """The readings over 1.5 s lie in the band, give or take what the fuser moves in a
    sampling period and a late wake (a loop closed over the link would be tens of ms late
    on QEMU), and the snapshot shows the heater the device switched both ways."""
    low_c, high_c = _band(devkit)
    margin_c = _margin_c(devkit, LATE_S)
    rare_margin_c = _margin_c(devkit, RARELY_LATE_S)
    assert rare_margin_c < high_c - low_c  # the test means it
    with serial_board(mcu_device, devkit, analog_poll_s=None) as board:
        _reach_band(board, devkit)
        readings = _readings(board, HOLD_S)
        heater = _heater_states(board, HOLD_S)
        board.query("output.set", {"output": "heater", "on": False}, timeout_s=5.0)
    assert len(readings) >= 20
    assert low_c - rare_margin_c <= min(readings), (min(readings), low_c, rare_margin_c)
    assert max(readings) <= high_c + rare_margin_c, (max(readings), high_c, rare_margin_c)
    held = [r for r in readings if low_c - margin_c <= r <= high_c + margin_c]
    assert len(held) >= MOSTLY * len(readings), (len(held), len(readings), margin_c)
    assert heater == {True, False}


def test_output_set_of_the_heater_ends_the_regulation(mcu_device: McuDevice,
                                                      devkit: BoardConfig) -> None:
    low_c, _high_c = _band(devkit)
    with serial_board(mcu_device, devkit, analog_poll_s=None) as board:
        _reach_band(board, devkit)
        board.query("output.set", {"output": "heater", "on": False}, timeout_s=5.0)
        board.scheduler.run_until(lambda: False, timeout_ns=round(2 * devkit.fuser.tau_s * S))
        cooled_c = _fuser_c(board)
        # Below the band for a while: a regulator still on would have switched it back.
        states = {_heater(board) for _ in range(5)}
        board.scheduler.run_until(lambda: False, timeout_ns=round(devkit.fuser.tau_s * S))
        colder_c = _fuser_c(board)
        states.add(_heater(board))
    assert cooled_c < low_c - 20.0
    assert colder_c < cooled_c
    assert states == {False}


def test_the_device_refuses_a_pair_it_cannot_regulate_and_an_empty_band(
    devkit: BoardConfig
) -> None:
    low_c, high_c = _band(devkit)
    with McuDevice("host") as device, serial_board(device, devkit, analog_poll_s=None) as board:
        for output, channel in (("heater", "toner_pct"), ("motor", "fuser_c")):
            with pytest.raises(NotSupported) as refused:
                _regulate(board, low_c, high_c, output=output, channel=channel)
            assert "heater by fuser_c" in refused.value.message
        with pytest.raises(BadArgument) as empty:
            _regulate(board, high_c, low_c)
        assert "low > high" in empty.value.message
        for args in ({"output": "heater", "channel": "fuser_c", "low": low_c},
                     {"output": "kettle", "channel": "fuser_c", "low": low_c, "high": high_c},
                     {"output": "heater", "channel": "fuser_c", "low": "cold",
                      "high": high_c}):
            with pytest.raises(BadArgument):
                board.query("output.regulate", args, timeout_s=5.0)
        # Nothing was taken on: the heater stays off, the fuser cold.
        board.scheduler.run_until(lambda: False, timeout_ns=round(devkit.fuser.tau_s * S))
        assert not _heater(board)
        assert _fuser_c(board) < low_c


def test_link_loss_ends_the_regulation(devkit: BoardConfig) -> None:
    """The safe state ends the regulation before it cuts the heater: the next session
    finds the heater off and the fuser cooling, nothing switching it back on."""
    low_c, _high_c = _band(devkit)
    with McuDevice("host") as device:
        with serial_board(device, devkit, analog_poll_s=None) as board:
            assert board.hello is not None
            assert "regulator" in board.hello.capabilities
            boot = board.hello.boot_nonce
            dead_after_s = board.hello.dead_after_ns / S
            _reach_band(board, devkit)
        time.sleep(dead_after_s * 1.5)  # the host is gone: the device hears nothing
        with serial_board(device, devkit, analog_poll_s=None) as board:
            assert board.hello is not None and board.hello.boot_nonce == boot  # no reboot
            first = board.query("board.snapshot", timeout_s=5.0)
            board.scheduler.run_until(lambda: False, timeout_ns=round(devkit.fuser.tau_s * S))
            later = board.query("board.snapshot", timeout_s=5.0)
    assert not first["outputs"]["heater"] and not later["outputs"]["heater"]
    assert first["analog"]["fuser_c"] < low_c
    assert later["analog"]["fuser_c"] < first["analog"]["fuser_c"]
