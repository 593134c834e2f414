"""The SNMP agent (v1/v2c, read-only, pysnmp on the network loop): the Printer MIB
(RFC 3805) and the HOST-RESOURCES-MIB printer objects, from the printer's published
status.

Served objects (instance 1 of the one printer, marker, supply and input):

* system: sysDescr, sysObjectID, sysUpTime, sysContact, sysName, sysLocation;
* hrDeviceType/Descr/Status; hrPrinterStatus (3 idle, 4 printing, 5 warmup, 1 other
  when stopped); hrPrinterDetectedErrorState, two octets: lowPaper 0x8000, noPaper
  0x4000, lowToner 0x2000, noToner 0x1000, doorOpen 0x0800, jammed 0x0400, offline
  0x0200, serviceRequested 0x0100, inputTrayEmpty 0x0004;
* prtInputTable (tray 1: type, capacity, ``prtInputCurrentLevel`` -3 while it has paper
  in an amount unknown to the firmware, 0 when empty), prtMarkerLifeCount (pages
  printed), prtMarkerSuppliesTable (toner: class, type, description, unit percent,
  ``MaxCapacity`` 100, ``Level`` the sensor's reading), prtMarkerColorantValue.

GET, GETNEXT and GETBULK are answered from a table built from the snapshot a request
takes (no MIB compiler, no MIB files at run time).
"""

from __future__ import annotations

import asyncio
import bisect
import socket
import time
from collections.abc import Callable
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto.api import v2c
from pysnmp.smi import instrum

from firmware.net._ipp_printer_attributes import PrinterDescription
from firmware.net._printer_status import PrinterStatus, StatusBoard

Oid = tuple[int, ...]

_SYSTEM: Oid = (1, 3, 6, 1, 2, 1, 1)
_HR_DEVICE: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1)
_HR_PRINTER: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 5, 1)
_HR_DEVICE_PRINTER: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 1, 5)
_PRT_INPUT: Oid = (1, 3, 6, 1, 2, 1, 43, 8, 2, 1)
_PRT_MARKER: Oid = (1, 3, 6, 1, 2, 1, 43, 10, 2, 1)
_PRT_SUPPLIES: Oid = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1)
_PRT_COLORANT: Oid = (1, 3, 6, 1, 2, 1, 43, 12, 1, 1)
_ENTERPRISE: Oid = (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10)
"""sysObjectID: net-snmp's "Linux" agent OID, as a host-based agent reports."""

LOW_PAPER, NO_PAPER, LOW_TONER, NO_TONER = 0x8000, 0x4000, 0x2000, 0x1000
DOOR_OPEN, JAMMED, OFFLINE, SERVICE_REQUESTED = 0x0800, 0x0400, 0x0200, 0x0100
INPUT_TRAY_EMPTY = 0x0004


def detected_error_state(status: PrinterStatus) -> int:
    """hrPrinterDetectedErrorState's bits for ``status``."""
    bits = 0
    if status.paper_out:
        bits |= NO_PAPER | INPUT_TRAY_EMPTY
    if status.toner == "low":
        bits |= LOW_TONER
    elif status.toner == "empty":
        bits |= NO_TONER
    if status.cover_open:
        bits |= DOOR_OPEN
    if status.jam_at:
        bits |= JAMMED
    if status.link_down:
        bits |= OFFLINE
    if status.fuser_error:
        bits |= SERVICE_REQUESTED
    return bits


def printer_status_code(status: PrinterStatus) -> int:
    """hrPrinterStatus: 1 other (stopped), 3 idle, 4 printing, 5 warmup."""
    if status.stopped:
        return 1
    if status.engine in ("printing", "purging"):
        return 4
    if status.engine == "warming":
        return 5
    return 3


class _PrinterMib(instrum.AbstractMibInstrumController):  # type: ignore[misc]
    """GET / GETNEXT over a table of values built per request (sorted by OID)."""

    def __init__(self, table: Callable[[], dict[Oid, Any]]) -> None:
        self._table = table

    def read_variables(self, *var_binds: Any, **_: Any) -> list[tuple[Any, Any]]:
        values = self._table()
        return [(name, values.get(tuple(name), v2c.NoSuchObject())) for name, _ in var_binds]

    def read_next_variables(self, *var_binds: Any, **_: Any) -> list[tuple[Any, Any]]:
        values = self._table()
        oids = sorted(values)
        out: list[tuple[Any, Any]] = []
        for name, _ in var_binds:
            at = bisect.bisect_right(oids, tuple(name))
            if at < len(oids):
                out.append((v2c.ObjectIdentifier(oids[at]), values[oids[at]]))
            else:
                out.append((name, v2c.EndOfMibView()))
        return out


class SnmpAgent:
    """A read-only SNMP v1/v2c agent; see the module docstring."""

    def __init__(self, board: StatusBoard, description: PrinterDescription, host: str,
                 port: int, community: str = "public") -> None:
        self._board = board
        self._description = description
        self._host, self._port = host, port
        self._community = community
        self._engine: engine.SnmpEngine | None = None
        self._socket: socket.socket | None = None
        self._started = time.monotonic()
        self.address: tuple[str, int] = (host, port)

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((self._host, self._port))
        sock.setblocking(False)
        self._socket = sock
        host, port = sock.getsockname()[:2]
        self.address = (str(host), int(port))
        snmp = engine.SnmpEngine()
        transport = udp.UdpAsyncioTransport(loop=asyncio.get_running_loop())
        config.add_transport(snmp, udp.DOMAIN_NAME, transport.open_server_mode(sock=sock))
        config.add_v1_system(snmp, "printer-emu", self._community)
        snmp_context = context.SnmpContext(snmp)
        snmp_context.unregister_context_name(v2c.OctetString(""))
        snmp_context.register_context_name(v2c.OctetString(""), _PrinterMib(self._table))
        cmdrsp.GetCommandResponder(snmp, snmp_context)
        cmdrsp.NextCommandResponder(snmp, snmp_context)
        cmdrsp.BulkCommandResponder(snmp, snmp_context)
        self._engine = snmp
        await asyncio.sleep(0)  # let the transport's endpoint open

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.transport_dispatcher.close_dispatcher()
            self._engine = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _table(self) -> dict[Oid, Any]:
        s = self._board.snapshot
        d = self._description
        cfg = d.config
        level = max(0, min(100, round(s.toner_pct)))
        stopped = s.stopped
        warning = s.toner != "ok" or s.paper_out
        name = f"printer-emu {cfg.name.upper()}"
        ticks = int((time.monotonic() - self._started) * 100) % 2**32
        i = v2c.Integer
        text = v2c.OctetString
        return {
            (*_SYSTEM, 1, 0): text(f"{name}: {cfg.board.description}"),
            (*_SYSTEM, 2, 0): v2c.ObjectIdentifier(_ENTERPRISE),
            (*_SYSTEM, 3, 0): v2c.TimeTicks(ticks),
            (*_SYSTEM, 4, 0): text(""),
            (*_SYSTEM, 5, 0): text(cfg.name),
            (*_SYSTEM, 6, 0): text(""),
            (*_HR_DEVICE, 1, 1): i(1),
            (*_HR_DEVICE, 2, 1): v2c.ObjectIdentifier(_HR_DEVICE_PRINTER),
            (*_HR_DEVICE, 3, 1): text(name),
            (*_HR_DEVICE, 5, 1): i(5 if stopped else 3 if warning else 2),
            (*_HR_PRINTER, 1, 1): i(printer_status_code(s)),
            (*_HR_PRINTER, 2, 1): text(detected_error_state(s).to_bytes(2, "big")),
            (*_PRT_INPUT, 2, 1, 1): i(4),  # sheetFeedAutoNonRemovableTray
            (*_PRT_INPUT, 3, 1, 1): i(4),  # micrometers
            (*_PRT_INPUT, 4, 1, 1): i(d.media.length_hmm * 10),
            (*_PRT_INPUT, 5, 1, 1): i(d.media.width_hmm * 10),
            (*_PRT_INPUT, 8, 1, 1): i(8),  # sheets
            (*_PRT_INPUT, 9, 1, 1): i(cfg.tray.capacity_sheets),
            (*_PRT_INPUT, 10, 1, 1): i(0 if s.paper_out else -3),
            (*_PRT_INPUT, 11, 1, 1): i(16 if s.paper_out else 0),
            (*_PRT_INPUT, 12, 1, 1): text(d.media.keyword),
            (*_PRT_INPUT, 13, 1, 1): text("Tray 1"),
            (*_PRT_MARKER, 3, 1, 1): i(7),  # impressions
            (*_PRT_MARKER, 4, 1, 1): v2c.Counter32(s.pages_delivered % 2**32),
            (*_PRT_SUPPLIES, 2, 1, 1): i(1),
            (*_PRT_SUPPLIES, 3, 1, 1): i(1),
            (*_PRT_SUPPLIES, 4, 1, 1): i(3),  # supplyThatIsConsumed
            (*_PRT_SUPPLIES, 5, 1, 1): i(3),  # toner
            (*_PRT_SUPPLIES, 6, 1, 1): text("Black Toner"),
            (*_PRT_SUPPLIES, 7, 1, 1): i(19),  # percent
            (*_PRT_SUPPLIES, 8, 1, 1): i(100),
            (*_PRT_SUPPLIES, 9, 1, 1): i(level),
            (*_PRT_COLORANT, 4, 1, 1): text("black"),
        }
