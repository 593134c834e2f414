"""Board descriptions (TOML, shipped in this package) and the loader that validates them.

``load_board(name_or_path)`` is the one entry point; see :mod:`boards._loader` for what
a board file may say and how mistakes are reported.
"""

from boards._loader import BoardFileError, available_boards, load_board
from boards._schema import (
    IRQ_LINE_NAMES,
    BoardConfig,
    EngineConfig,
    FlashConfig,
    FuserConfig,
    IrqLineConfig,
    PaperPathConfig,
    SerialConfig,
    TonerConfig,
    TrayConfig,
)

__all__ = [
    "IRQ_LINE_NAMES",
    "BoardConfig",
    "BoardFileError",
    "EngineConfig",
    "FlashConfig",
    "FuserConfig",
    "IrqLineConfig",
    "PaperPathConfig",
    "SerialConfig",
    "TonerConfig",
    "TrayConfig",
    "available_boards",
    "load_board",
]
