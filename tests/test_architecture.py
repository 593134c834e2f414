"""The house's rules, checked on every test run: the import contracts in pyproject.toml
(import-linter), private modules kept private, one concept per file, and the linters.

A wrong arrow, a reach into another package's `_module` or a file grown past what one
concept takes fails here, in the README's test command and so in CI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hal", "firmware", "emulator", "boards", "benchmarks")
# A file over this many lines holds more than one concept, unless it is one state machine.
MAX_LINES = 700
SINGLE_STATE_MACHINES = {
    "firmware/_engine.py",  # the print engine's one machine
    "hal/serial/_link.py",  # the link endpoint's one machine
}


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_the_import_contracts_hold() -> None:
    result = _run(_tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def _package_of(module: str) -> str:
    """The package whose private part `module` is: `hal.serial._wire` -> `hal.serial`."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_"):
            return ".".join(parts[:i])
    return module


def test_no_module_imports_another_packages_private_module() -> None:
    sys.path.insert(0, str(REPO))
    try:
        graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    finally:
        sys.path.remove(str(REPO))
    reaches = []
    for imported in sorted(graph.modules):
        owner = _package_of(imported)
        if owner == imported:
            continue  # a public module
        for importer in sorted(graph.find_modules_that_directly_import(imported)):
            if importer != owner and not importer.startswith(owner + "."):
                reaches.append(f"{importer} imports {imported} (private to {owner})")
    assert reaches == []


def test_no_file_is_over_the_size_of_one_concept() -> None:
    too_long = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            name = path.relative_to(REPO).as_posix()
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES and name not in SINGLE_STATE_MACHINES:
                too_long.append(f"{name}: {lines} lines")
    assert too_long == []


def test_ruff_finds_nothing() -> None:
    result = _run(_tool("ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    result = _run(_tool("mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
