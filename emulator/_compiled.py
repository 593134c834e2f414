"""Which of the project's modules run compiled, and whether a compiled one is stale.

An install with a C compiler builds the platform's hot modules with mypyc (``setup.py``
lists them): the scheduler, the interrupt controller and the board's physics models. A
compiled module is an extension file beside its source (``_scheduler.py`` and
``_scheduler.cpython-311-x86_64-linux-gnu.so``), and Python imports the extension when
both are there. So a source edited after the build is *not* what runs until the next
build: :func:`stale_modules` finds those in a source checkout, and the CLI, the tests
and the benchmarks refuse to pretend otherwise.

Everything here reads the package directories; nothing is imported.
"""

from __future__ import annotations

import importlib.machinery
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("hal", "firmware", "emulator", "boards")
"""The project's packages, as directories beside this one."""

_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class CompiledModule:
    name: str
    """Dotted module name (``hal._scheduler``)."""
    source: Path
    extension: Path

    @property
    def stale(self) -> bool:
        """The source changed after the extension was built: the extension runs."""
        return self.source.stat().st_mtime > self.extension.stat().st_mtime


def compiled_modules(root: Path = _ROOT, packages: tuple[str, ...] = PACKAGES
                     ) -> list[CompiledModule]:
    """Every module of ``packages`` under ``root`` that has an extension beside its
    source, sorted by name. mypyc's runtime companions (``*__mypyc``) have no source of
    their own and are not listed."""
    found: list[CompiledModule] = []
    for package in packages:
        directory = root / package
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            for extension in directory.glob(f"*{suffix}"):
                stem = extension.name[: -len(suffix)]
                source = directory / f"{stem}.py"
                if source.is_file():
                    found.append(CompiledModule(f"{package}.{stem}", source, extension))
    return sorted(found, key=lambda module: module.name)


def stale_modules(root: Path = _ROOT, packages: tuple[str, ...] = PACKAGES
                  ) -> list[CompiledModule]:
    """The compiled modules whose source is newer than their extension, in a source
    checkout (``setup.py`` beside the packages: where ``pip install -e .`` builds in
    place and sources get edited). Never in an installed copy: an install writes every
    file at once, in no set order, so there a source may be a little newer than its
    extension without being any different."""
    if not (root / "setup.py").is_file():
        return []
    return [module for module in compiled_modules(root, packages) if module.stale]


def stale_message(stale: list[CompiledModule]) -> str:
    """One line naming what is stale and how to rebuild."""
    names = ", ".join(str(module.source.relative_to(module.source.parents[1]))
                      for module in stale)
    return (f"compiled modules older than their source: {names}; the old code would run. "
            "Rebuild with `pip install -e .` (or delete the .so files to run the sources)")
