"""The watchdog (emulator/physics/_watchdog.py) and the board reset it causes
(emulator/board.py): idle until the first kick, a reset exactly ``timeout`` after the
last kick, then outputs off, the motor stopped with sheets where they are, pending
imaging failed, ISRs detached, ``reset_cause`` WATCHDOG and the reset handler run."""

from __future__ import annotations

from boards import load_board
from emulator.board import EmulatedBoard
from emulator.physics import Watchdog
from hal import (
    AnalogChannel,
    ImagePage,
    IoState,
    IrqEvent,
    Output,
    ResetCause,
    Scheduler,
)

LP = load_board("lp-2000")
MS = 1_000_000
S = 1_000_000_000
TIMEOUT_NS = round(LP.engine.watchdog_timeout_ms * MS)  # 1 s


class Dog:
    def __init__(self) -> None:
        self.scheduler = Scheduler()
        self.expired: list[int] = []
        self.dog = Watchdog(
            self.scheduler, TIMEOUT_NS, lambda: self.expired.append(self.scheduler.now_ns)
        )

    def kick_at(self, *times_ns: int) -> None:
        for t in times_ns:
            self.scheduler.call_at(t, self.dog.kick)


def test_idle_until_the_first_kick() -> None:
    dog = Dog()
    dog.scheduler.run_until(3600 * S)
    assert dog.expired == [] and not dog.dog.counting and dog.dog.deadline_ns is None


def test_expires_exactly_timeout_after_the_last_kick() -> None:
    dog = Dog()
    dog.kick_at(0, 250 * MS, 500 * MS, 777 * MS)
    dog.scheduler.run_until(10 * S)
    assert dog.expired == [777 * MS + TIMEOUT_NS]
    assert not dog.dog.counting and dog.dog.expired == 1


def test_kicked_in_time_never_expires() -> None:
    dog = Dog()
    kicks = range(0, 60 * S, 999 * MS)
    dog.kick_at(*kicks)
    dog.scheduler.run_until(60 * S)
    assert dog.expired == []
    assert dog.dog.deadline_ns == kicks[-1] + TIMEOUT_NS


def test_kicks_cost_no_scheduler_entries() -> None:
    dog = Dog()
    dog.dog.kick()
    for t in range(1, 1000):
        dog.scheduler.run_until(t * MS)
        dog.dog.kick()
    assert dog.scheduler.pending() == 1  # the one timer, moved on when it comes up


def test_after_expiry_it_waits_for_the_next_kick() -> None:
    dog = Dog()
    dog.dog.kick()
    dog.scheduler.run_until(5 * S)
    dog.scheduler.call_at(5 * S, dog.dog.kick)
    dog.scheduler.run_until(20 * S)
    assert dog.expired == [TIMEOUT_NS, 5 * S + TIMEOUT_NS]


def test_stop_makes_it_idle() -> None:
    dog = Dog()
    dog.dog.kick()
    dog.dog.stop()
    dog.scheduler.run_until(10 * S)
    assert dog.expired == []


# -- the board reset ------------------------------------------------------------------


def test_a_watchdog_reset_of_the_board() -> None:
    board = EmulatedBoard(LP)
    sched = board.scheduler
    causes: list[tuple[int, ResetCause]] = []
    board.set_reset_handler(lambda cause: causes.append((sched.now_ns, cause)))
    isr_calls: list[IrqEvent] = []
    board.irq.attach("feed_sensor", isr_calls.append)
    board.irq.attach("fuser", isr_calls.append)

    for output in Output:
        board.set_output(output, True)
    board.set_window(AnalogChannel.FUSER_C, 0.0, 200.0)
    board.pulse_pickup()
    imaging = board.submit(ImagePage(1, 1, 5.0))
    waiting = board.submit(ImagePage(1, 2, 5.0))  # no sheet for it yet
    board.kick_watchdog()
    sched.run_until(TIMEOUT_NS - 1)
    sheet = board.paper_path.sheets[0]
    assert imaging.events and not imaging.done  # under the drum, being imaged
    sched.run_until(TIMEOUT_NS)
    travel = TIMEOUT_NS  # the motor ran from 0 until the reset

    assert causes == [(TIMEOUT_NS, ResetCause.WATCHDOG)]
    assert board.reset_cause is ResetCause.WATCHDOG and board.resets == 1
    assert not any(board.outputs.values())
    assert not board.paper_path.motor_on and board.paper_path.travel_of(sheet) == travel
    for handle in (imaging, waiting):
        assert handle.state is IoState.FAILED
        assert handle.error is not None and str(handle.error) == "board reset"
    assert board.fuser.window is None and board.toner.window is None
    assert not board.watchdog.counting

    # ISRs detached: the sheet goes on when the (rebooted) firmware runs the motor, and
    # its edges reach no ISR until one is attached again.
    delivered_to_isrs = len(isr_calls)
    board.set_output(Output.MOTOR, True)
    sched.run_until(10 * S)
    assert len(isr_calls) == delivered_to_isrs
    assert board.irq.spurious > 0
    assert board.delivered == [None]  # the half-imaged sheet comes out spoiled


def test_the_reset_handler_reboots_and_the_watchdog_counts_again_from_its_kick() -> None:
    board = EmulatedBoard(LP)
    sched = board.scheduler
    boots: list[int] = []

    def boot(cause: ResetCause) -> None:
        boots.append(sched.now_ns)
        if len(boots) < 3:
            board.kick_watchdog()  # a firmware that kicks once on boot, then hangs

    board.set_reset_handler(boot)
    board.kick_watchdog()
    sched.run_until(60 * S)
    assert boots == [TIMEOUT_NS, 2 * TIMEOUT_NS, 3 * TIMEOUT_NS]


def test_outputs_cut_by_the_reset_are_seen_by_probes() -> None:
    board = EmulatedBoard(LP)
    board.set_output(Output.HEATER, True)
    seen: list[tuple[int, str, str, object]] = []
    board.add_probe(lambda t, scope, signal, value: seen.append((t, scope, signal, value)))
    seen.clear()
    board.kick_watchdog()
    board.scheduler.run_until(5 * S)
    assert (TIMEOUT_NS, "board", "heater", False) in seen
    assert seen[-1] == (TIMEOUT_NS, "board", "reset", "watchdog")
