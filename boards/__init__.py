"""Board descriptions (TOML, shipped in this package) and the loader that validates them.

``load_board(name_or_path)`` is the one entry point; see :mod:`boards._loader` for what
a board file may say and how mistakes are reported. ``read_input_file`` is the
bounded read every user input file goes through (board, scenario and job files).
"""

from boards._input_file import (
    CONFIG_FILE_LIMIT_BYTES,
    JOB_FILE_LIMIT_BYTES,
    InputFileError,
    read_input_file,
)
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
    "CONFIG_FILE_LIMIT_BYTES",
    "IRQ_LINE_NAMES",
    "JOB_FILE_LIMIT_BYTES",
    "BoardConfig",
    "BoardFileError",
    "EngineConfig",
    "FlashConfig",
    "FuserConfig",
    "InputFileError",
    "IrqLineConfig",
    "PaperPathConfig",
    "SerialConfig",
    "TonerConfig",
    "TrayConfig",
    "available_boards",
    "load_board",
    "read_input_file",
]
