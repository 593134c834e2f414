"""The C device's board layer and plant, on every device (the host build on a pty, C on
QEMU microbit and mps2): ``board.clock`` reads the clock of the events' ``t_ns``, and the
fuser's hardware cutoff holds the element at the board file's ``cutoff_c`` however long
the heater is left on.
"""

from __future__ import annotations

from typing import Any

from boards import BoardConfig
from hal.serial import Event, SerialBoard
from tests.mcu._mcu import McuDevice, serial_board

S = 1_000_000_000




def _clock_ns(board: SerialBoard) -> int:
    result = board.query("board.clock", timeout_s=5.0)
    assert isinstance(result, dict) and set(result) == {"t_ns"}
    t_ns = result["t_ns"]
    assert isinstance(t_ns, int) and t_ns >= 0
    return t_ns


def _fuser_c(board: SerialBoard) -> float:
    value = board.query("analog.read", {"channel": "fuser_c"}, timeout_s=5.0)["value"]
    assert isinstance(value, float)
    return value


def test_board_clock_reads_the_clock_of_the_events(mcu_device: McuDevice,
                                                   devkit: BoardConfig) -> None:
    """A sheet reaches the feed sensor exactly ``feed_sensor_mm / paper_speed_mm_s`` of
    motor time after the pickup (the plant is exact), so the feed edge's ``t_ns`` less
    that travel is the pickup's instant, which lies between the clock read before the
    pickup and the one read after it: answers come in order."""
    travel_ns = round(devkit.paper_path.feed_sensor_mm / devkit.engine.paper_speed_mm_s * 1e9)
    edges: list[Event] = []
    with serial_board(mcu_device, devkit, analog_poll_s=None) as board:
        board.add_event_listener(
            lambda event, _t_ns: edges.append(event)
            if event.kind == "input" and event.data == {"name": "feed_sensor", "level": True}
            else None)
        board.query("output.set", {"output": "motor", "on": True}, timeout_s=5.0)
        before_ns = _clock_ns(board)
        board.query("pickup.pulse", timeout_s=5.0)
        after_ns = _clock_ns(board)
        assert board.scheduler.run_until(lambda: bool(edges), timeout_ns=5 * S)
        later_ns = _clock_ns(board)
        board.query("output.set", {"output": "motor", "on": False}, timeout_s=5.0)
    picked_ns = edges[0].t_ns - travel_ns
    assert before_ns <= picked_ns <= after_ns
    assert edges[0].t_ns <= later_ns  # asked after the edge arrived: the clock had passed it


def test_board_clock_runs_with_the_snapshots_clock(mcu_device: McuDevice,
                                                   devkit: BoardConfig) -> None:
    with serial_board(mcu_device, devkit, analog_poll_s=None) as board:
        readings: list[int] = []
        for _ in range(3):
            readings.append(board.query("board.snapshot", timeout_s=5.0)["t_ns"])
            readings.append(_clock_ns(board))
        readings.append(board.query("board.snapshot", timeout_s=5.0)["t_ns"])
    assert readings == sorted(readings)
    assert readings[-1] > readings[0]


def test_the_fuser_cutoff_holds_the_heated_element_at_the_board_files_cutoff(
    mcu_device: McuDevice, devkit: BoardConfig
) -> None:
    """The heater left on (no firmware switches it off) for five time constants: without
    a cutoff the element would pass ``over_temp_c`` on its way to ``max_c``; the
    thermostat holds it at ``cutoff_c``, and a comparator armed just above never fires."""
    cutoff_c = devkit.fuser.cutoff_c
    assert devkit.fuser.max_c > devkit.fuser.over_temp_c > cutoff_c  # the test means it
    crossings: list[dict[str, Any]] = []
    with serial_board(mcu_device, devkit, analog_poll_s=None) as board:
        board.add_event_listener(
            lambda event, _t_ns: crossings.append(event.data) if event.kind == "window"
            else None)
        board.query("window.set", {"channel": "fuser_c", "low": -50.0, "high": cutoff_c + 0.5},
                    timeout_s=5.0)
        board.query("output.set", {"output": "heater", "on": True}, timeout_s=5.0)
        board.scheduler.run_until(lambda: bool(crossings),
                                  timeout_ns=round(5 * devkit.fuser.tau_s * S))
        held_c = _fuser_c(board)
        board.query("output.set", {"output": "heater", "on": False}, timeout_s=5.0)
        board.scheduler.run_until(lambda: False, timeout_ns=round(devkit.fuser.tau_s * S))
        cooled_c = _fuser_c(board)
    assert crossings == []
    assert held_c == cutoff_c
    assert cooled_c < cutoff_c - 10.0  # the thermostat held it; it did not store heat


def test_every_sheet_picked_at_the_rated_pitch_reaches_the_feed_sensor_on_time(
    mcu_device: McuDevice, devkit: BoardConfig
) -> None:
    """The plant on its own, paced by the device's clock: 20 pickups at the rated pitch
    with the motor running feed 20 sheets, each leading edge at the feed sensor exactly
    its travel after the pickup, in the device's time, however late the host's requests
    or the edges' events cross the line."""
    sheets = 20
    pitch_ns = round(60 / devkit.engine.rated_ppm * S)
    travel_ns = round(devkit.paper_path.feed_sensor_mm / devkit.engine.paper_speed_mm_s * 1e9)
    leads: list[int] = []
    picks: list[tuple[int, int]] = []
    with serial_board(mcu_device, devkit, analog_poll_s=None) as board:
        board.add_event_listener(
            lambda event, _t_ns: leads.append(event.t_ns)
            if event.kind == "input" and event.data == {"name": "feed_sensor", "level": True}
            else None)
        board.query("output.set", {"output": "motor", "on": True}, timeout_s=5.0)
        for _ in range(sheets):
            before_ns = _clock_ns(board)
            board.query("pickup.pulse", timeout_s=5.0)
            picks.append((before_ns, _clock_ns(board)))
            next_ns = picks[-1][1] + pitch_ns
            while _clock_ns(board) < next_ns:
                board.scheduler.run_until(lambda: False, timeout_ns=pitch_ns // 10)
        assert board.scheduler.run_until(lambda: len(leads) >= sheets, timeout_ns=5 * S)
        board.query("output.set", {"output": "motor", "on": False}, timeout_s=5.0)
    assert len(leads) == sheets
    for (before_ns, after_ns), lead_ns in zip(picks, leads, strict=True):
        assert before_ns <= lead_ns - travel_ns <= after_ns


def test_a_sheet_imaged_is_in_the_snapshots_imaged(mcu_device: McuDevice,
                                                   devkit: BoardConfig) -> None:
    """The snapshot keeps the handles imaged lately (``imaged``), so that a host whose
    ``done`` event was lost with a session completes the page instead of failing it."""
    done: list[dict[str, Any]] = []
    with serial_board(mcu_device, devkit, analog_poll_s=None) as board:
        board.add_event_listener(
            lambda event, _t_ns: done.append(event.data)
            if event.kind == "imaging" and event.data.get("state") != "started" else None)
        for output in ("motor", "laser"):
            board.query("output.set", {"output": output, "on": True}, timeout_s=5.0)
        before = board.query("board.snapshot", timeout_s=5.0)
        board.query("imaging.submit",
                    {"handle": 70_000, "job": 1, "page": 1, "coverage_pct": 5.0},
                    timeout_s=5.0)
        board.query("pickup.pulse", timeout_s=5.0)
        assert board.scheduler.run_until(lambda: bool(done), timeout_ns=10 * S)
        after = board.query("board.snapshot", timeout_s=5.0)
        for output in ("motor", "laser"):
            board.query("output.set", {"output": output, "on": False}, timeout_s=5.0)
    assert done == [{"handle": 70_000, "state": "done"}]
    assert before["imaged"] == []
    assert after["imaging"] == []
    assert after["imaged"] == [70_000]


def test_the_snapshots_imaged_keeps_the_latest_32_oldest_first(devkit: BoardConfig) -> None:
    """The ring of handles imaged lately (docs/board-commands.md, ``board.snapshot``)
    wraps: after 40 pages it holds the last 32, oldest first. The host build only: the
    ring is the core's, the same code on every port."""
    pages = 40
    done: list[int] = []
    with McuDevice("host") as device, serial_board(device, devkit, analog_poll_s=None) as board:
        board.add_event_listener(
            lambda event, _t_ns: done.append(event.data["handle"])
            if event.kind == "imaging" and event.data.get("state") == "done" else None)
        for output in ("motor", "laser"):
            board.query("output.set", {"output": output, "on": True}, timeout_s=5.0)
        for handle in range(1, pages + 1):
            board.query("imaging.submit",
                        {"handle": handle, "job": 1, "page": handle, "coverage_pct": 5.0},
                        timeout_s=5.0)
            board.query("pickup.pulse", timeout_s=5.0)
            # Done when its sheet leaves the drum: the pickup roller is clear by then.
            assert board.scheduler.run_until(lambda h=handle: h in done,  # type: ignore[misc]
                                             timeout_ns=5 * S)
        snapshot = board.query("board.snapshot", timeout_s=5.0)
        for output in ("motor", "laser"):
            board.query("output.set", {"output": output, "on": False}, timeout_s=5.0)
        status = device.stop()
    assert done == list(range(1, pages + 1))
    assert snapshot["imaged"] == list(range(pages - 31, pages + 1))
    assert status == 0, device.stderr_text()[-3000:]
