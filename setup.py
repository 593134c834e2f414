"""Build hook: the platform's hot modules compiled with mypyc, when it can.

Everything else about the package is in ``pyproject.toml``. See ``_COMPILED`` for what
is compiled and why; see the README ("Compiled platform") for how to check and opt out.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

_COMPILED = [
    "hal/_scheduler.py",
    "hal/_irq.py",
    "emulator/_paper_path.py",
    "emulator/_fuser.py",
    "emulator/_watchdog.py",
    "emulator/_toner.py",
    "emulator/_tray.py",
]


def _ext_modules() -> list[object]:
    if os.environ.get("PRINTER_EMU_PURE_PYTHON", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("printer-emu: mypyc not available, installing pure Python", file=sys.stderr)
        return []
    extensions = mypycify(
        ["--config-file", "", "--ignore-missing-imports", *_COMPILED],
        opt_level="3",
        separate=True,
    )
    for extension in extensions:
        extension.optional = True  # no C compiler: the same modules, interpreted
    return extensions


setup(ext_modules=_ext_modules())
