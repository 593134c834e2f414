"""The world the firmware drives: the printer's mechanics and sensors as models in the
scheduler's exact time, each raising the interrupt lines its sensors are wired to.

Every model is driven through :mod:`hal` only (a scheduler, an interrupt controller) and
never imports the firmware. :class:`emulator.board.EmulatedBoard` wires them together:

* :class:`PaperPath` — sheets from the pickup roller past the sensors into the output
  tray (:class:`Sheet`, :class:`Landmark`, :func:`travel_ns`);
* :class:`Fuser` — the thermal model, its thermistor and window comparator;
* :class:`TonerCartridge` — the level, its sensor and window comparator;
* :class:`InputTray` — the stack of sheets and the paper-present sensor;
* :class:`Panel` — cover switch, buttons, LEDs and display;
* :class:`Watchdog` — the reset a board that is not kicked in time suffers;
* :func:`model_rng` — each model's own seeded random stream.
"""

from emulator.physics._fuser import Fuser
from emulator.physics._panel import BUTTON_PRESS_NS, Panel
from emulator.physics._paper_path import Landmark, PaperPath, Sheet, travel_ns
from emulator.physics._rng import model_rng
from emulator.physics._toner import TonerCartridge
from emulator.physics._tray import InputTray
from emulator.physics._watchdog import Watchdog

__all__ = [
    "BUTTON_PRESS_NS",
    "Fuser",
    "InputTray",
    "Landmark",
    "Panel",
    "PaperPath",
    "Sheet",
    "TonerCartridge",
    "Watchdog",
    "model_rng",
    "travel_ns",
]
