"""The benchmark runner: ``python -m benchmarks NAME [--json] [--scale F]``, run from
the checkout's root.

``benchmarks`` is a folder of the checkout, not part of the installed package: ``-m``
puts the current directory first on the path, so Python finds it there, and with it the
checkout's ``hal``, ``firmware``, ``emulator`` and ``boards``: what is measured is the
checkout's code, whether the project is installed editable or not (the install brings
the dependencies; ``pip install '.[bench]'`` adds SimPy and imgtool).

* ``NAME`` is one of :data:`BENCHMARKS`; the module is imported only when it is run.
* ``--json`` prints exactly one JSON object (the benchmark's result, see
  :mod:`benchmarks`) on stdout and nothing else there; without it, a readable table.
* ``--scale F`` runs the fraction ``F`` of the full workload (for smoke tests).
* ``--list`` prints the registered names, one a line.

Exit status: 0 on success; 2 for a usage error, an unknown name, or a benchmark that
cannot be loaded (its module is not there yet, lacks ``run``, or needs a package that is
not installed) — each reported as one line on stderr. A benchmark that raises is a bug
in it and ends with its traceback (status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, Final

from benchmarks import SCALE_ENV, print_result

BENCHMARKS: Final[dict[str, str]] = {
    "scheduler": "benchmarks._scheduler",
    "firmware": "benchmarks._firmware",
    "serial": "benchmarks._serial",
    "flash": "benchmarks._flash",
    "trace": "benchmarks._trace",
    "network": "benchmarks._network",
    "latency": "benchmarks._latency",
}
"""Registered benchmarks: name → module path. Names only: nothing is imported here."""

_PROG: Final = "python -m benchmarks"


class _LoadError(Exception):
    """A benchmark that cannot be run; the message is the one line to print."""


def _load(name: str) -> Callable[[], dict[str, Any]]:
    module_path = BENCHMARKS.get(name)
    if module_path is None:
        known = ", ".join(sorted(BENCHMARKS))
        raise _LoadError(f"unknown benchmark {name!r} (known: {known})")
    try:
        module: ModuleType = importlib.import_module(module_path)
    except ModuleNotFoundError as e:
        if e.name == module_path:
            raise _LoadError(
                f"benchmark {name!r} is not available yet (no module {module_path})"
            ) from None
        # A dependency of the benchmark is missing, not the benchmark itself.
        raise _LoadError(
            f"benchmark {name!r} needs module {e.name!r}, which is not installed "
            "(pip install 'printer-emu[bench]')"
        ) from None
    run = getattr(module, "run", None)
    if not callable(run):
        raise _LoadError(f"benchmark {name!r}: {module_path} has no run() function")
    return run  # type: ignore[no-any-return]


@contextlib.contextmanager
def _scale_env(value: float | None) -> Iterator[None]:
    """Set :data:`SCALE_ENV` for the run and put back what was there (``main`` may be
    called in-process, by tests)."""
    if value is None:
        yield
        return
    previous = os.environ.get(SCALE_ENV)
    os.environ[SCALE_ENV] = repr(value)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(SCALE_ENV, None)
        else:
            os.environ[SCALE_ENV] = previous


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="Run one of printer-emu's benchmarks.")
    parser.add_argument("name", nargs="?", help="the benchmark: " + ", ".join(BENCHMARKS))
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object of figures on stdout"
    )
    parser.add_argument(
        "--scale", type=float, default=None, help="run this fraction of the full workload"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            print(name)
        return 0
    if args.name is None:
        print(f"{_PROG}: name a benchmark: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    if args.scale is not None and not (args.scale > 0 and math.isfinite(args.scale)):
        print(f"{_PROG}: --scale must be a number > 0, got {args.scale}", file=sys.stderr)
        return 2
    try:
        run = _load(args.name)
    except _LoadError as e:
        print(f"{_PROG}: {e}", file=sys.stderr)
        return 2
    # Whatever the benchmark prints goes to stderr: stdout is kept for the result.
    with _scale_env(args.scale), contextlib.redirect_stdout(sys.stderr):
        result = run()
    if not isinstance(result, dict):
        raise TypeError(f"benchmark {args.name!r} returned {type(result).__name__}, not dict")
    if args.json:
        # allow_nan=False: NaN/Infinity are not JSON; a benchmark must not produce them.
        sys.stdout.write(json.dumps(result, allow_nan=False) + "\n")
        sys.stdout.flush()
    else:
        print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
