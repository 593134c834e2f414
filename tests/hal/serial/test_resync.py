"""The resync plan (hal.serial._resync): what happens to the imaging handles the host
still holds when a session of the same boot comes up."""

from __future__ import annotations

from typing import Any

from hal import AnalogChannel, DigitalInput, ImagePage, IoHandle, IoState, Output
from hal.serial._resync import Resync, Snapshot, parse_snapshot, plan_resync, settle_imaging


def _snapshot_result(**extra: Any) -> dict[str, Any]:
    return {
        "t_ns": 5,
        "inputs": {str(pin): False for pin in DigitalInput},
        "analog": {str(ch): 0.0 for ch in AnalogChannel},
        "outputs": {str(out): False for out in Output},
        "reset_cause": "power_on",
        "display": ["", ""],
        "resets": 0,
        **extra,
    }


def _plan(
    snap: Snapshot,
    handles: list[int],
    regulations: dict[Output, tuple[AnalogChannel, float, float]] | None = None,
) -> Resync:
    return plan_resync(
        snap,
        inputs=snap.inputs,
        outputs=dict.fromkeys(Output, True),
        display=("", ""),
        windows={},
        regulations=regulations or {},
        handles=handles,
        cancel_later=[],
    )


def test_a_handle_the_device_imaged_completes_and_one_it_never_did_is_lost() -> None:
    snap = parse_snapshot(_snapshot_result(imaging=[3], imaged=[1, 2]))
    assert snap.imaged == {1, 2}
    plan = _plan(snap, [2, 3, 4])
    assert plan.imaged == [2]  # its done event was lost with the session
    assert plan.lost == [4]  # neither pending nor imaged: cancelled with the session
    pending = {n: IoHandle(ImagePage(1, n, 5.0)) for n in (2, 3, 4)}
    settled = dict(pending)
    settle_imaging(plan, pending)
    assert list(pending) == [3]  # still pending on the device: its events will come
    assert [settled[n].state for n in (2, 3, 4)] == [IoState.DONE, IoState.PENDING,
                                                     IoState.FAILED]


def test_settling_completes_with_the_request_and_fails_the_lost() -> None:
    snap = parse_snapshot(_snapshot_result(imaging=[], imaged=[7]))
    done, lost = IoHandle(ImagePage(1, 1, 5.0)), IoHandle(ImagePage(1, 2, 5.0))
    pending = {7: done, 8: lost}
    settle_imaging(_plan(snap, [7, 8]), pending)
    assert pending == {}
    assert done.state is IoState.DONE and done.result == done.request
    assert lost.state is IoState.FAILED
    assert "lost while the link was down" in str(lost.error)


def test_a_device_that_does_not_report_imaged_loses_every_handle_it_no_longer_holds() -> None:
    snap = parse_snapshot(_snapshot_result(imaging=[]))
    assert snap.imaged == frozenset()
    plan = _plan(snap, [1, 2])
    assert (plan.imaged, plan.lost) == ([], [1, 2])


def test_a_regulation_is_set_again_and_its_output_left_to_it() -> None:
    snap = parse_snapshot(_snapshot_result())  # the device went safe: every output off
    band = (AnalogChannel.FUSER_C, 178.0, 182.0)
    plan = _plan(snap, [], regulations={Output.HEATER: band})
    set_again = {args["output"] for cmd, args in plan.commands if cmd == "output.set"}
    assert set_again == {str(o) for o in Output} - {"heater"}
    assert ("output.regulate", {"output": "heater", "channel": "fuser_c", "low": 178.0,
                                "high": 182.0}) in plan.commands
    assert plan.commands[-1][0] == "output.regulate"
