"""The world around the firmware: physics models of the printer's mechanics, the
``EmulatedBoard`` that wires them to the HAL, fault injection, scenarios, runs, and
the ``printer-emu`` CLI.
"""

from emulator._board import Delivery, EmulatedBoard, Probe
from emulator._harness import PrinterHarness, PrinterTimeout
from emulator._run import Outcome, PrintRun
from emulator._scenario import Scenario, ScenarioError, load_scenario

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
