"""The simulated-fault commands: :class:`hal.FaultInjector` over the ``sim.*`` requests of
docs/board-commands.md, for a device whose HELLO announces ``"sim"`` (the virtual device;
a real board has none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hal import Button, JamPoint

SimSender = Callable[[str, dict[str, Any] | None], None]
"""``send(cmd, args)``: send a ``sim.*`` command now (or queue it while the link is down)."""

SIM_CHANGES_READINGS = frozenset({"sim.toner", "sim.replace_toner", "sim.heater"})
"""Simulation commands after which the analog readings are read again at once."""


class SimFaults:
    """:class:`hal.FaultInjector` over the ``sim.*`` commands. Each method checks its
    arguments (``ValueError``), sends its command through ``send`` and returns; the
    effect follows a round trip later."""

    def __init__(self, send: SimSender) -> None:
        self._send = send

    def set_toner_pct(self, level_pct: float) -> None:
        if not 0.0 <= level_pct <= 100.0:
            raise ValueError(f"a toner level is in [0, 100] %, got {level_pct}")
        self._send("sim.toner", {"pct": float(level_pct)})

    def replace_toner(self) -> None:
        self._send("sim.replace_toner", None)

    def set_tray(self, sheets: int) -> None:
        if sheets < 0:
            raise ValueError(f"a tray holds 0 sheets or more, got {sheets}")
        self._send("sim.tray", {"sheets": int(sheets)})

    def jam(self, point: JamPoint) -> None:
        self._send("sim.jam", {"at": str(JamPoint(point))})

    def misfeed(self) -> None:
        self._send("sim.misfeed", None)

    def set_cover(self, is_open: bool) -> None:
        self._send("sim.cover", {"open": bool(is_open)})

    def press(self, button: Button) -> None:
        self._send("sim.press", {"button": str(Button(button))})

    def set_heater_failed(self, failed: bool) -> None:
        self._send("sim.heater", {"failed": bool(failed)})
