"""A print run: the firmware on any board, jobs in, scenario actions applied at their
moments, a record out; the scenario files that describe one; the HIL harness that drives
one from a test.

* :class:`PrintRun` (``_print_run.py``) — what ``printer-emu run`` and the harness
  share; its ``result()`` is the ``--json`` contract;
* :class:`Scenario` and :func:`load_scenario` (``_scenario.py``) — the TOML files;
* :class:`PrinterHarness` (``_harness.py``) — the HIL tests' view of a printer.

``emulator.run`` imports only ``hal``, ``firmware`` and ``boards``: it runs on any
:class:`hal.Board`, emulated or serial.
"""

from emulator.run._harness import PrinterHarness, PrinterTimeout
from emulator.run._print_run import ActionListener, BoardObservation, Outcome, PrintRun
from emulator.run._scenario import (
    MAX_PAGES,
    MAX_SEED,
    Action,
    JobSpec,
    Moment,
    Scenario,
    ScenarioError,
    TimedAction,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "MAX_PAGES",
    "MAX_SEED",
    "Action",
    "ActionListener",
    "BoardObservation",
    "JobSpec",
    "Moment",
    "Outcome",
    "PrintRun",
    "PrinterHarness",
    "PrinterTimeout",
    "Scenario",
    "ScenarioError",
    "TimedAction",
    "load_scenario",
    "parse_scenario",
]
