"""Which modules run compiled, and the refusal to run a stale one (emulator/_compiled.py).

The package directories here are made in a temporary directory: an "extension" is any
file with an extension suffix, which is all the code looks at.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
from pathlib import Path

import pytest

from emulator._compiled import (
    CompiledModule,
    compiled_modules,
    stale_message,
    stale_modules,
)
from emulator.cli import _main as _cli

REPO = Path(__file__).resolve().parents[2]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _module(root: Path, package: str, stem: str, *, built_after_s: float) -> None:
    """``package/stem.py`` and its extension, built ``built_after_s`` after the source
    was last written (negative: the source was edited after the build), in a source
    checkout (a ``setup.py`` at ``root``)."""
    (root / "setup.py").touch()
    directory = root / package
    directory.mkdir(exist_ok=True)
    source = directory / f"{stem}.py"
    extension = directory / f"{stem}{SUFFIX}"
    source.write_text("")
    extension.write_bytes(b"")
    os.utime(source, (1_000_000, 1_000_000))
    os.utime(extension, (1_000_000 + built_after_s, 1_000_000 + built_after_s))


def test_a_module_with_an_extension_beside_its_source_is_compiled(tmp_path: Path) -> None:
    _module(tmp_path, "hal", "_scheduler", built_after_s=5)
    _module(tmp_path, "emulator", "_fuser", built_after_s=5)
    (tmp_path / "hal" / "_board.py").write_text("")  # no extension: interpreted
    # mypyc's runtime companion has no source of its own: not a module of ours.
    (tmp_path / "hal" / f"_scheduler__mypyc{SUFFIX}").write_bytes(b"")

    found = compiled_modules(tmp_path, ("hal", "emulator"))

    assert [module.name for module in found] == ["emulator.physics._fuser", "hal._scheduler"]
    assert not any(module.stale for module in found)
    assert stale_modules(tmp_path, ("hal", "emulator")) == []


def test_a_source_edited_after_the_build_is_stale_and_named(tmp_path: Path) -> None:
    _module(tmp_path, "hal", "_scheduler", built_after_s=5)
    _module(tmp_path, "hal", "_irq", built_after_s=-5)

    stale = stale_modules(tmp_path, ("hal",))

    assert [module.name for module in stale] == ["hal._irq"]
    message = stale_message(stale)
    assert "hal/_irq.py" in message
    assert "_scheduler" not in message
    assert "pip install -e ." in message
    assert "\n" not in message


def test_an_installed_copy_is_never_stale(tmp_path: Path) -> None:
    # pip writes a wheel's files in no set order: a source a moment newer than its
    # extension is the same code.
    _module(tmp_path, "hal", "_irq", built_after_s=-0.001)
    (tmp_path / "setup.py").unlink()  # site-packages: no setup.py beside the packages

    assert [module.name for module in compiled_modules(tmp_path, ("hal",))] == ["hal._irq"]
    assert stale_modules(tmp_path, ("hal",)) == []


def test_a_tree_with_nothing_compiled_has_nothing_stale(tmp_path: Path) -> None:
    (tmp_path / "hal").mkdir()
    (tmp_path / "hal" / "_scheduler.py").write_text("")
    assert compiled_modules(tmp_path, ("hal",)) == []
    assert stale_modules(tmp_path, ("hal",)) == []


@pytest.fixture
def one_stale(tmp_path: Path) -> list[CompiledModule]:
    """``hal/_irq.py`` edited after its build, in a tree of its own."""
    _module(tmp_path, "hal", "_irq", built_after_s=-5)
    return stale_modules(tmp_path, ("hal",))


def test_the_cli_warns_of_stale_modules_on_stderr_and_still_runs(
    one_stale: list[CompiledModule], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_cli, "stale_modules", lambda: one_stale)

    status = _cli.main(["boards"])

    out, err = capsys.readouterr()
    assert status == 0
    assert "lp-2000" in out
    assert err.count("\n") == 1
    assert err.startswith("printer-emu: warning: compiled modules older than their source")


def test_the_benchmark_runner_refuses_stale_modules(
    one_stale: list[CompiledModule], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks.__main__ import main
    from emulator import _compiled

    monkeypatch.setattr(_compiled, "stale_modules", lambda: one_stale)

    status = main(["scheduler", "--json"])

    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert "hal/_irq.py" in err


def test_what_setup_py_compiles_exists_and_is_never_the_printers_logic() -> None:
    # The active objects are the code under test, and transitions is the floor's other
    # side: both stay interpreted, so their tracebacks and their cost are Python's. Of
    # the firmware only the kernel, the platform they run on, is compiled.
    tree = ast.parse((REPO / "setup.py").read_text())
    listed = next(
        ast.literal_eval(node.value) for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "_COMPILED" for t in node.targets)
    )
    assert listed
    for path in listed:
        assert (REPO / path).is_file(), path
        assert not path.startswith("firmware/") or path == "firmware/_kernel.py", path
