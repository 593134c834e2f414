"""The virtual device (emulator.device.VirtualDevice), driven in-process in virtual time
through the rig of ``_device_rig``: handshake, board and simulation commands, link loss,
reset, and the byte stream (SMP over the same line: test_virtual_device_smp.py).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from boards import load_board
from emulator.board import EmulatedBoard
from emulator.device import SAFE_OUTPUTS, link_timings
from hal import Output, ResetCause, Scheduler
from hal.serial import (
    ErrorCode,
    ErrorReply,
    Frame,
    FrameDecoder,
    FrameType,
    LinkDownReason,
    LinkEndpoint,
    LinkState,
    Request,
    Role,
)
from tests.emulator.device._device_rig import HOST_TIMINGS, MS, Rig, S


@pytest.fixture
def rig() -> Rig:
    r = Rig()
    r.up()
    return r


# -- handshake ----------------------------------------------------------------------------


def test_hello_announces_the_board_and_sim() -> None:
    r = Rig()
    established = r.up()
    hello = established.peer
    assert hello.role is Role.DEVICE
    assert hello.board == "lp-2000"
    assert hello.device_id == "printer-emu-lp-2000"
    assert "sim" in hello.capabilities
    assert "smp" not in hello.capabilities
    assert hello.boot_nonce == r.device.boot_nonce
    timings = link_timings(r.board)
    assert hello.window == timings["window"] == 8
    assert hello.dead_after_ns == timings["dead_after_ns"] == 1 * S


def test_first_session_starts_with_a_reset_event(rig: Rig) -> None:
    rig.run_until(lambda: bool(rig.events("reset")))
    frame, event = rig.events()[0]
    assert event.kind == "reset"
    assert event.data == {"cause": "power_on"}
    assert frame.request_id == 0


def test_baud_sizes_the_link_timers() -> None:
    board = EmulatedBoard(load_board("lp-2000"), Scheduler())
    slow = link_timings(board, 115200)
    assert slow["rto_ns"] > 1 * S  # a window of 1 KiB frames takes 0.7 s each way
    assert slow["dead_after_ns"] >= 3 * slow["rto_ns"]
    assert slow["heartbeat_ns"] <= slow["dead_after_ns"] // 3


# -- board commands -----------------------------------------------------------------------


def test_board_snapshot(rig: Rig) -> None:
    snap = rig.call("board.snapshot")
    assert snap["inputs"] == {
        "paper_present": True,
        "feed_sensor": False,
        "exit_sensor": False,
        "cover_open": False,
        "button_cancel": False,
        "button_continue": False,
    }
    assert snap["analog"] == {"toner_pct": 100.0, "fuser_c": 25.0}
    assert snap["outputs"] == dict.fromkeys(
        ["heater", "motor", "laser", "led_ready", "led_attention", "led_toner"], False
    )
    assert snap["reset_cause"] == "power_on"
    assert snap["display"] == ["", ""]
    assert snap["imaging"] == []
    assert 0 < snap["t_ns"] <= rig.sched.now_ns


def test_output_set(rig: Rig) -> None:
    assert rig.call("output.set", output="led_ready", on=True) is None
    assert rig.board.output(Output.LED_READY)
    rig.call("output.set", output="led_ready", on=False)
    assert not rig.board.output(Output.LED_READY)
    assert rig.refused("output.set", {"output": "toaster", "on": True}).code is (
        ErrorCode.BAD_ARGUMENT
    )
    assert rig.refused("output.set", {"output": "heater", "on": 1}).code is ErrorCode.BAD_ARGUMENT
    assert rig.refused("output.set", {"output": "heater"}).code is ErrorCode.BAD_ARGUMENT


def test_analog_read(rig: Rig) -> None:
    assert rig.call("analog.read", channel="fuser_c") == {"value": 25.0}
    assert rig.call("analog.read", channel="toner_pct") == {"value": 100.0}
    assert rig.refused("analog.read", {"channel": "volume"}).code is ErrorCode.BAD_ARGUMENT


def test_display_show(rig: Rig) -> None:
    rig.call("display.show", rows=["READY", "lp-2000"])
    assert rig.board.display == ("READY", "lp-2000")
    assert rig.refused("display.show", {"rows": ["one"]}).code is ErrorCode.BAD_ARGUMENT
    assert rig.refused("display.show", {"rows": "x"}).code is ErrorCode.BAD_ARGUMENT


def test_window_set_sends_a_window_event_on_crossing(rig: Rig) -> None:
    rig.call("window.set", channel="toner_pct", low=50.0, high=100.0)
    rig.call("sim.toner", pct=40.0)
    rig.run_until(lambda: bool(rig.events("window")))
    frame, event = rig.events("window")[0]
    assert event.data == {"channel": "toner_pct", "reading": 40.0, "crossing": "below"}
    assert frame.request_id == 0
    # One-shot: no second event until armed again; armed outside, it fires at once.
    rig.call("sim.toner", pct=30.0)
    rig.run_for(10 * MS)
    assert len(rig.events("window")) == 1
    rig.call("window.set", channel="toner_pct", low=50, high=100)
    rig.run_until(lambda: len(rig.events("window")) == 2)
    assert rig.event_data("window")[1]["reading"] == 30.0


def test_window_set_refuses_bad_windows(rig: Rig) -> None:
    assert rig.refused("window.set", {"channel": "fuser_c", "low": 10, "high": 5}).code is (
        ErrorCode.BAD_ARGUMENT
    )
    assert rig.refused("window.set", {"channel": "nope", "low": 1, "high": 5}).code is (
        ErrorCode.BAD_ARGUMENT
    )
    assert rig.refused("window.set", {"channel": "fuser_c", "low": True, "high": 5}).code is (
        ErrorCode.BAD_ARGUMENT
    )


def test_fuser_window_event(rig: Rig) -> None:
    rig.call("window.set", channel="fuser_c", low=0.0, high=100.0)
    rig.call("output.set", output="heater", on=True)
    rig.run_until(lambda: bool(rig.events("window")), 10 * S)
    data = rig.event_data("window")[0]
    assert data["channel"] == "fuser_c"
    assert data["crossing"] == "above"
    assert data["reading"] >= 100.0


def test_pickup_pulse_moves_a_sheet_past_the_feed_sensor(rig: Rig) -> None:
    rig.call("output.set", output="motor", on=True)
    rig.call("pickup.pulse")
    rig.run_until(lambda: {"name": "feed_sensor", "level": True} in rig.event_data("input"))
    assert rig.board.sheets_picked == 1
    frame, event = next((f, e) for f, e in rig.events("input") if e.data["name"] == "feed_sensor")
    assert frame.request_id == 0
    assert event.t_ns <= rig.sched.now_ns


def _start_printing(rig: Rig) -> None:
    for output in ("motor", "laser"):
        rig.call("output.set", output=output, on=True)


def test_imaging_started_then_done(rig: Rig) -> None:
    _start_printing(rig)
    rid = rig.send("imaging.submit", {"handle": 7, "job": 1, "page": 1, "coverage_pct": 5.0})
    assert rig.answer(rid).type is FrameType.RESPONSE
    assert rig.call("board.snapshot")["imaging"] == [7]
    rig.call("pickup.pulse")
    rig.run_until(lambda: len(rig.events("imaging")) == 2, 10 * S)
    (f1, started), (f2, done) = rig.events("imaging")
    assert started.data == {"handle": 7, "state": "started"}
    assert done.data == {"handle": 7, "state": "done"}
    assert f1.request_id == f2.request_id == rid
    assert started.t_ns < done.t_ns
    assert rig.device.pending_handles == []
    # The RESPONSE came before any event about the handle.
    order = [e for e in rig.host_events if isinstance(e, Frame) and e.request_id == rid]
    assert [f.type for f in order] == [FrameType.RESPONSE, FrameType.EVENT, FrameType.EVENT]


def test_imaging_fails_with_the_laser_off(rig: Rig) -> None:
    rig.call("output.set", output="motor", on=True)
    rig.call("imaging.submit", handle=1, job=1, page=1, coverage_pct=5.0)
    rig.call("pickup.pulse")
    rig.run_until(lambda: bool(rig.events("imaging")), 10 * S)
    data = rig.event_data("imaging")[0]
    assert data["handle"] == 1
    assert data["state"] == "failed"
    assert "laser off" in data["error"]


def test_imaging_cancel(rig: Rig) -> None:
    rig.call("imaging.submit", handle=3, job=1, page=1, coverage_pct=5.0)
    assert rig.refused(
        "imaging.submit", {"handle": 3, "job": 1, "page": 2, "coverage_pct": 5.0}
    ).code is (ErrorCode.BAD_ARGUMENT)
    assert rig.call("imaging.cancel", handle=3) == {"cancelled": True}
    assert rig.call("imaging.cancel", handle=3) == {"cancelled": False}
    assert rig.call("imaging.cancel", handle=99) == {"cancelled": False}
    rig.run_for(50 * MS)
    assert rig.events("imaging") == []
    assert rig.refused(
        "imaging.submit", {"handle": 4, "job": 1, "page": 1, "coverage_pct": 101.0}
    ).code is (ErrorCode.BAD_ARGUMENT)
    assert rig.refused("imaging.submit", {"handle": -1, "job": 1, "page": 1, "coverage_pct": 1})


def test_watchdog_kick_starts_the_watchdog(rig: Rig) -> None:
    assert not rig.board.watchdog.counting
    rig.call("watchdog.kick")
    assert rig.board.watchdog.counting


def test_unknown_and_malformed_requests(rig: Rig) -> None:
    assert rig.refused("board.explode").code is ErrorCode.UNKNOWN_COMMAND
    assert rig.refused("sim.earthquake").code is ErrorCode.UNKNOWN_COMMAND
    frame = rig.answer(rig.send("", payload=b"\x83\x01\x02\x03"))  # a CBOR array
    assert frame.type is FrameType.ERROR
    assert ErrorReply.from_payload(frame.payload).code is ErrorCode.BAD_ARGUMENT
    frame = rig.answer(rig.send("", payload=b"\xff\xfe"))  # not CBOR
    assert ErrorReply.from_payload(frame.payload).code is ErrorCode.BAD_ARGUMENT
    # Still serving.
    assert rig.call("analog.read", channel="toner_pct") == {"value": 100.0}


# -- simulation commands ------------------------------------------------------------------


def test_sim_cover_sends_input_events(rig: Rig) -> None:
    rig.call("sim.cover", open=True)
    rig.run_until(lambda: bool(rig.events("input")))
    assert rig.event_data("input") == [{"name": "cover_open", "level": True}]
    rig.call("sim.cover", open=False)
    rig.run_until(lambda: len(rig.events("input")) == 2)
    assert rig.event_data("input")[1] == {"name": "cover_open", "level": False}
    assert rig.refused("sim.cover", {"open": "yes"}).code is ErrorCode.BAD_ARGUMENT


def test_sim_press_is_a_press_and_a_release(rig: Rig) -> None:
    rig.call("sim.press", button="cancel")
    rig.run_until(lambda: len(rig.events("input")) == 2)
    assert rig.event_data("input") == [
        {"name": "button_cancel", "level": True},
        {"name": "button_cancel", "level": False},
    ]
    assert rig.refused("sim.press", {"button": "power"}).code is ErrorCode.BAD_ARGUMENT


def test_sim_toner_tray_heater_and_observe(rig: Rig) -> None:
    rig.call("sim.toner", pct=12.5)
    rig.call("sim.tray", sheets=0)
    rig.run_until(lambda: {"name": "paper_present", "level": False} in rig.event_data("input"))
    observed = rig.call("sim.observe")
    assert observed["toner_pct"] == 12.5
    assert observed["tray_sheets"] == 0
    assert observed["sheets_picked"] == observed["sheets_delivered"] == 0
    assert observed["sheets_removed"] == 0
    assert observed["fuser_c"] == 25.0
    rig.call("sim.replace_toner")
    assert rig.call("sim.observe")["toner_pct"] == 100.0
    rig.call("sim.heater", failed=True)
    rig.call("output.set", output="heater", on=True)
    rig.run_for(2 * S)
    assert rig.call("sim.observe")["fuser_c"] == 25.0
    assert rig.refused("sim.toner", {"pct": 120}).code is ErrorCode.BAD_ARGUMENT
    assert rig.refused("sim.tray", {"sheets": 100_000}).code is ErrorCode.BAD_ARGUMENT
    assert rig.refused("sim.tray", {"sheets": -1}).code is ErrorCode.BAD_ARGUMENT


def test_sim_misfeed_eats_a_pickup(rig: Rig) -> None:
    rig.call("output.set", output="motor", on=True)
    rig.call("sim.misfeed")
    rig.call("pickup.pulse")
    assert rig.call("sim.observe")["sheets_picked"] == 0
    rig.call("pickup.pulse")
    assert rig.call("sim.observe")["sheets_picked"] == 1


def test_sim_jam_stops_a_sheet_at_the_feed_sensor(rig: Rig) -> None:
    rig.call("sim.jam", at="feed")
    rig.call("output.set", output="motor", on=True)
    rig.call("pickup.pulse")
    rig.run_until(lambda: {"name": "feed_sensor", "level": True} in rig.event_data("input"))
    rig.run_for(3 * S)
    assert rig.call("board.snapshot")["inputs"]["feed_sensor"] is True
    assert rig.call("sim.observe")["sheets_delivered"] == 0
    assert rig.refused("sim.jam", {"at": "drum"}).code is ErrorCode.BAD_ARGUMENT


def test_without_sim_every_sim_command_is_not_supported() -> None:
    r = Rig(sim=False)
    hello = r.up().peer
    assert "sim" not in hello.capabilities
    calls: list[tuple[str, dict[str, Any]]] = [
        ("sim.cover", {"open": True}),
        ("sim.observe", {}),
        ("sim.toner", {"pct": 5.0}),
        ("sim.earthquake", {}),
    ]
    for cmd, args in calls:
        assert r.refused(cmd, args).code is ErrorCode.NOT_SUPPORTED
    assert not r.board.cover_open
    assert r.call("analog.read", channel="toner_pct") == {"value": 100.0}


# -- link loss ----------------------------------------------------------------------------


def _all_on(rig: Rig) -> None:
    for output in ("heater", "motor", "laser", "led_ready"):
        rig.call("output.set", output=output, on=True)


def test_link_loss_makes_the_device_safe(rig: Rig) -> None:
    _all_on(rig)
    rig.call("imaging.submit", handle=5, job=1, page=1, coverage_pct=5.0)
    rig.call("watchdog.kick")
    rig.line_up = False
    rig.run_until(lambda: rig.device.link is not None and rig.device.link.state is LinkState.DOWN)
    board = rig.board
    assert not any(board.output(o) for o in SAFE_OUTPUTS)
    assert board.output(Output.LED_READY)  # only what is dangerous is cut
    assert rig.device.pending_handles == []
    assert not board.watchdog.counting


def test_connection_lost_makes_the_device_safe_at_once(rig: Rig) -> None:
    _all_on(rig)
    rig.device.connection_lost()
    assert not any(rig.board.output(o) for o in SAFE_OUTPUTS)
    assert not rig.device.connected


def test_reconnect_keeps_the_boot_and_delivers_a_missed_crossing(rig: Rig) -> None:
    boot = rig.device.boot_nonce
    _all_on(rig)
    rig.call("window.set", channel="toner_pct", low=20.0, high=100.0)
    rig.line_up = False
    rig.run_until(lambda: len(rig.lost()) == 1)
    rig.board.faults.set_toner_pct(10.0)  # crosses while the link is down
    rig.board.faults.set_cover(True)  # an input edge while down: dropped
    rig.run_for(100 * MS)
    rig.line_up = True
    established = rig.up()
    assert established.peer.boot_nonce == boot
    assert not established.peer_reset
    rig.run_until(lambda: bool(rig.events("window")))
    assert rig.event_data("window") == [
        {"channel": "toner_pct", "reading": 10.0, "crossing": "below"}
    ]
    assert rig.events("input") == []
    snap = rig.call("board.snapshot")
    assert snap["inputs"]["cover_open"] is True
    assert not snap["outputs"]["heater"]
    assert rig.device.boots == 1
    assert rig.board.resets == 0


def test_input_edges_flow_again_after_reconnect(rig: Rig) -> None:
    rig.device.connection_lost()
    rig.device.connection_made(rig._device_writes)
    rig.run_until(lambda: len(rig.established()) == 2)
    rig.call("sim.cover", open=True)
    rig.run_until(lambda: bool(rig.events("input")))
    assert rig.event_data("input") == [{"name": "cover_open", "level": True}]


def test_a_silent_host_does_not_reset_the_board(rig: Rig) -> None:
    rig.call("watchdog.kick")
    rig.line_up = False
    rig.run_for(5 * S)
    assert rig.board.resets == 0
    assert not rig.board.watchdog.counting


def test_request_of_an_ended_session_is_carried_out_but_not_answered(rig: Rig) -> None:
    # A request and, right behind it on the line, a new host's HELLO: by the time the
    # device handles the request its session is over, so it must not answer it in the
    # new one.
    rid = 4242
    payload = Request("output.set", {"output": "led_ready", "on": True}).to_payload()
    rig.host.send(FrameType.REQUEST, payload, rid)
    request_bytes = rig.host.outgoing(rig.sched.now_ns)
    assert request_bytes
    new_host = LinkEndpoint(Role.HOST, rng=random.Random(7), **HOST_TIMINGS)
    rig.line_up = False  # the old host stops listening
    written = len(rig.device_wrote)
    rig.device.receive(request_bytes + new_host.outgoing(rig.sched.now_ns))
    rig.run_for(100 * MS)
    assert rig.board.output(Output.LED_READY)
    answers = [
        f
        for f in _frames(b"".join(rig.device_wrote[written:]))
        if f.type in (FrameType.RESPONSE, FrameType.ERROR) and f.request_id == rid
    ]
    assert answers == []


def _frames(data: bytes) -> list[Frame]:
    return [item for item in FrameDecoder().feed(data) if isinstance(item, Frame)]


# -- reset --------------------------------------------------------------------------------


def test_watchdog_reset_starts_a_new_boot(rig: Rig) -> None:
    old_boot = rig.device.boot_nonce
    _all_on(rig)
    rig.call("imaging.submit", handle=9, job=1, page=1, coverage_pct=5.0)
    rig.call("watchdog.kick")
    # The host stays alive (heartbeats) but its firmware stops kicking.
    rig.run_until(lambda: rig.board.resets == 1, 3 * S)
    assert rig.board.reset_cause is ResetCause.WATCHDOG
    rig.run_until(lambda: len(rig.established()) == 2)
    established = rig.established()[1]
    assert established.peer_reset
    assert established.peer.boot_nonce != old_boot
    assert established.peer.boot_nonce == rig.device.boot_nonce
    assert [lost.reason for lost in rig.lost()] == [LinkDownReason.PEER_RESET]
    assert rig.device.boots == 2
    rig.run_until(lambda: len(rig.events("reset")) == 2)
    assert rig.event_data("reset")[1] == {"cause": "watchdog"}
    assert rig.device.pending_handles == []
    snap = rig.call("board.snapshot")
    assert snap["reset_cause"] == "watchdog"
    assert not any(snap["outputs"].values())
    # irq.reset() detached the ISRs: the device attached them again.
    rig.call("sim.cover", open=True)
    rig.run_until(lambda: bool(rig.events("input")))
    assert rig.event_data("input") == [{"name": "cover_open", "level": True}]


def test_board_reset_answers_then_reboots(rig: Rig) -> None:
    old_boot = rig.device.boot_nonce
    _all_on(rig)
    assert rig.call("board.reset") is None  # the answer comes first
    rig.run_until(lambda: len(rig.established()) == 2)
    established = rig.established()[1]
    assert established.peer_reset and established.peer.boot_nonce != old_boot
    rig.run_until(lambda: len(rig.events("reset")) == 2)
    assert rig.event_data("reset")[1] == {"cause": "software"}
    snap = rig.call("board.snapshot")
    assert snap["reset_cause"] == "software"
    assert snap["resets"] == 1
    assert not any(snap["outputs"].values())


def test_sim_power_cycle_restores_the_power_on_state(rig: Rig) -> None:
    old_boot = rig.device.boot_nonce
    rig.call("sim.tray", sheets=2)
    rig.call("sim.toner", pct=3.0)
    rig.call("sim.heater", failed=True)
    rig.call("display.show", rows=["HELLO", "WORLD"])
    rig.call("output.set", output="motor", on=True)
    rig.call("pickup.pulse")
    rig.run_until(lambda: rig.board.paper_path.feed_covered)
    rig.call("sim.jam", at="exit")
    rig.call("sim.misfeed")
    rig.call("sim.cover", open=True)
    rig.call("sim.press", button="continue")
    assert rig.call("sim.power_cycle") is None
    rig.run_until(lambda: len(rig.established()) == 2)
    assert rig.established()[1].peer.boot_nonce != old_boot
    rig.run_until(lambda: len(rig.events("reset")) == 2)
    assert rig.event_data("reset")[1] == {"cause": "power_on"}
    assert rig.call("sim.observe") == {
        "toner_pct": 100.0,
        "tray_sheets": 250,
        "sheets_picked": 0,
        "sheets_delivered": 0,
        "sheets_removed": 0,
        "fuser_c": 25.0,
    }
    snap = rig.call("board.snapshot")
    assert snap["inputs"] == {
        "paper_present": True,
        "feed_sensor": False,
        "exit_sensor": False,
        "cover_open": False,
        "button_cancel": False,
        "button_continue": False,
    }
    assert snap["display"] == ["", ""]
    assert snap["reset_cause"] == "power_on"
    assert rig.board.sheets_in_path == 0
    # No fault is left armed: the heater heats, a pickup takes a sheet that runs through.
    rig.call("output.set", output="heater", on=True)
    rig.call("output.set", output="motor", on=True)
    rig.call("pickup.pulse")
    rig.run_until(lambda: rig.board.sheets_delivered == 1, 10 * S)
    assert rig.call("sim.observe")["fuser_c"] > 25.0


def test_kicked_watchdog_does_not_reset(rig: Rig) -> None:
    for _ in range(12):
        rig.call("watchdog.kick")
        rig.run_for(250 * MS)
    assert rig.board.resets == 0


def test_close_detaches_the_device(rig: Rig) -> None:
    rig.device.close()
    rig.board.faults.set_cover(True)
    rig.run_for(10 * MS)
    assert rig.board.irq.spurious == 1


# -- the byte stream: frames, SMP lines, noise --------------------------------------------


def test_noise_before_a_frame_does_not_lose_it(rig: Rig) -> None:
    rig.send_raw(b"*** booting ***\r\n")
    assert rig.call("analog.read", channel="toner_pct") == {"value": 100.0}
    assert rig.host.state is LinkState.UP


def test_a_sheet_imaged_while_the_host_was_away_is_in_the_next_snapshots_imaged(
    rig: Rig,
) -> None:
    """Its ``done`` event is lost with the session; the snapshot of the next one still
    tells the host the page was imaged, so the host completes it instead of printing it
    again."""
    _start_printing(rig)
    rig.call("imaging.submit", handle=9, job=1, page=1, coverage_pct=5.0)
    rig.call("pickup.pulse")
    rig.run_until(lambda: bool(rig.events("imaging")), 10 * S)  # started
    rig.run_for(900 * MS)  # the sheet is in the drum: it is done half a second later
    rig.line_up = False
    rig.run_until(lambda: rig.device.pending_handles == [])
    assert rig.device.link is not None and rig.device.link.state is LinkState.UP
    rig.run_until(lambda: len(rig.lost()) == 1)
    rig.run_until(lambda: rig.device.link is not None and rig.device.link.state is LinkState.DOWN)
    rig.line_up = True
    rig.up()
    snap = rig.call("board.snapshot")
    assert snap["imaging"] == []
    assert snap["imaged"] == [9]
    assert {"handle": 9, "state": "done"} not in rig.event_data("imaging")


def test_imaged_lists_a_handle_done_and_forgets_it_at_a_reboot(rig: Rig) -> None:
    _start_printing(rig)
    rig.call("imaging.submit", handle=4, job=1, page=1, coverage_pct=5.0)
    rig.call("pickup.pulse")
    rig.run_until(lambda: {"handle": 4, "state": "done"} in rig.event_data("imaging"), 10 * S)
    assert rig.call("board.snapshot")["imaged"] == [4]
    rig.call("board.reset")
    rig.run_until(lambda: len(rig.established()) == 2, 10 * S)
    assert rig.call("board.snapshot")["imaged"] == []
