"""The world around the firmware: physics models of the printer's mechanics, the
``EmulatedBoard`` that wires them to the HAL, fault injection, scenarios, runs, and
the ``printer-emu`` CLI.
"""

from emulator.board import Delivery, EmulatedBoard, Probe
from emulator.run._harness import PrinterHarness, PrinterTimeout
from emulator.run._print_run import Outcome, PrintRun
from emulator.run._scenario import Scenario, ScenarioError, load_scenario

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
