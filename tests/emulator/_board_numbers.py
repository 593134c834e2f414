"""lp-2000's numbers the emulated board's tests expect, each from the board file through
the paper path's formula (an edge reaches ``x`` mm after ``round(x / speed * 1e9)`` ns of
motor time), and a board running its motor and laser."""

from __future__ import annotations

import math

from boards import BoardConfig, load_board
from emulator.board import EmulatedBoard
from hal import Output

LP = load_board("lp-2000")
MS = 1_000_000
S = 1_000_000_000


def ns(mm: float, speed_mm_s: float = LP.engine.paper_speed_mm_s) -> int:
    return round(mm / speed_mm_s * 1e9)


LENGTH = LP.engine.sheet_length_mm
DRUM_LEAD = ns(LP.paper_path.drum_mm)  # 550 ms after pickup
DRUM_TRAIL = ns(LP.paper_path.drum_mm + LENGTH)  # 2.035 s
OUTPUT = ns(LP.paper_path.output_mm + LENGTH)  # 2.985 s
PER_PAGE_AT_5 = 100.0 / LP.toner.capacity_pages_at_5pct


def warm_up_ns(config: BoardConfig) -> int:
    """ambient -> ready with the heater on: the first ns after tau * ln(...)."""
    f = config.fuser
    s = f.tau_s * math.log((f.max_c - f.ambient_c) / (f.max_c - f.ready_c))
    return math.floor(s * 1e9) + 1


def running_board(config: BoardConfig = LP, seed: int = 0) -> EmulatedBoard:
    board = EmulatedBoard(config, seed=seed)
    board.set_output(Output.MOTOR, True)
    board.set_output(Output.LASER, True)
    return board
