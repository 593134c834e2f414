"""The Printer MIB over SNMP, read with net-snmp's own ``snmpget`` as the printer changes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hal import JamPoint
from tests.firmware.net.conftest import NetRig

SUPPLY_LEVEL = "1.3.6.1.2.1.43.11.1.1.9.1.1"
SUPPLY_MAX = "1.3.6.1.2.1.43.11.1.1.8.1.1"
ERROR_STATE = "1.3.6.1.2.1.25.3.5.1.2.1"
PRINTER_STATUS = "1.3.6.1.2.1.25.3.5.1.1.1"
INPUT_LEVEL = "1.3.6.1.2.1.43.8.2.1.10.1.1"

pytestmark = pytest.mark.skipif(shutil.which("snmpget") is None,
                                reason="missing tool: net-snmp's snmpget")


def _get(rig: NetRig, *oids: str, version: str = "2c") -> list[str]:
    assert rig.front_end.snmp_address is not None
    host, port = rig.front_end.snmp_address
    out = subprocess.run(["snmpget", f"-v{version}", "-c", "public", "-Oqv", "-t", "5",
                          f"{host}:{port}", *oids],
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.split("\n")[:len(oids)]


def _error_bits(rig: NetRig) -> int:
    text = _get(rig, ERROR_STATE)[0].strip().strip('"').replace(" ", "")
    return int(text, 16)


def test_supply_level_and_printer_status(rig: NetRig) -> None:
    assert _get(rig, SUPPLY_LEVEL, SUPPLY_MAX, PRINTER_STATUS, INPUT_LEVEL) == [
        "100", "100", "3", "-3"]
    assert _get(rig, SUPPLY_LEVEL, version="1") == ["100"]
    assert _error_bits(rig) == 0


def test_error_state_bits_follow_the_printer(rig: NetRig) -> None:
    rig.on_scheduler(lambda: rig.board.set_toner_pct(8.0))
    rig.wait_for(lambda: _error_bits(rig) == 0x2000, what="lowToner")
    assert _get(rig, SUPPLY_LEVEL) == ["8"]
    rig.on_scheduler(lambda: rig.board.set_cover(True))
    rig.wait_for(lambda: _error_bits(rig) == 0x2000 | 0x0800, what="doorOpen")
    rig.on_scheduler(lambda: rig.board.set_cover(False))
    rig.on_scheduler(lambda: rig.board.set_tray(0))
    rig.wait_for(lambda: _error_bits(rig) == 0x2000 | 0x4000 | 0x0004, what="noPaper")
    assert _get(rig, INPUT_LEVEL) == ["0"]
    rig.on_scheduler(lambda: rig.board.set_tray(100))
    rig.wait_for(lambda: _error_bits(rig) == 0x2000, what="paper back")
    rig.on_scheduler(lambda: rig.printer.submit(40, 5.0))
    rig.wait_for(lambda: rig.board.sheets_in_path > 0, what="a sheet in the path")
    rig.on_scheduler(lambda: rig.board.jam(JamPoint.EXIT))
    rig.wait_for(lambda: _error_bits(rig) & 0x0400 != 0, what="jammed")
    assert _get(rig, PRINTER_STATUS) == ["1"]
