"""pyipp (the client Home Assistant's IPP integration uses) reads the printer."""

from __future__ import annotations

import asyncio

import pytest

from tests.firmware.net.conftest import NetRig

pyipp = pytest.importorskip("pyipp", reason="missing tool: pyipp")


async def _printer(uri: str) -> object:
    async with pyipp.IPP(uri) as ipp:
        return await ipp.printer()


def test_pyipp_reads_the_marker_level_and_toner_low(rig: NetRig) -> None:
    assert rig.front_end.ipp_address is not None
    host, port = rig.front_end.ipp_address
    uri = f"ipp://{host}:{port}/ipp/print"
    printer = asyncio.run(_printer(uri))
    assert (printer.info.manufacturer, printer.info.model) == ("printer-emu", "DEVKIT")  # type: ignore[attr-defined]
    marker = printer.markers[0]  # type: ignore[attr-defined]
    assert (marker.name, marker.marker_type, marker.level) == ("Black Toner", "toner", 100)
    assert printer.state.reasons is None  # type: ignore[attr-defined]
    rig.on_scheduler(lambda: rig.board.set_toner_pct(4.0))
    rig.wait_for(lambda: rig.front_end.board.snapshot.toner == "low", what="toner low")
    printer = asyncio.run(_printer(uri))
    assert printer.markers[0].level == 4  # type: ignore[attr-defined]
    assert printer.state.reasons == "toner-low-report"  # type: ignore[attr-defined]
