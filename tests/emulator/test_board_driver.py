"""EmulatedBoard (emulator/board.py) printing a job with no firmware: a tiny test-local
driver warms the fuser, picks at the pitch and images every page, and the board's
physics is checked against the equations, its cost in events, and a jam cleared."""

from __future__ import annotations

import pytest

from emulator.board import EmulatedBoard
from hal import (
    AnalogChannel,
    Crossing,
    DigitalInput,
    ImagePage,
    IoHandle,
    IoState,
    IrqEvent,
    JamPoint,
    Output,
    WindowCrossing,
)
from tests.emulator._board_numbers import (
    LP,
    OUTPUT,
    PER_PAGE_AT_5,
    S,
    ns,
    running_board,
    warm_up_ns,
)


class Driver:
    """Just enough of a printer to print a job: warm the fuser with the comparator, then
    keep it in its band (bang-bang on half-windows), pick a sheet every page pitch, image
    every page, and stop when the last sheet has left the exit sensor."""

    def __init__(self, board: EmulatedBoard, pages: int, coverage_pct: float = 5.0) -> None:
        self.board = board
        self.pages = pages
        self.coverage_pct = coverage_pct
        self.handles: list[IoHandle] = []
        self.exited = 0
        self.ready_at: int | None = None
        self.finished_at: int | None = None
        board.irq.attach("fuser", self._on_fuser)
        board.irq.attach("exit_sensor", self._on_exit)
        f = board.config.fuser
        self.low_c, self.high_c = f.ready_c - f.hysteresis_c, f.ready_c + f.hysteresis_c
        board.set_output(Output.HEATER, True)
        board.set_window(AnalogChannel.FUSER_C, -273.0, f.ready_c)

    def _on_fuser(self, event: IrqEvent) -> None:
        crossing = event.value
        assert isinstance(crossing, WindowCrossing)
        if self.ready_at is None:
            self.ready_at = event.t_ns
            self._start()
        # Arm only the bound the new heater state moves toward: a sheet can take the
        # fuser below the band at once, and re-arming [low, high] then would fire again
        # at once, for ever, in the same instant.
        heat = crossing.crossing is Crossing.BELOW
        self.board.set_output(Output.HEATER, heat)
        if heat:
            self.board.set_window(AnalogChannel.FUSER_C, -273.0, self.high_c)
        else:
            self.board.set_window(AnalogChannel.FUSER_C, self.low_c, 1000.0)

    def _start(self) -> None:
        board = self.board
        board.set_output(Output.MOTOR, True)
        board.set_output(Output.LASER, True)
        pitch = board.config.page_pitch_ns
        for k in range(self.pages):
            self.handles.append(board.submit(ImagePage(1, k + 1, self.coverage_pct)))
            board.scheduler.call_later(k * pitch, board.pulse_pickup)

    def _on_exit(self, event: IrqEvent) -> None:
        if event.value is False:
            self.exited += 1
            if self.exited == self.pages:
                # Run the last sheet on from the exit sensor into the output tray.
                path = self.board.config.paper_path
                self.board.scheduler.call_later(
                    ns(path.output_mm - path.exit_sensor_mm, self.board.paper_path.speed_mm_s),
                    self._finish,
                )

    def _finish(self) -> None:
        self.finished_at = self.board.scheduler.now_ns
        for output in (Output.MOTOR, Output.LASER, Output.HEATER):
            self.board.set_output(output, False)
        self.board.set_window(AnalogChannel.FUSER_C, -273.0, 1000.0)


def test_a_driver_prints_a_job_to_the_equations() -> None:
    board = EmulatedBoard(LP)
    driver = Driver(board, pages=20, coverage_pct=5.0)
    board.scheduler.run()
    f = LP.fuser
    ready = warm_up_ns(LP)
    assert driver.ready_at == ready
    pitch = LP.page_pitch_ns
    assert board.delivered == [(ready + k * pitch + OUTPUT, 1, k + 1) for k in range(20)]
    assert all(h.state is IoState.DONE for h in driver.handles)
    assert board.toner_level_pct == pytest.approx(100.0 - 20 * PER_PAGE_AT_5)
    assert board.tray_sheets == LP.tray.loaded_sheets - 20
    assert driver.finished_at == ready + 19 * pitch + OUTPUT
    # The fuser was held in its band all along (each sheet drew 4 C, the heater made up).
    assert f.ready_c - f.hysteresis_c - f.sheet_draw_c <= board.fuser_temp_c
    assert not any(board.outputs.values())


def test_a_driver_runs_a_ream_in_a_handful_of_events_per_page() -> None:
    board = EmulatedBoard(LP)
    Driver(board, pages=250)
    board.scheduler.run()
    assert board.sheets_delivered == 250 and not board.read_input(DigitalInput.PAPER_PRESENT)
    # Per page: 8 landmarks, 4 sensor-edge dispatches, the pickup, and the driver's
    # thermostat (a crossing timer and its dispatch, about twice a page).
    assert board.scheduler.events_run / 250 < 20


def test_the_physics_of_a_page_is_a_fixed_handful_of_events() -> None:
    board = running_board()
    for k in range(50):
        board.submit(ImagePage(1, k, 5.0))
        board.scheduler.call_at(k * LP.page_pitch_ns, board.pulse_pickup)
    board.scheduler.run()
    assert board.sheets_delivered == 50
    # The pickup, 8 landmarks and 4 sensor-edge dispatches: nothing else, no ticks.
    assert board.scheduler.events_run == 50 * (1 + 8 + 4)


def test_a_driver_meets_a_jam_and_the_user_clears_it() -> None:
    board = EmulatedBoard(LP)
    driver = Driver(board, pages=3)
    ready = warm_up_ns(LP)
    board.scheduler.run_until(ready + LP.page_pitch_ns + 1 * S)
    board.faults.jam(JamPoint.EXIT)  # the 2nd sheet (at 200 mm) approaching the exit
    board.scheduler.run_until(60 * S)
    assert board.sheets_delivered == 1
    assert board.read_input(DigitalInput.EXIT_SENSOR)
    # The 3rd pickup slipped: the stuck sheet's trail (at -47 mm) still fills the roller.
    assert board.sheets_picked == 2
    board.faults.set_cover(True)
    assert board.sheets_removed == 1
    assert [h.state for h in driver.handles] == [IoState.DONE, IoState.FAILED, IoState.PENDING]
