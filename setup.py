"""Build hook: the platform's hot modules compiled with mypyc, when it can.

Everything else about the package is in ``pyproject.toml``. ``_COMPILED`` is what is
compiled; docs/architecture.md ("The compiled platform") says why those, and the README
("Compiled platform") how to check what runs compiled and how to opt out.

Whatever goes wrong on the way, the install goes on with the Python: no mypyc in the
build environment, mypyc refusing a module, or no C compiler (each extension is
optional). CI checks that its own build did compile.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

_COMPILED = [
    "hal/_scheduler.py",
    "hal/_irq.py",
    "emulator/physics/_paper_path.py",
    "emulator/physics/_fuser.py",
    "emulator/physics/_watchdog.py",
    "emulator/physics/_toner.py",
    "emulator/physics/_tray.py",
    "firmware/_kernel.py",
]


def _ext_modules() -> list[object]:
    if os.environ.get("PRINTER_EMU_PURE_PYTHON", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("printer-emu: mypyc not available, installing pure Python", file=sys.stderr)
        return []
    try:
        extensions = mypycify(
            # The build environment holds setuptools and mypy, not the project's
            # dependencies, and the project's strict mypy settings are for its checks,
            # not for this build: no config file, and missing imports are Any.
            ["--config-file", "", "--ignore-missing-imports", *_COMPILED],
            opt_level="3",
            separate=True,  # each module with its runtime beside it, in its package
        )
    except (Exception, SystemExit) as exc:  # mypy reports a failed check by exiting
        print(f"printer-emu: mypyc failed ({exc}), installing pure Python", file=sys.stderr)
        return []
    for extension in extensions:
        extension.optional = True  # no C compiler: the same modules, interpreted
        if sys.platform != "win32":
            # Compiled float arithmetic must round as Python's does, step by step: no
            # fused multiply-add (GCC contracts by default where the CPU has FMA, as
            # on arm64), or a compiled run's instants could differ from an
            # interpreted one's in the last bit.
            extension.extra_compile_args.append("-ffp-contract=off")
    return extensions


setup(ext_modules=_ext_modules())
