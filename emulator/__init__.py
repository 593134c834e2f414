"""The world around the firmware, and the tools that run it.

From the bottom up: ``physics`` (the printer's mechanics as models), ``board``
(:class:`EmulatedBoard`: the models wired to the HAL), ``run`` (a print run, scenarios,
the HIL harness), then ``device``, ``flash`` and ``trace``, and on top ``cli`` and the
pytest plugin. Here are the names a user of the emulator starts from.
"""

from emulator.board import Delivery, EmulatedBoard, Probe
from emulator.run import (
    Outcome,
    PrinterHarness,
    PrinterTimeout,
    PrintRun,
    Scenario,
    ScenarioError,
    load_scenario,
)

__all__ = [
    "Delivery",
    "EmulatedBoard",
    "Outcome",
    "PrintRun",
    "PrinterHarness",
    "PrinterTimeout",
    "Probe",
    "Scenario",
    "ScenarioError",
    "load_scenario",
]
