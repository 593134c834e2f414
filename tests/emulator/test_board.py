"""EmulatedBoard (emulator/board.py): the hal.Board and hal.FaultInjector contracts on
the physics models, driven directly by the tests: imaging handles, pickups, faults,
probes, determinism, the regulator (a job printed with no firmware: test_board_driver.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from boards import BoardConfig, load_board
from emulator.board import EmulatedBoard
from emulator.physics import model_rng
from hal import (
    AnalogChannel,
    Board,
    Button,
    Crossing,
    DigitalInput,
    FaultInjector,
    ImagePage,
    IoEvent,
    IoState,
    IrqEvent,
    JamPoint,
    Output,
    ResetCause,
    Scheduler,
    WindowCrossing,
)
from tests.emulator._board_numbers import (
    DRUM_LEAD,
    DRUM_TRAIL,
    LENGTH,
    LP,
    MS,
    OUTPUT,
    PER_PAGE_AT_5,
    S,
    ns,
    running_board,
    warm_up_ns,
)


class Lines:
    """Records every interrupt the board raises: (t, line, value)."""

    def __init__(self, board: EmulatedBoard) -> None:
        self.seen: list[tuple[int, str, object]] = []
        for spec in board.irq.lines:
            board.irq.attach(spec.number, self._isr)

    def _isr(self, event: IrqEvent) -> None:
        self.seen.append((event.t_ns, event.name, event.value))

    def of(self, line: str) -> list[tuple[int, object]]:
        return [(t, v) for t, name, v in self.seen if name == line]


# -- the contract --------------------------------------------------------------------


def test_it_is_a_board_with_fault_injection() -> None:
    board = EmulatedBoard(LP)
    assert isinstance(board, Board)
    assert isinstance(board.faults, FaultInjector)
    assert "faults" in board.capabilities
    assert board.reset_cause is ResetCause.POWER_ON
    assert board.config is LP
    assert [spec.name for spec in board.irq.lines] == list(LP.irq)


def test_it_uses_the_scheduler_it_is_given() -> None:
    scheduler = Scheduler()
    board = EmulatedBoard(LP, scheduler)
    assert board.scheduler is scheduler and board.irq is not None


def test_power_on_state_comes_from_the_board_file() -> None:
    board = EmulatedBoard(LP)
    assert board.tray_sheets == LP.tray.loaded_sheets
    assert board.read_input(DigitalInput.PAPER_PRESENT)
    for pin in DigitalInput:
        if pin is not DigitalInput.PAPER_PRESENT:
            assert not board.read_input(pin)
    assert board.read_analog(AnalogChannel.FUSER_C) == LP.fuser.ambient_c
    assert board.read_analog(AnalogChannel.TONER_PCT) == LP.toner.loaded_pct
    assert board.fuser_temp_c == LP.fuser.ambient_c
    assert board.toner_level_pct == LP.toner.loaded_pct
    assert board.outputs == dict.fromkeys(Output, False)
    assert board.display == ("", "")
    assert (board.sheets_picked, board.sheets_delivered, board.sheets_removed) == (0, 0, 0)


def test_outputs_are_set_and_read_back() -> None:
    board = EmulatedBoard(LP)
    for output in Output:
        board.set_output(output, True)
        assert board.output(output)
    assert board.panel.led(Output.LED_TONER) and board.fuser.heating
    assert board.paper_path.motor_on
    board.set_output(Output.HEATER, False)
    assert not board.output(Output.HEATER) and not board.fuser.heating


def test_show_cuts_each_row_at_16_columns() -> None:
    board = EmulatedBoard(LP)
    board.show("PAPER JAM - OPEN COVER", "Ready")
    assert board.display == ("PAPER JAM - OPEN", "Ready")


def test_an_empty_window_is_misuse() -> None:
    board = EmulatedBoard(LP)
    with pytest.raises(ValueError, match="empty"):
        board.set_window(AnalogChannel.FUSER_C, 10.0, 5.0)


def test_sensor_edges_carry_the_new_level() -> None:
    board = running_board()
    lines = Lines(board)
    board.pulse_pickup()
    board.scheduler.run_until(10 * S)
    assert lines.of("feed_sensor") == [(ns(60), True), (ns(60 + LENGTH), False)]
    assert lines.of("exit_sensor") == [(ns(250), True), (ns(250 + LENGTH), False)]


def test_window_crossings_reach_the_firmware_as_interrupts() -> None:
    board = EmulatedBoard(LP)
    lines = Lines(board)
    board.set_window(AnalogChannel.FUSER_C, 0.0, LP.fuser.ready_c)
    board.set_window(AnalogChannel.TONER_PCT, 50.0, 100.0)
    board.set_output(Output.HEATER, True)
    board.faults.set_toner_pct(40.0)
    board.scheduler.run_until(60 * S)
    warm_ns = warm_up_ns(LP)
    assert lines.of("fuser") == [
        (warm_ns, WindowCrossing(AnalogChannel.FUSER_C, LP.fuser.ready_c, Crossing.ABOVE))
    ]
    assert lines.of("toner") == [(0, WindowCrossing(AnalogChannel.TONER_PCT, 40.0, Crossing.BELOW))]


# -- pickup ----------------------------------------------------------------------------


def test_a_pickup_takes_one_sheet_at_0_mm() -> None:
    board = running_board()
    board.pulse_pickup()
    assert board.tray_sheets == LP.tray.loaded_sheets - 1
    assert board.sheets_picked == 1 and board.sheets_in_path == 1
    assert board.paper_path.lead_mm(board.paper_path.sheets[0]) == 0.0


def test_a_pickup_slips_while_the_last_sheet_is_in_the_roller() -> None:
    board = running_board()
    board.pulse_pickup()
    board.scheduler.run_until(100 * MS)
    board.pulse_pickup()
    assert board.sheets_picked == 1 and board.tray_sheets == LP.tray.loaded_sheets - 1


def test_an_empty_tray_gives_nothing() -> None:
    board = running_board()
    board.faults.set_tray(0)
    board.pulse_pickup()
    assert board.sheets_picked == 0


def test_misfeed_eats_one_pulse() -> None:
    board = running_board()
    lines = Lines(board)
    board.faults.misfeed()
    board.pulse_pickup()
    assert board.sheets_picked == 0 and board.tray_sheets == LP.tray.loaded_sheets
    board.scheduler.run_until(2 * S)
    assert lines.of("feed_sensor") == []  # the firmware sees its feed edge never come
    board.pulse_pickup()  # the retry
    assert board.sheets_picked == 1
    board.scheduler.run_until(10 * S)
    assert lines.of("feed_sensor")[0] == (2 * S + ns(60), True)


def test_misfeeds_add_up() -> None:
    board = running_board()
    board.faults.misfeed()
    board.faults.misfeed()
    for _ in range(3):
        board.pulse_pickup()
    assert board.sheets_picked == 1


def test_the_last_sheet_raises_paper_present_false() -> None:
    board = running_board()
    board.faults.set_tray(1)
    lines = Lines(board)
    board.pulse_pickup()
    board.scheduler.run_until(0)
    assert lines.of("paper_present") == [(0, False)]
    assert not board.read_input(DigitalInput.PAPER_PRESENT)


# -- imaging ---------------------------------------------------------------------------


def test_imaging_starts_at_the_drum_and_completes_when_the_trail_leaves_it() -> None:
    board = running_board()
    page = ImagePage(job=7, page=1, coverage_pct=10.0)
    handle = board.submit(page)
    assert not handle.done and handle.request == page
    done_at: list[int] = []
    handle.on_done(lambda h: done_at.append(board.scheduler.now_ns))
    board.pulse_pickup()
    board.scheduler.run_until(DRUM_LEAD - 1)
    assert handle.events == []
    board.scheduler.run_until(DRUM_TRAIL - 1)
    assert handle.events == [IoEvent(DRUM_LEAD, "imaging_started")]
    assert board.toner_level_pct == 100.0  # toner is taken on completion
    board.scheduler.run_until(10 * S)
    assert handle.state is IoState.DONE and handle.result == page
    assert done_at == [DRUM_TRAIL]
    assert board.toner_level_pct == pytest.approx(100.0 - 2 * PER_PAGE_AT_5)
    assert board.delivered == [(OUTPUT, 7, 1)]


def test_a_request_binds_to_a_sheet_already_in_the_path() -> None:
    board = running_board()
    board.pulse_pickup()
    board.scheduler.run_until(300 * MS)
    handle = board.submit(ImagePage(1, 1, 5.0))
    board.scheduler.run_until(10 * S)
    assert handle.state is IoState.DONE
    assert handle.events == [IoEvent(DRUM_LEAD, "imaging_started")]


def test_requests_bind_to_sheets_in_order() -> None:
    board = running_board()
    pitch = LP.page_pitch_ns
    handles = [board.submit(ImagePage(1, k, 5.0)) for k in range(1, 4)]
    for k in range(3):
        board.scheduler.call_at(k * pitch, board.pulse_pickup)
    board.scheduler.run_until(30 * S)
    assert all(h.state is IoState.DONE for h in handles)
    assert board.delivered == [(k * pitch + OUTPUT, 1, k + 1) for k in range(3)]
    assert [h.events[0].t_ns for h in handles] == [k * pitch + DRUM_LEAD for k in range(3)]


def test_a_late_request_on_a_sheet_under_the_drum_starts_at_once() -> None:
    board = running_board()
    board.pulse_pickup()
    board.scheduler.run_until(DRUM_LEAD + 10 * MS)
    handle = board.submit(ImagePage(1, 1, 5.0))
    assert handle.events == [IoEvent(DRUM_LEAD + 10 * MS, "imaging_started")]
    board.scheduler.run_until(10 * S)
    assert handle.state is IoState.DONE


def test_a_request_after_the_trail_left_the_drum_waits_for_the_next_sheet() -> None:
    board = running_board()
    board.pulse_pickup()
    board.scheduler.run_until(DRUM_TRAIL)
    handle = board.submit(ImagePage(1, 1, 5.0))
    board.scheduler.run_until(10 * S)
    assert not handle.done and board.delivered == [None]  # the first sheet went blank
    board.pulse_pickup()
    board.scheduler.run_until(20 * S)
    assert handle.state is IoState.DONE and board.delivered[1] == (10 * S + OUTPUT, 1, 1)


def test_laser_off_when_imaging_would_start_fails_and_the_sheet_goes_blank() -> None:
    board = EmulatedBoard(LP)
    board.set_output(Output.MOTOR, True)
    handle = board.submit(ImagePage(1, 1, 5.0))
    board.pulse_pickup()
    board.scheduler.run_until(DRUM_LEAD - 1)
    board.set_output(Output.LASER, True)
    board.set_output(Output.LASER, False)
    board.scheduler.run_until(10 * S)
    assert handle.state is IoState.FAILED and handle.error is not None
    assert "laser off" in str(handle.error)
    assert board.delivered == [None] and board.toner_level_pct == 100.0
    # The spoiled sheet is not offered to the next request.
    again = board.submit(ImagePage(1, 1, 5.0))
    assert not again.done


def test_the_laser_is_sampled_when_imaging_starts() -> None:
    board = running_board()
    handle = board.submit(ImagePage(1, 1, 5.0))
    board.pulse_pickup()
    board.scheduler.call_at(DRUM_LEAD + 1, lambda: board.set_output(Output.LASER, False))
    board.scheduler.run_until(10 * S)
    assert handle.state is IoState.DONE


def test_cancel_before_the_drum_withdraws_the_sheet_and_the_next_request_waits() -> None:
    """A sheet whose request is cancelled before imaging passes blank: a request made
    (or queued) before or after the cancel takes the next sheet picked, never one
    already under way."""
    board = running_board()
    first = board.submit(ImagePage(1, 1, 5.0))
    second = board.submit(ImagePage(1, 2, 5.0))
    board.pulse_pickup()
    board.scheduler.run_until(100 * MS)
    assert first.cancel()
    assert first.state is IoState.CANCELLED and not first.cancel()
    third = board.submit(ImagePage(1, 3, 5.0))
    board.scheduler.run_until(10 * S)
    assert first.events == [] and not second.done and not third.done
    assert board.delivered == [None]
    board.pulse_pickup()
    board.scheduler.run_until(20 * S)
    assert second.state is IoState.DONE and not third.done
    assert board.delivered[-1] is not None and board.delivered[-1][1:] == (1, 2)


def test_cancel_of_a_queued_request() -> None:
    board = running_board()
    first = board.submit(ImagePage(1, 1, 5.0))
    second = board.submit(ImagePage(1, 2, 5.0))
    second.cancel()
    board.pulse_pickup()
    board.scheduler.run_until(4 * S)
    board.pulse_pickup()
    board.scheduler.run_until(20 * S)
    assert first.state is IoState.DONE and second.state is IoState.CANCELLED
    assert board.delivered == [(OUTPUT, 1, 1), None]


def test_cancel_midway_spoils_the_sheet() -> None:
    board = running_board()
    handle = board.submit(ImagePage(1, 1, 5.0))
    waiting = board.submit(ImagePage(1, 2, 5.0))
    board.pulse_pickup()
    board.scheduler.run_until(DRUM_LEAD + 1)
    handle.cancel()
    board.scheduler.run_until(10 * S)
    assert handle.state is IoState.CANCELLED and not waiting.done
    assert board.delivered == [None] and board.toner_level_pct == 100.0


def test_opening_the_cover_fails_requests_on_pulled_sheets() -> None:
    board = running_board()
    before = board.submit(ImagePage(1, 1, 5.0))
    board.pulse_pickup()
    board.scheduler.run_until(2_100 * MS)
    during = board.submit(ImagePage(1, 2, 5.0))
    board.pulse_pickup()
    queued = board.submit(ImagePage(1, 3, 5.0))
    board.scheduler.run_until(2_100 * MS + DRUM_LEAD + 1)
    assert before.state is IoState.DONE and during.events
    board.faults.set_cover(True)
    assert during.state is IoState.FAILED and "pulled" in str(during.error)
    assert not queued.done  # not bound to any sheet yet: it waits for the next one
    assert board.sheets_removed == 2 and board.sheets_in_path == 0


def test_a_request_fails_when_its_sheet_is_pulled_before_the_drum() -> None:
    board = running_board()
    handle = board.submit(ImagePage(1, 1, 5.0))
    board.faults.jam(JamPoint.FEED)
    board.pulse_pickup()
    board.scheduler.run_until(30 * S)
    assert not handle.done
    board.faults.set_cover(True)
    assert handle.state is IoState.FAILED
    assert str(handle.error) == "sheet 1 pulled out of the path before it was imaged"


# -- faults ----------------------------------------------------------------------------


def test_jam_at_feed_the_sensor_stays_covered_and_the_cover_clears_it() -> None:
    board = running_board()
    lines = Lines(board)
    board.faults.jam(JamPoint.FEED)
    board.pulse_pickup()
    board.scheduler.run_until(60 * S)
    assert lines.of("feed_sensor") == [(ns(60), True)]
    assert lines.of("exit_sensor") == []
    assert board.read_input(DigitalInput.FEED_SENSOR) and board.sheets_delivered == 0
    board.faults.set_cover(True)
    board.scheduler.run_until(61 * S)
    assert lines.of("cover_open") == [(60 * S, True)]
    assert lines.of("feed_sensor")[-1] == (60 * S, False)
    assert board.sheets_removed == 1 and board.sheets_in_path == 0
    board.faults.set_cover(False)
    board.pulse_pickup()
    board.scheduler.run_until(70 * S)
    assert board.sheets_delivered == 1  # the jam was one sheet's; the path works again


def test_jam_at_exit() -> None:
    board = running_board()
    lines = Lines(board)
    board.pulse_pickup()
    board.scheduler.run_until(ns(100))
    board.faults.jam(JamPoint.EXIT)  # the sheet approaching the exit sensor
    board.scheduler.run_until(60 * S)
    assert lines.of("exit_sensor") == [(ns(250), True)]
    assert board.read_input(DigitalInput.EXIT_SENSOR)
    assert board.paper_path.lead_mm(board.paper_path.sheets[0]) == 250.0


def test_set_cover_closed_and_repeated() -> None:
    board = EmulatedBoard(LP)
    lines = Lines(board)
    board.faults.set_cover(False)
    board.faults.set_cover(True)
    board.faults.set_cover(True)
    board.faults.set_cover(False)
    board.scheduler.run_until(0)
    assert lines.of("cover_open") == [(0, True), (0, False)]
    assert not board.cover_open


def test_set_toner_pct_and_its_range() -> None:
    board = EmulatedBoard(LP)
    board.faults.set_toner_pct(0.5)
    assert board.toner_level_pct == 0.5
    assert board.read_analog(AnalogChannel.TONER_PCT) == 0.5
    with pytest.raises(ValueError):
        board.faults.set_toner_pct(101.0)


def test_replace_toner_opens_and_closes_the_cover_around_it() -> None:
    board = running_board()
    lines = Lines(board)
    board.faults.set_toner_pct(3.0)
    board.pulse_pickup()
    board.scheduler.run_until(1 * S)
    board.set_window(AnalogChannel.TONER_PCT, 0.0, LP.toner.low_pct)
    board.faults.replace_toner()
    board.scheduler.run_until(1 * S)
    assert board.toner_level_pct == 100.0
    assert lines.of("cover_open") == [(1 * S, True), (1 * S, False)]
    assert board.sheets_removed == 1  # opening the cover lets the path be cleared too
    assert lines.of("toner") == [
        (1 * S, WindowCrossing(AnalogChannel.TONER_PCT, 100.0, Crossing.ABOVE))
    ]


def test_replace_toner_with_the_cover_already_open_leaves_it_open() -> None:
    board = EmulatedBoard(LP)
    board.faults.set_cover(True)
    board.faults.replace_toner()
    assert board.cover_open and board.toner_level_pct == 100.0


def test_set_tray() -> None:
    board = EmulatedBoard(LP)
    lines = Lines(board)
    board.faults.set_tray(0)
    board.faults.set_tray(100)
    board.scheduler.run_until(0)
    assert board.tray_sheets == 100
    assert lines.of("paper_present") == [(0, False), (0, True)]
    with pytest.raises(ValueError):
        board.faults.set_tray(LP.tray.capacity_sheets + 1)


def test_press() -> None:
    board = EmulatedBoard(LP)
    lines = Lines(board)
    board.faults.press(Button.CONTINUE)
    assert board.read_input(DigitalInput.BUTTON_CONTINUE)
    board.scheduler.run_until(1 * S)
    assert lines.of("button_continue") == [(0, True), (100 * MS, False)]
    assert not board.read_input(DigitalInput.BUTTON_CONTINUE)


def test_set_heater_failed() -> None:
    board = EmulatedBoard(LP)
    board.faults.set_heater_failed(True)
    board.set_output(Output.HEATER, True)
    board.scheduler.run_until(30 * S)
    assert board.fuser_temp_c == LP.fuser.ambient_c and board.output(Output.HEATER)
    board.faults.set_heater_failed(False)
    board.scheduler.run_until(60 * S)
    assert board.fuser_temp_c > LP.fuser.ready_c


def test_a_sheet_through_the_nip_cools_the_fuser() -> None:
    board = running_board()
    board.set_output(Output.HEATER, True)
    board.scheduler.run_until(20 * S)
    board.set_output(Output.HEATER, False)
    hot = board.fuser_temp_c
    board.pulse_pickup()
    nip = ns(LP.paper_path.fuser_mm)
    board.scheduler.run_until(20 * S + nip)
    tau = LP.fuser.tau_s
    expected = LP.fuser.ambient_c + (hot - LP.fuser.ambient_c) * math.exp(-nip / 1e9 / tau)
    assert board.fuser_temp_c == pytest.approx(expected - LP.fuser.sheet_draw_c)


# -- determinism -------------------------------------------------------------------------


def noisy_config() -> BoardConfig:
    return dataclasses.replace(
        LP,
        fuser=dataclasses.replace(LP.fuser, thermistor_noise_c=1.5),
        toner=dataclasses.replace(LP.toner, sensor_noise_pct=2.0),
    )


def readings(seed: int) -> list[float]:
    board = running_board(noisy_config(), seed)
    board.set_output(Output.HEATER, True)
    out = []
    for k in range(20):
        board.submit(ImagePage(1, k, 5.0))
        board.scheduler.call_at(k * LP.page_pitch_ns, board.pulse_pickup)
    for k in range(100):
        board.scheduler.run_until(k * 500 * MS)
        out.append(board.read_analog(AnalogChannel.FUSER_C))
        out.append(board.read_analog(AnalogChannel.TONER_PCT))
    return out


def test_same_seed_same_readings_different_seed_different() -> None:
    assert readings(11) == readings(11)
    assert readings(11) != readings(12)


def test_each_model_has_its_own_stream() -> None:
    # The fuser's draws do not depend on how much the toner sensor drew.
    a = EmulatedBoard(noisy_config(), seed=5)
    b = EmulatedBoard(noisy_config(), seed=5)
    for _ in range(50):
        b.faults.set_toner_pct(50.0)
    assert [a.read_analog(AnalogChannel.FUSER_C) for _ in range(10)] == [
        b.read_analog(AnalogChannel.FUSER_C) for _ in range(10)
    ]
    assert model_rng(5, "fuser").random() == model_rng(5, "fuser").random()
    assert model_rng(5, "fuser").random() != model_rng(5, "toner").random()


# -- probes ------------------------------------------------------------------------------


def test_a_probe_gets_the_initial_values_then_every_change() -> None:
    board = running_board()
    seen: list[tuple[int, str, str, object]] = []
    board.add_probe(lambda t, scope, signal, value: seen.append((t, scope, signal, value)))
    initial = {(scope, signal): value for _, scope, signal, value in seen}
    assert initial[("board", "motor")] is True
    assert initial[("tray", "sheets")] == LP.tray.loaded_sheets
    assert initial[("fuser", "temp_c")] == LP.fuser.ambient_c
    assert initial[("panel", "cover_open")] is False
    seen.clear()

    board.submit(ImagePage(3, 4, 5.0))
    board.pulse_pickup()
    board.scheduler.run_until(10 * S)
    board.faults.jam(JamPoint.FEED)
    board.show("HELLO", "")
    board.set_output(Output.MOTOR, True)  # no change: not reported

    changes = [(t, scope, signal, value) for t, scope, signal, value in seen]
    assert (0, "tray", "sheets", LP.tray.loaded_sheets - 1) in changes
    assert (0, "paper_path", "picked", 1) in changes
    assert (ns(60), "paper_path", "feed_sensor", True) in changes
    assert (ns(250), "paper_path", "exit_sensor", True) in changes
    assert (ns(LP.paper_path.fuser_mm), "fuser", "temp_c", LP.fuser.ambient_c - 4.0) in changes
    assert (DRUM_TRAIL, "toner", "level_pct", 100.0 - PER_PAGE_AT_5) in changes
    assert (OUTPUT, "paper_path", "delivered", 1) in changes
    assert (10 * S, "board", "fault", "jam:feed") in changes
    assert (10 * S, "panel", "row0", "HELLO") in changes
    assert not [c for c in changes if c[2] == "motor"]


def test_every_fault_is_probed() -> None:
    board = EmulatedBoard(LP)
    faults: list[object] = []

    def probe(t_ns: int, scope: str, signal: str, value: object) -> None:
        if signal == "fault":
            faults.append(value)

    board.add_probe(probe)
    board.faults.set_toner_pct(50.0)
    board.faults.replace_toner()
    board.faults.set_tray(3)
    board.faults.jam(JamPoint.EXIT)
    board.faults.misfeed()
    board.faults.set_cover(True)
    board.faults.press(Button.CANCEL)
    board.faults.set_heater_failed(True)
    assert faults == [
        "set_toner_pct:50.0",
        "replace_toner",
        "set_tray:3",
        "jam:exit",
        "misfeed",
        "set_cover:open",
        "press:cancel",
        "set_heater_failed:True",
    ]


def test_without_probes_the_models_have_no_observer() -> None:
    board = EmulatedBoard(LP)
    models = (board.paper_path, board.fuser, board.toner, board.tray, board.panel)
    assert all(m.observer is None for m in models)

    def probe(t: int, scope: str, signal: str, value: object) -> None:
        return None

    board.add_probe(probe)
    assert all(m.observer is not None for m in models)
    board.remove_probe(probe)
    assert all(m.observer is None for m in models)


def test_the_regulator_is_the_board_files_and_only_for_the_heater_by_the_fuser() -> None:
    assert "regulator" not in EmulatedBoard(LP).capabilities
    with pytest.raises(ValueError, match="no regulator"):
        EmulatedBoard(LP).regulate(Output.HEATER, AnalogChannel.FUSER_C, 170.0, 180.0)
    devkit = EmulatedBoard(load_board("devkit"))
    assert "regulator" in devkit.capabilities
    with pytest.raises(ValueError, match="only heater by fuser_c"):
        devkit.regulate(Output.MOTOR, AnalogChannel.FUSER_C, 170.0, 180.0)
    with pytest.raises(ValueError, match="empty"):
        devkit.regulate(Output.HEATER, AnalogChannel.FUSER_C, 180.0, 170.0)


def test_the_regulators_switches_are_the_heaters_state_and_probed_until_taken_back() -> None:
    board = EmulatedBoard(load_board("devkit"))
    seen: list[tuple[int, bool]] = []
    board.add_probe(lambda t, scope, signal, value: seen.append((t, bool(value)))
                    if (scope, signal) == ("board", "heater") else None)
    seen.clear()
    board.regulate(Output.HEATER, AnalogChannel.FUSER_C, 100.0, 110.0)  # cold: on at once
    assert board.output(Output.HEATER) and seen == [(0, True)]
    board.scheduler.run_until(2 * S)
    assert len(seen) > 10 and [on for _, on in seen[:3]] == [True, False, True]
    assert board.outputs[Output.HEATER] is seen[-1][1]
    assert 100.0 - 1e-6 <= board.fuser_temp_c <= 110.0 + 1e-6
    board.set_output(Output.HEATER, False)
    switches = len(seen)
    board.scheduler.run_until(4 * S)
    assert len(seen) <= switches + 1 and not board.output(Output.HEATER)
    assert board.fuser_temp_c < 100.0
