"""State diagrams (emulator/cli/_diagram.py): Mermaid text from the firmware's live machines,
every state and transition in it, the README block, and the ``diagram`` subcommand."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from emulator.cli._diagram import (
    BEGIN_MARKER,
    END_MARKER,
    diagrams,
    live_objects,
    mermaid,
    readme_section,
    register,
    render_readme_section,
)
from firmware import ActiveObject

_EDGE = re.compile(r"^\s*(\w+) --> (\w+): (.*)$")


def edges(text: str) -> set[tuple[str, str, str]]:
    """``(source, dest, trigger)`` of every labelled edge in a Mermaid state diagram."""
    found: set[tuple[str, str, str]] = set()
    for line in text.splitlines():
        m = _EDGE.match(line)
        if m:
            for label in m.group(3).split(" | "):
                found.add((m.group(1), m.group(2), label.split(" ")[0]))
    return found


@pytest.fixture(scope="module")
def objects() -> list[ActiveObject]:
    return live_objects()


def test_the_live_objects_are_every_active_object(objects: list[ActiveObject]) -> None:
    names = [ao.NAME for ao in objects]
    assert names == sorted(names)
    assert set(names) >= {"cover", "engine", "fuser", "panel", "spooler", "toner", "tray"}


def test_each_diagram_has_every_state_and_transition_of_its_live_machine(
        objects: list[ActiveObject]) -> None:
    for ao in objects:
        text = mermaid(ao)
        assert text.startswith(f"---\ntitle: {ao.NAME}\n---\nstateDiagram-v2\n")
        for state in ao.machine.states:
            assert f'state "{state}" as {state}' in text, (ao.NAME, state)
        assert f"[*] --> {ao.machine.initial}" in text
        drawn = edges(text)
        for trigger, event in ao.machine.events.items():
            for source, transitions in event.transitions.items():
                for t in transitions:
                    dest = t.dest if t.dest is not None else source
                    assert (source, dest, trigger) in drawn, (ao.NAME, source, dest, trigger)


def test_guards_and_internal_transitions_are_labelled(objects: list[ActiveObject]) -> None:
    by_name = {ao.NAME: ao for ao in objects}
    tray = mermaid(by_name["tray"])
    assert "loaded --> empty: paper [!_present]" in tray
    assert "empty --> loaded: paper [_present]" in tray
    assert "[internal]" in mermaid(by_name["spooler"])


def test_diagrams_carry_no_styling_and_are_deterministic(objects: list[ActiveObject]) -> None:
    first = diagrams()
    assert list(first) == sorted(ao.NAME for ao in objects)
    for text in first.values():
        assert "classDef" not in text and "Class " not in text
        assert "\n\n\n" not in text
    assert diagrams() == first


def test_a_machine_changed_at_run_time_is_not_drawn_wrong(objects: list[ActiveObject]) -> None:
    (cover,) = [ao for ao in live_objects() if ao.NAME == "cover"]
    cover.machine.add_transition("slammed", "open", "closed")
    with pytest.raises(RuntimeError, match="differs"):
        mermaid(cover)


def test_readme_section_has_the_markers_and_one_block_per_object(
        objects: list[ActiveObject]) -> None:
    section = render_readme_section()
    assert section.startswith(BEGIN_MARKER + "\n")
    assert section.endswith(END_MARKER + "\n")
    assert section.count("```mermaid\n") == len(objects)
    for ao in objects:
        assert mermaid(ao).rstrip() in section
    assert render_readme_section() == section


def test_readme_section_is_found_between_the_markers() -> None:
    block = f"{BEGIN_MARKER}\nx\n{END_MARKER}"
    assert readme_section(f"# t\n\n{block}\n\n## more\n") == block + "\n"
    assert readme_section("no markers here") is None
    assert readme_section(f"{END_MARKER}\n{BEGIN_MARKER}") is None


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="printer-emu")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


def test_diagram_command_prints_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["diagram", "--object", "tray"]) == 0
    out = capsys.readouterr().out
    assert out == diagrams(["tray"])["tray"]
    assert _cli(["diagram"]) == 0
    assert capsys.readouterr().out.count("stateDiagram-v2") >= 7
    assert _cli(["diagram", "--markdown"]) == 0
    assert capsys.readouterr().out == render_readme_section()


def test_diagram_command_reports_mistakes_in_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["diagram", "--object", "laser"]) == 2
    err = capsys.readouterr().err
    assert "no active object 'laser'" in err and err.count("\n") == 1
    assert _cli(["diagram", "--markdown", "--object", "tray"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert _cli(["diagram", "-o", "/no/such/dir/x.mmd"]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_diagram_command_writes_a_file(tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path)) / "d.md"
    assert _cli(["diagram", "--markdown", "-o", str(out)]) == 0
    assert out.read_text() == render_readme_section()


# -- pictures (issue 16) ----------------------------------------------------------------


def _graphviz_available() -> bool:
    import shutil

    try:
        import graphviz  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


needs_graphviz = pytest.mark.skipif(not _graphviz_available(),
                                    reason="missing tool: the graphviz package and dot")


@needs_graphviz
@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_a_picture_is_a_picture(suffix: str, magic: bytes, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from emulator.cli import main

    out = tmp_path / f"d{suffix}"
    assert main(["diagram", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no .gv left behind


@needs_graphviz
def test_no_internal_leaves_the_internal_self_loops_out(tmp_path: Path) -> None:
    from emulator.cli import main

    full, bare = tmp_path / "full.svg", tmp_path / "bare.svg"
    assert main(["diagram", "-o", str(full), "--object", "engine"]) == 0
    assert main(["diagram", "-o", str(bare), "--object", "engine", "--no-internal"]) == 0
    assert "[internal]" in full.read_text() and "[internal]" not in bare.read_text()


def test_no_internal_in_mermaid_text(capsys: pytest.CaptureFixture[str]) -> None:
    from emulator.cli import main

    assert main(["diagram", "--object", "engine", "--no-internal"]) == 0
    text = capsys.readouterr().out
    assert "stateDiagram-v2" in text and "[internal]" not in text


def test_mermaid_text_goes_to_md_files(tmp_path: Path) -> None:
    from emulator.cli import main

    out = tmp_path / "d.mmd"
    assert main(["diagram", "-o", str(out)]) == 0
    assert "stateDiagram-v2" in out.read_text()


def test_an_unknown_picture_format_is_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from emulator.cli import main

    assert main(["diagram", "-o", str(tmp_path / "d.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FILE.svg or FILE.png" in err
    assert not (tmp_path / "d.jpg").exists()


def test_a_picture_without_graphviz_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from emulator.cli import main

    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz now fails
    assert main(["diagram", "-o", str(tmp_path / "d.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "printer-emu[diagram]" in err
    assert not (tmp_path / "d.png").exists()
