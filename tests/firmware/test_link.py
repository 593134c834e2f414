"""The link to a serial board, as the firmware sees it: the ``link`` interrupt.

Here the emulated board stands in for a serial one: the test raises ``link`` with a
``LinkChange`` and does what a serial device's failsafe does (motor, laser and heater
off) — the paper path freezes where it is. When the link is back the sheets run out,
each delivered or spoiled as its imaging went, and printing resumes: every page comes
out exactly once, and the output tray holds no duplicate.
"""

from __future__ import annotations

from hal import LinkChange, Output
from tests.conftest import Rig, S, to_feed_ns


def _link(rig: Rig, up: bool) -> None:
    if not up:  # the device's own failsafe, before the host even knows
        for output in (Output.MOTOR, Output.LASER, Output.HEATER):
            rig.board.set_output(output, False)
    rig.board.irq.raise_line("link", LinkChange(up=up, reason="test"))


def _drop_link_mid_job(rig: Rig, pages: int, down_at_page: int, down_for_ns: int) -> None:
    rig.printer.submit(pages, 5.0)
    rig.run_until(lambda: len(rig.of("page_feeding")) >= down_at_page)
    rig.run_for(to_feed_ns(rig.config) + 1)  # the sheet is past the feed sensor
    _link(rig, up=False)
    rig.run_for(down_for_ns)
    assert rig.state("engine") == "offline"
    assert not rig.board.output(Output.MOTOR)
    _link(rig, up=True)
    rig.finish()


def test_link_loss_mid_job_delivers_every_page_once(rig: Rig) -> None:
    _drop_link_mid_job(rig, pages=12, down_at_page=5, down_for_ns=3 * S)
    expected = [(1, p) for p in range(1, 13)]
    assert sorted(rig.pages()) == expected
    assert len(rig.pages()) == 12
    # Physically too: every imaged sheet in the output tray is a different page.
    imaged = [d for d in rig.output_tray() if d is not None]
    assert sorted(imaged) == expected
    assert [e.kind for e in rig.events if e.kind.startswith("link_")] == ["link_down", "link_up"]
    assert not rig.of("jam")


def test_link_loss_while_idle_resumes_at_once(rig: Rig) -> None:
    rig.run_for(S)
    _link(rig, up=False)
    rig.run_for(S)
    assert rig.state("engine") == "offline"
    _link(rig, up=True)
    rig.run_for(1)
    assert rig.state("engine") == "standby"
    rig.printer.submit(3, 5.0)
    rig.finish()
    assert rig.pages() == [(1, 1), (1, 2), (1, 3)]


def test_heater_is_cut_when_the_link_goes(rig: Rig) -> None:
    rig.printer.submit(2, 5.0)
    rig.run_until(lambda: rig.state("fuser") == "ready")
    rig.board.irq.raise_line("link", LinkChange(up=False))
    rig.run_for(1)
    assert not rig.board.output(Output.HEATER)
    assert rig.state("fuser") == "interlocked"
    rig.board.irq.raise_line("link", LinkChange(up=True))
    rig.finish()
    assert rig.pages() == [(1, 1), (1, 2)]
