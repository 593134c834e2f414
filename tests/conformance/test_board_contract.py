"""The Board contract (hal/_board.py), one set of tests for every board.

Each test runs on every bench of conftest.py — the emulated board, the serial board to
the virtual device in-process, the serial board to ``serve --pty`` — so the boards
cannot drift apart. Tests use the contract only (``hal.Board`` and its
``FaultInjector``) and never assume a clock: every wait is ``bench.wait_until``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hal import (
    AnalogChannel,
    Board,
    Button,
    Crossing,
    DigitalInput,
    FaultInjector,
    ImagePage,
    IoHandle,
    IoState,
    JamPoint,
    Output,
    ResetCause,
    WindowCrossing,
)

if TYPE_CHECKING:
    from conftest import Bench  # tests/conformance/conftest.py


def test_identity_capabilities_and_lines(bench: Bench) -> None:
    board = bench.board
    assert isinstance(board, Board)
    assert board.config.name == "devkit"
    # A board offers fault injection exactly when it says so; the C device, like a real
    # board, does not.
    if bench.kind.startswith("mcu-"):
        assert "faults" not in board.capabilities and board.faults is None
    else:
        assert "faults" in board.capabilities
        assert isinstance(board.faults, FaultInjector)
    assert board.reset_cause is ResetCause.POWER_ON
    assert {spec.name for spec in board.irq.lines} == set(board.config.irq)


def test_inputs_at_rest(bench: Bench) -> None:
    board = bench.board
    levels = {pin: board.read_input(pin) for pin in DigitalInput}
    assert all(isinstance(level, bool) for level in levels.values())
    assert levels == {pin: pin is DigitalInput.PAPER_PRESENT for pin in DigitalInput}


def test_outputs_read_back_as_commanded(bench: Bench) -> None:
    board = bench.board
    assert not any(board.output(o) for o in Output)
    for output in Output:
        board.set_output(output, True)
    assert all(board.output(o) for o in Output)
    board.set_output(Output.HEATER, False)
    board.set_output(Output.LED_READY, False)
    bench.run_for(0.05)
    assert {o: board.output(o) for o in Output} == {
        o: o not in (Output.HEATER, Output.LED_READY) for o in Output
    }


def test_the_cover_raises_its_line_on_each_edge(bench: Bench) -> None:
    bench.faults.set_cover(True)
    bench.wait_until(lambda: bench.raised("cover_open") == [True], what="cover opened")
    assert bench.board.read_input(DigitalInput.COVER_OPEN)
    bench.faults.set_cover(False)
    bench.wait_until(lambda: bench.raised("cover_open") == [True, False], what="cover closed")
    assert not bench.board.read_input(DigitalInput.COVER_OPEN)


def test_emptying_and_loading_the_tray_raise_paper_present(bench: Bench) -> None:
    bench.faults.set_tray(0)
    bench.wait_until(lambda: bench.raised("paper_present") == [False], what="paper out")
    assert not bench.board.read_input(DigitalInput.PAPER_PRESENT)
    bench.faults.set_tray(5)
    bench.wait_until(lambda: bench.raised("paper_present") == [False, True], what="loaded")
    assert bench.board.read_input(DigitalInput.PAPER_PRESENT)


@pytest.mark.parametrize("button", list(Button))
def test_a_button_press_is_a_press_then_a_release(bench: Bench, button: Button) -> None:
    line = f"button_{button}"
    bench.faults.press(button)
    bench.wait_until(lambda: len(bench.raised(line)) == 2, what=f"{line} pressed and released")
    assert bench.raised(line) == [True, False]
    assert not bench.board.read_input(DigitalInput(line))
    bench.run_for(0.1)
    assert bench.raised(line) == [True, False]


def _sensor_edges(bench: Bench) -> list[tuple[str, object]]:
    return [(n, v) for n, v in bench.raises if n in ("feed_sensor", "exit_sensor")]


def test_a_sheet_passes_the_feed_then_the_exit_sensor(bench: Bench) -> None:
    board = bench.board
    board.set_output(Output.MOTOR, True)
    board.pulse_pickup()
    bench.wait_until(lambda: len(_sensor_edges(bench)) == 4, what="four sensor edges")
    # A sheet is longer than the gap between the sensors: it covers both at once.
    assert _sensor_edges(bench) == [
        ("feed_sensor", True), ("exit_sensor", True),
        ("feed_sensor", False), ("exit_sensor", False),
    ]
    assert not board.read_input(DigitalInput.FEED_SENSOR)
    assert not board.read_input(DigitalInput.EXIT_SENSOR)


def test_a_misfeed_eats_one_pickup(bench: Bench) -> None:
    board = bench.board
    bench.faults.misfeed()
    bench.run_for(0.05)
    board.set_output(Output.MOTOR, True)
    board.pulse_pickup()
    bench.run_for(0.3)
    assert _sensor_edges(bench) == []
    board.pulse_pickup()
    bench.wait_until(lambda: ("feed_sensor", True) in _sensor_edges(bench), what="fed")


def test_a_jammed_sheet_stays_on_its_sensor(bench: Bench) -> None:
    board = bench.board
    bench.faults.jam(JamPoint.FEED)
    bench.run_for(0.05)
    board.set_output(Output.MOTOR, True)
    board.pulse_pickup()
    bench.wait_until(lambda: board.read_input(DigitalInput.FEED_SENSOR), what="at the sensor")
    bench.run_for(0.3)
    assert _sensor_edges(bench) == [("feed_sensor", True)]
    assert board.read_input(DigitalInput.FEED_SENSOR)


def test_the_toner_comparator_fires_once_below_its_window(bench: Bench) -> None:
    board = bench.board
    bench.faults.set_toner_pct(4.0)
    bench.wait_until(lambda: board.read_analog(AnalogChannel.TONER_PCT) < 10.0,
                     what="the toner reading follows")
    board.set_window(AnalogChannel.TONER_PCT, 10.0, 100.0)  # already outside: fires at once
    bench.wait_until(lambda: bool(bench.raised("toner")), what="a toner crossing")
    bench.run_for(0.1)
    (crossing,) = bench.raised("toner")  # one-shot
    assert isinstance(crossing, WindowCrossing)
    assert crossing.channel is AnalogChannel.TONER_PCT
    assert crossing.crossing is Crossing.BELOW
    assert crossing.reading == pytest.approx(4.0, abs=1.0)


def test_the_toner_comparator_fires_above_when_a_cartridge_is_fitted(bench: Bench) -> None:
    board = bench.board
    bench.faults.set_toner_pct(5.0)
    bench.wait_until(lambda: board.read_analog(AnalogChannel.TONER_PCT) < 10.0)
    board.set_window(AnalogChannel.TONER_PCT, 0.0, 20.0)
    bench.run_for(0.1)
    assert bench.raised("toner") == []  # inside the window: nothing
    bench.faults.replace_toner()
    bench.wait_until(lambda: bool(bench.raised("toner")), what="a toner crossing")
    (crossing,) = bench.raised("toner")
    assert isinstance(crossing, WindowCrossing) and crossing.crossing is Crossing.ABOVE
    assert board.read_analog(AnalogChannel.TONER_PCT) > 90.0


def test_the_fuser_comparator_fires_when_the_heater_warms_it(bench: Bench) -> None:
    board = bench.board
    fuser = board.config.fuser
    assert board.read_analog(AnalogChannel.FUSER_C) == pytest.approx(fuser.ambient_c, abs=3.0)
    board.set_window(AnalogChannel.FUSER_C, -1000.0, fuser.ready_c)
    bench.run_for(0.1)
    assert bench.raised("fuser") == []  # cold, heater off: no crossing
    board.set_output(Output.HEATER, True)
    bench.wait_until(lambda: bool(bench.raised("fuser")), timeout_s=fuser.warmup_limit_s,
                     what="the fuser reaching ready")
    (crossing,) = bench.raised("fuser")
    assert isinstance(crossing, WindowCrossing)
    assert crossing.channel is AnalogChannel.FUSER_C and crossing.crossing is Crossing.ABOVE
    assert crossing.reading >= fuser.ready_c - 3.0


def test_the_regulator_holds_the_fuser_in_its_band_until_the_heater_is_taken_back(
    bench: Bench,
) -> None:
    board = bench.board
    fuser = board.config.fuser
    low, high = fuser.ready_c - fuser.hysteresis_c, fuser.ready_c + fuser.hysteresis_c
    cold = fuser.ready_c - 4 * fuser.hysteresis_c
    assert "regulator" in board.capabilities  # devkit's board file and every device here
    board.set_output(Output.HEATER, True)
    board.set_window(AnalogChannel.FUSER_C, -1000.0, low)
    bench.wait_until(lambda: bool(bench.raised("fuser")), timeout_s=fuser.warmup_limit_s,
                     what="the fuser reaching its band")
    board.regulate(Output.HEATER, AnalogChannel.FUSER_C, low, high)
    board.set_window(AnalogChannel.FUSER_C, cold, fuser.over_temp_c)
    readings = []
    for _ in range(60):  # 30 of the fuser's band cycles: it leaves the band in ~20 ms
        bench.run_for(0.025)
        readings.append(board.read_analog(AnalogChannel.FUSER_C))
    # The band, give or take what a reading sees between two of the device's samples.
    margin_c = 1.5 + 3 * fuser.thermistor_noise_c
    assert low - margin_c <= min(readings) and max(readings) <= high + margin_c, readings
    assert len(bench.raised("fuser")) == 1  # neither cold nor over: the band held
    board.set_output(Output.HEATER, False)  # the firmware takes it back: it cools
    bench.wait_until(lambda: len(bench.raised("fuser")) == 2, timeout_s=2.0,
                     what="the fuser cooling below its cold bound")
    crossing = bench.raised("fuser")[-1]
    assert isinstance(crossing, WindowCrossing) and crossing.crossing is Crossing.BELOW
    assert not board.output(Output.HEATER)


def test_an_empty_band_is_refused(bench: Bench) -> None:
    with pytest.raises(ValueError):
        bench.board.regulate(Output.HEATER, AnalogChannel.FUSER_C, 200.0, 100.0)


def test_an_empty_window_is_refused(bench: Bench) -> None:
    with pytest.raises(ValueError):
        bench.board.set_window(AnalogChannel.FUSER_C, 200.0, 100.0)


def test_an_imaging_request_starts_and_completes_on_the_next_sheet(bench: Bench) -> None:
    board = bench.board
    board.set_output(Output.LASER, True)
    board.set_output(Output.MOTOR, True)
    page = ImagePage(3, 7, 5.0)
    handle = board.submit(page)
    assert not handle.done  # returns at once
    board.pulse_pickup()
    bench.wait_until(lambda: handle.done, what="imaging done")
    assert handle.state is IoState.DONE
    assert handle.result == page
    assert [event.kind for event in handle.events] == ["imaging_started"]
    assert bench.raised("feed_sensor")[:1] == [True]


def test_an_imaging_request_fails_when_the_laser_is_off(bench: Bench) -> None:
    board = bench.board
    board.set_output(Output.MOTOR, True)
    handle = board.submit(ImagePage(1, 1, 5.0))
    board.pulse_pickup()
    bench.wait_until(lambda: handle.done, what="imaging failed")
    assert handle.state is IoState.FAILED
    assert handle.error is not None
    assert handle.events == []


def test_imaging_listeners_are_told_of_every_request_until_removed(bench: Bench) -> None:
    board = bench.board
    told: list[tuple[str, ImagePage, IoHandle, IoState]] = []

    def first(page: ImagePage, handle: IoHandle) -> None:
        told.append(("first", page, handle, handle.state))

    def second(page: ImagePage, handle: IoHandle) -> None:
        told.append(("second", page, handle, handle.state))

    board.add_imaging_listener(first)
    board.add_imaging_listener(second)
    page = ImagePage(2, 1, 5.0)
    handle = board.submit(page)
    # Told before submit returns, in the order added, with the handle it returns.
    assert told == [("first", page, handle, IoState.PENDING),
                    ("second", page, handle, IoState.PENDING)]
    board.remove_imaging_listener(first)
    again = board.submit(ImagePage(2, 2, 5.0))
    assert [(who, h) for who, _, h, _ in told[2:]] == [("second", again)]
    board.remove_imaging_listener(second)
    board.submit(ImagePage(2, 3, 5.0))
    assert len(told) == 3
    with pytest.raises(ValueError):
        board.remove_imaging_listener(second)


def test_kicks_keep_the_watchdog_quiet_and_their_absence_resets_the_board(
        bench: Bench) -> None:
    board = bench.board
    engine = board.config.engine
    kick_ns = round(engine.watchdog_kick_ms * 1e6)
    causes: list[ResetCause] = []
    board.set_reset_handler(causes.append)
    kicking = True

    def kick() -> None:
        if kicking:
            board.kick_watchdog()
            board.scheduler.call_later(kick_ns, kick)

    board.set_output(Output.HEATER, True)
    kick()
    bench.run_for(2.5 * engine.watchdog_timeout_ms / 1000)
    cause_while_kicked = board.reset_cause
    assert causes == [] and cause_while_kicked is ResetCause.POWER_ON
    kicking = False
    bench.wait_until(lambda: bool(causes), timeout_s=2.0 * engine.watchdog_timeout_ms / 1000,
                     what="the watchdog reset")
    assert causes == [ResetCause.WATCHDOG]
    assert board.reset_cause is ResetCause.WATCHDOG
    assert not any(board.output(o) for o in Output)
