"""The paper path (emulator/physics/_paper_path.py) against its own equations, in virtual time:
each edge reaches each place at ``position / speed`` of motor time, exactly in integer
ns; motor stops shift every edge by exactly the stop; jams stop sheets and pile the
followers up without overlap; pulling clears the path."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from boards import BoardConfig, load_board
from emulator.physics import Landmark, PaperPath, Sheet, travel_ns
from hal import InterruptController, IrqEvent, JamPoint, Scheduler, irq_lines_of

LP = load_board("lp-2000")
MS = 1_000_000
S = 1_000_000_000


def short_sheets(length_mm: float = 100.0) -> BoardConfig:
    """lp-2000 with sheets short enough that several fit between roller and exit."""
    return dataclasses.replace(LP, engine=dataclasses.replace(LP.engine, sheet_length_mm=length_mm))


class Rig:
    """A paper path on its own scheduler, recording every sensor edge and callback."""

    def __init__(self, config: BoardConfig = LP) -> None:
        self.scheduler = Scheduler()
        self.irq = InterruptController(self.scheduler, irq_lines_of(config))
        self.path = PaperPath(config.engine, config.paper_path, self.scheduler, self.irq)
        self.edges: list[tuple[int, str, object]] = []
        self.calls: list[tuple[int, str, int]] = []
        for line in ("feed_sensor", "exit_sensor"):
            self.irq.attach(line, self._isr)
        for name in ("drum_lead", "drum_trail", "fuser_lead", "delivered", "inserted"):
            setattr(self.path, f"on_{name}", self._recorder(name))
        self.pulled: list[list[Sheet]] = []
        self.path.on_pulled = self.pulled.append

    def _isr(self, event: IrqEvent) -> None:
        self.edges.append((event.t_ns, event.name, event.value))

    def _recorder(self, name: str) -> Callable[[Sheet], None]:
        def record(sheet: Sheet) -> None:
            self.calls.append((self.scheduler.now_ns, name, sheet.number))

        return record

    def at(self, t_ns: int, action: Callable[[], object]) -> None:
        self.scheduler.call_at(t_ns, action)

    def run(self, until_ns: int) -> None:
        self.scheduler.run_until(until_ns)


def ns(mm: float) -> int:
    """Motor time for ``mm`` at lp-2000's 200 mm/s: the model's own equation."""
    return round(mm / 200.0 * 1e9)


def test_travel_is_distance_over_speed_in_integer_ns() -> None:
    assert travel_ns(60.0, 200.0) == 300 * MS
    assert travel_ns(297.0, 200.0) == 1_485 * MS
    assert travel_ns(1.0, 3.0) == 333_333_333
    assert isinstance(travel_ns(1.0, 3.0), int)


def test_a_sheet_passes_every_place_at_position_over_speed() -> None:
    rig = Rig()
    rig.path.set_motor(True)
    rig.path.insert_sheet()
    rig.run(10 * S)
    length = 297.0
    assert rig.edges == [
        (ns(60), "feed_sensor", True),  # 300 ms
        (ns(250), "exit_sensor", True),  # 1.25 s
        (ns(60 + length), "feed_sensor", False),  # 1.785 s
        (ns(250 + length), "exit_sensor", False),  # 2.735 s
    ]
    assert rig.edges[0][0] == 300 * MS and rig.edges[3][0] == 2_735 * MS
    assert rig.calls == [
        (0, "inserted", 1),
        (ns(110), "drum_lead", 1),
        (ns(190), "fuser_lead", 1),
        (ns(110 + length), "drum_trail", 1),
        (ns(300 + length), "delivered", 1),
    ]
    assert rig.path.delivered == 1 and rig.path.sheets == []
    assert not rig.path.feed_covered and not rig.path.exit_covered


def test_no_motor_no_motion() -> None:
    rig = Rig()
    sheet = rig.path.insert_sheet()
    assert sheet is not None
    rig.run(60 * S)
    assert rig.edges == [] and rig.path.travel_of(sheet) == 0
    assert rig.scheduler.pending() == 0  # nothing scheduled for a still path


def test_motor_stop_and_start_shift_every_edge_by_exactly_the_stop() -> None:
    rig = Rig()
    rig.path.set_motor(True)
    rig.path.insert_sheet()
    stop_at, restart_at = 123_456_789, 1_123_456_789  # stopped for exactly 1 s
    rig.at(stop_at, lambda: rig.path.set_motor(False))
    rig.at(restart_at, lambda: rig.path.set_motor(True))
    rig.run(20 * S)
    paused = restart_at - stop_at
    assert [t for t, _, _ in rig.edges] == [
        ns(60) + paused,
        ns(250) + paused,
        ns(357) + paused,
        ns(547) + paused,
    ]


def test_sheets_stop_where_they_are() -> None:
    rig = Rig()
    rig.path.set_motor(True)
    sheet = rig.path.insert_sheet()
    assert sheet is not None
    rig.at(400 * MS, lambda: rig.path.set_motor(False))
    rig.run(5 * S)
    assert rig.path.travel_of(sheet) == 400 * MS
    assert rig.path.lead_mm(sheet) == 80.0
    assert rig.path.feed_covered  # the leading edge is past the sensor, the trail is not
    assert [e[1:] for e in rig.edges] == [("feed_sensor", True)]


def test_a_sheet_entering_while_the_motor_runs_starts_at_0_mm() -> None:
    rig = Rig()
    rig.path.set_motor(True)
    rig.at(777 * MS, rig.path.insert_sheet)
    rig.run(2 * S)
    assert rig.edges[0] == (777 * MS + ns(60), "feed_sensor", True)


def test_many_stops_add_up_exactly() -> None:
    rig = Rig()
    rig.path.insert_sheet()
    t, run_ns = 0, 0
    # 7 ms of motion, then 3 ms stopped, until the leading edge reaches the feed sensor.
    while run_ns < ns(60):
        rig.at(t, lambda: rig.path.set_motor(True))
        rig.at(t + 7 * MS, lambda: rig.path.set_motor(False))
        t += 10 * MS
        run_ns += 7 * MS
    rig.run(t)
    stints, left = divmod(ns(60), 7 * MS)
    assert rig.edges[0] == (stints * 10 * MS + left, "feed_sensor", True)


def test_the_pickup_roller_refuses_a_sheet_until_the_last_one_clears_it() -> None:
    rig = Rig()
    rig.path.set_motor(True)
    first = rig.path.insert_sheet()
    assert first is not None
    rig.run(ns(297) - 1)
    assert not rig.path.throat_clear() and rig.path.insert_sheet() is None
    rig.run(ns(297))
    assert rig.path.throat_clear()
    second = rig.path.insert_sheet()
    assert second is not None and second.number == 2
    assert rig.path.inserted == 2


def test_back_to_back_sheets_keep_the_feed_sensor_covered() -> None:
    # The second sheet enters the instant the first one's trail clears the roller: no gap.
    rig = Rig()
    rig.path.set_motor(True)
    rig.path.insert_sheet()
    rig.at(ns(297), rig.path.insert_sheet)
    rig.run(20 * S)
    feed = [(t, v) for t, name, v in rig.edges if name == "feed_sensor"]
    assert feed[0] == (ns(60), True)
    assert feed[-1] == (ns(297) + ns(357), False)
    for (_, a), (_, b) in itertools.pairwise(feed):
        assert a != b  # edges always alternate, whatever the order within an instant
    assert rig.path.delivered == 2


def test_jam_at_feed_stops_the_sheet_with_its_leading_edge_at_the_sensor() -> None:
    rig = Rig()
    rig.path.set_motor(True)
    sheet = rig.path.insert_sheet()
    assert sheet is not None
    rig.path.jam(JamPoint.FEED)
    rig.run(60 * S)
    assert rig.edges == [(ns(60), "feed_sensor", True)]
    assert sheet.halted and rig.path.travel_of(sheet) == ns(60)
    assert rig.path.lead_mm(sheet) == 60.0
    assert rig.path.feed_covered and rig.path.delivered == 0
    assert [c[1] for c in rig.calls] == ["inserted"]
    assert rig.scheduler.pending() == 0  # a stuck sheet schedules nothing


def test_jam_at_exit_covers_the_exit_sensor_for_good() -> None:
    rig = Rig()
    rig.path.set_motor(True)
    rig.path.jam(JamPoint.EXIT)  # armed before the sheet exists: the next one picked
    sheet = rig.path.insert_sheet()
    assert sheet is not None
    rig.run(60 * S)
    assert rig.path.travel_of(sheet) == ns(250)
    assert rig.edges == [(ns(60), "feed_sensor", True), (ns(250), "exit_sensor", True)]
    assert rig.path.exit_covered and rig.path.feed_covered  # 297 mm spans both


def test_jam_goes_to_the_sheet_approaching_the_point() -> None:
    rig = Rig(short_sheets())
    rig.path.set_motor(True)
    first = rig.path.insert_sheet()
    rig.run(ns(150))  # first: lead at 150 mm, past feed, before exit
    second = rig.path.insert_sheet()
    assert first is not None and second is not None
    rig.path.jam(JamPoint.FEED)
    assert first.stick_at is None and second.stick_at is Landmark.FEED_LEAD
    rig.path.jam(JamPoint.EXIT)
    assert first.stick_at is Landmark.EXIT_LEAD


def test_followers_pile_up_behind_a_stuck_sheet_and_never_overlap() -> None:
    rig = Rig(short_sheets(100.0))
    path = rig.path
    path.set_motor(True)
    path.jam(JamPoint.EXIT)
    for k in range(4):
        rig.at(k * 600 * MS, path.insert_sheet)
    rig.run(60 * S)
    # Stuck at exit (250 mm); the next stops touching it (150 mm), the next at 50 mm;
    # the fourth could not enter: the third's trail never cleared the roller.
    assert path.inserted == 3
    assert [path.lead_mm(s) for s in path.sheets] == [250.0, 150.0, 50.0]
    assert all(s.halted for s in path.sheets)
    assert path.exit_covered and path.feed_covered
    assert path.delivered == 0
    # Each follower stops exactly when its leading edge touches the trail ahead.
    assert [s.travel_ns for s in path.sheets] == [ns(250), ns(150), ns(50)]


def test_a_sheet_ahead_of_the_jam_is_delivered() -> None:
    rig = Rig(short_sheets(100.0))
    path = rig.path
    path.set_motor(True)
    path.insert_sheet()
    rig.run(ns(200))
    path.insert_sheet()
    path.jam(JamPoint.FEED)  # the first is past the feed sensor: the second sticks
    rig.run(60 * S)
    assert path.delivered == 1 and len(path.sheets) == 1
    assert path.lead_mm(path.sheets[0]) == 60.0


def test_a_follower_piles_up_even_if_the_motor_was_off_when_it_entered() -> None:
    rig = Rig(short_sheets(100.0))
    path = rig.path
    path.jam(JamPoint.EXIT)
    path.insert_sheet()
    path.set_motor(True)
    rig.run(5 * S)
    path.set_motor(False)
    path.insert_sheet()
    path.set_motor(True)
    rig.run(10 * S)
    assert [path.lead_mm(s) for s in path.sheets] == [250.0, 150.0]


def test_pull_all_clears_the_path_with_falling_edges() -> None:
    rig = Rig()
    path = rig.path
    path.set_motor(True)
    path.jam(JamPoint.EXIT)
    path.insert_sheet()
    rig.run(10 * S)
    assert path.feed_covered and path.exit_covered
    rig.edges.clear()
    rig.at(10 * S, path.pull_all)
    rig.run(11 * S)
    assert sorted(rig.edges) == [
        (10 * S, "exit_sensor", False),
        (10 * S, "feed_sensor", False),
    ]
    assert path.removed == 1 and path.sheets == [] and len(rig.pulled[0]) == 1
    # The path works again: the next sheet goes through.
    path.insert_sheet()
    rig.run(20 * S)
    assert path.delivered == 1


def test_pulling_a_moving_sheet_cancels_its_events() -> None:
    rig = Rig()
    path = rig.path
    path.set_motor(True)
    path.insert_sheet()
    rig.at(ns(100), path.pull_all)
    rig.run(20 * S)
    assert [e[1:] for e in rig.edges] == [("feed_sensor", True), ("feed_sensor", False)]
    assert path.delivered == 0 and path.removed == 1
    assert rig.scheduler.next_event_ns() is None


def test_a_callback_may_stop_the_motor_mid_landmark() -> None:
    # The owner stops the motor from the drum callback (re-entrancy): the sheet stops at
    # the drum and goes on from there when the motor restarts.
    rig = Rig()
    path = rig.path
    path.on_drum_lead = lambda sheet: path.set_motor(False)
    path.set_motor(True)
    sheet = path.insert_sheet()
    assert sheet is not None
    rig.run(5 * S)
    assert path.travel_of(sheet) == ns(110)
    rig.at(6 * S, lambda: path.set_motor(True))
    rig.run(20 * S)
    assert path.delivered == 1
    assert rig.edges[-1] == (6 * S + ns(547) - ns(110), "exit_sensor", False)


def test_a_callback_may_restart_the_motor_at_once() -> None:
    rig = Rig()
    path = rig.path

    def blip(sheet: Sheet) -> None:
        path.set_motor(False)
        path.set_motor(True)

    path.on_fuser_lead = blip
    path.set_motor(True)
    path.insert_sheet()
    rig.run(20 * S)
    assert [t for t, _, _ in rig.edges] == [ns(60), ns(250), ns(357), ns(547)]
    assert path.delivered == 1


def test_a_handful_of_events_per_sheet() -> None:
    rig = Rig()
    rig.path.set_motor(True)
    for k in range(10):
        rig.at(k * 2 * S, rig.path.insert_sheet)
    rig.run(60 * S)
    assert rig.path.delivered == 10
    # 10 insertions, 8 landmarks per sheet, one ISR dispatch per sensor edge.
    assert rig.scheduler.events_run == 10 + 10 * 8 + 10 * 4


_STEP = st.tuples(
    st.sampled_from(["motor", "insert", "jam_feed", "jam_exit", "pull"]), st.integers(1, 400)
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_STEP, max_size=40), st.sampled_from([60.0, 100.0, 297.0]))
def test_sheets_never_pass_through_each_other(
    steps: list[tuple[str, int]], length_mm: float
) -> None:
    config = short_sheets(length_mm)
    rig = Rig(config)
    path = rig.path
    length_ns = travel_ns(length_mm, 200.0)
    t = 0

    def check() -> None:
        travels = [path.travel_of(s) for s in path.sheets]
        for ahead, behind in itertools.pairwise(travels):
            assert ahead - behind >= length_ns
        assert path.feed_covered == (path._feed_count > 0)
        assert path.exit_covered == (path._exit_count > 0)

    rig.scheduler.call_at(0, check)
    for action, dt_ms in steps:
        t += dt_ms * MS
        if action == "motor":
            rig.at(t, lambda: path.set_motor(not path.motor_on))
        elif action == "insert":
            rig.at(t, path.insert_sheet)
        elif action == "jam_feed":
            rig.at(t, lambda: path.jam(JamPoint.FEED))
        elif action == "jam_exit":
            rig.at(t, lambda: path.jam(JamPoint.EXIT))
        else:
            rig.at(t, path.pull_all)
        for probe_ms in range(0, dt_ms, 37):
            rig.at(t - dt_ms * MS + probe_ms * MS, check)
    rig.at(t + 1, lambda: path.set_motor(True))
    rig.run(t + 30 * S)
    check()
    # Everything that is not stuck has left; the counts add up.
    assert path.inserted == path.delivered + path.removed + len(path.sheets)
    assert all(s.halted for s in path.sheets)
