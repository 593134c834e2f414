"""State diagrams of the firmware's active objects, as Mermaid ``stateDiagram-v2`` text.

The objects are the live ones: a :class:`firmware.Printer` is booted on the ``devkit``
board and its kernel's objects are read, so a new active object appears here without
anyone listing it. Each diagram is drawn by ``transitions``' own Mermaid backend
(``GraphMachine(graph_engine="mermaid")``, no Graphviz needed) from a machine built of
the object's ``STATES``, ``TRANSITIONS`` and ``INITIAL`` — the data the live machine was
built from (checked against it: a machine changed at run time raises instead of being
drawn wrong). Guards show in brackets (``!`` for ``unless``); ``[internal]`` marks a
transition that runs its callbacks without leaving its state.

Two fixes to the backend's text, both deterministic: the front matter is written as
``title: NAME`` (0.9.3 writes the bare name, which is not a Mermaid title), and the
styling lines (``classDef``/``Class``: the backend paints the model's *current* state)
are left out, since a document shows the machine, not one moment of it.

:func:`render_readme_section` is the README's block between ``<!-- diagrams:begin -->``
and ``<!-- diagrams:end -->`` (markers included); ``printer-emu diagram --markdown``
prints it and ``tests/test_readme_diagrams.py`` fails when the README's copy differs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from emulator.cli._common import EXIT_OK, Subcommands, report_error
from firmware import ActiveObject

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "DrawingError",
    "diagrams",
    "draw",
    "live_objects",
    "mermaid",
    "readme_section",
    "register",
    "render_readme_section",
]

BEGIN_MARKER: Final = "<!-- diagrams:begin -->"
END_MARKER: Final = "<!-- diagrams:end -->"
_BOARD: Final = "devkit"
_STYLE_PREFIXES: Final = ("classDef ", "Class ", "class ")


def live_objects() -> list[ActiveObject]:
    """The firmware's active objects, live on a freshly booted printer, sorted by name."""
    from boards import load_board
    from emulator.board import EmulatedBoard
    from firmware import Printer

    printer = Printer(EmulatedBoard(load_board(_BOARD)))
    return sorted(printer.firmware.kernel.objects, key=lambda ao: ao.NAME)


def _live_triples(ao: ActiveObject) -> set[tuple[str, str, str | None]]:
    """``(trigger, source, dest)`` of every transition of the live machine."""
    triples: set[tuple[str, str, str | None]] = set()
    for name, event in ao.machine.events.items():
        for source, transitions in event.transitions.items():
            for t in transitions:
                triples.add((name, source, t.dest))
    return triples


def _declared_triples(cls: type[ActiveObject]) -> set[tuple[str, str, str | None]]:
    triples: set[tuple[str, str, str | None]] = set()
    for spec in cls.TRANSITIONS:
        sources = spec["source"]
        for source in [sources] if isinstance(sources, str) else sources:
            triples.add((spec["trigger"], source, spec.get("dest")))
    return triples


def _transitions(cls: type[ActiveObject], internal: bool) -> list[dict[str, Any]]:
    """The class's transitions, without the internal ones (``dest`` None) unless asked."""
    return [t for t in cls.TRANSITIONS if internal or t.get("dest") is not None]


def mermaid(ao: ActiveObject, *, internal: bool = True) -> str:
    """The ``stateDiagram-v2`` text of one live active object; ``internal=False`` leaves
    out the transitions that stay in their state."""
    from transitions.extensions.diagrams import GraphMachine

    cls = type(ao)
    if list(ao.machine.states) != list(cls.STATES) or _live_triples(ao) != _declared_triples(cls):
        raise RuntimeError(f"{ao.NAME}: the live machine differs from {cls.__name__}'s "
                           "STATES/TRANSITIONS; draw it from those and it would lie")

    class _Model:
        pass

    model: Any = _Model()
    GraphMachine(model=model, states=list(cls.STATES), transitions=_transitions(cls, internal),
                 initial=cls.INITIAL, auto_transitions=False, graph_engine="mermaid",
                 title=ao.NAME, show_conditions=True)
    text: str = model.get_graph().draw(None)
    lines = text.splitlines()
    if lines[:1] == ["---"] and len(lines) > 2 and lines[2] == "---":
        lines[1] = f"title: {ao.NAME}"
    kept = [line.rstrip() for line in lines
            if not line.strip().startswith(_STYLE_PREFIXES)]
    # Drop the blank lines the styling left behind, keeping single separators.
    out: list[str] = []
    for line in kept:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).rstrip() + "\n"


def _chosen(names: Sequence[str] | None) -> list[ActiveObject]:
    objects = {ao.NAME: ao for ao in live_objects()}
    chosen = sorted(objects) if not names else list(dict.fromkeys(names))
    for name in chosen:
        if name not in objects:
            raise KeyError(name)
    return [objects[name] for name in chosen]


def diagrams(names: Sequence[str] | None = None, *, internal: bool = True) -> dict[str, str]:
    """``{object name: Mermaid text}``, sorted by name; ``names`` picks some (KeyError
    for an unknown one)."""
    return {ao.NAME: mermaid(ao, internal=internal) for ao in _chosen(names)}


class DrawingError(Exception):
    """A picture that cannot be drawn (Graphviz missing, a file not written): one line."""


def _guards(spec: dict[str, Any]) -> str:
    def names(value: Any) -> list[str]:
        items = value if isinstance(value, list | tuple) else [value]
        return [getattr(v, "__name__", str(v)) for v in items if v]

    guards = names(spec.get("conditions")) + [f"!{n}" for n in names(spec.get("unless"))]
    return f" [{', '.join(guards)}]" if guards else ""


def draw(path: Path, names: Sequence[str] | None = None, *, internal: bool = True) -> None:
    """Draw the active objects' state machines into ``path`` (``.svg`` or ``.png``), one
    cluster an object, with Graphviz's ``dot`` (the ``graphviz`` package, the optional
    extra ``diagram``). Raises DrawingError; KeyError for an unknown object."""
    chosen = _chosen(names)
    try:
        import graphviz  # type: ignore[import-untyped]
    except ImportError:
        raise DrawingError(_NEEDS_GRAPHVIZ) from None
    graph = graphviz.Digraph("printer", graph_attr={"rankdir": "LR", "fontname": "Helvetica"},
                             node_attr={"shape": "box", "style": "rounded",
                                        "fontname": "Helvetica"},
                             edge_attr={"fontname": "Helvetica", "fontsize": "10"})
    for ao in chosen:
        cls = type(ao)
        with graph.subgraph(name=f"cluster_{ao.NAME}") as sub:
            sub.attr(label=ao.NAME)
            sub.node(f"{ao.NAME}.__start", "", shape="point")
            for state in cls.STATES:
                sub.node(f"{ao.NAME}.{state}", str(state))
            sub.edge(f"{ao.NAME}.__start", f"{ao.NAME}.{cls.INITIAL}")
            for spec in _transitions(cls, internal):
                sources = spec["source"]
                dest = spec.get("dest")
                for source in [sources] if isinstance(sources, str) else sources:
                    label = spec["trigger"] + _guards(spec)
                    if dest is None:
                        label += " [internal]"
                    sub.edge(f"{ao.NAME}.{source}", f"{ao.NAME}.{dest or source}", label)
    try:
        graph.render(outfile=str(path), format=path.suffix[1:].lower(), cleanup=True)
    except graphviz.ExecutableNotFound:
        raise DrawingError(_NEEDS_GRAPHVIZ) from None
    except (OSError, graphviz.CalledProcessError) as e:
        raise DrawingError(f"cannot draw {path}: {e}") from None
    finally:
        path.with_suffix(".gv").unlink(missing_ok=True)


_NEEDS_GRAPHVIZ = ("drawing a picture needs the graphviz package and Graphviz's dot: "
                   "pip install 'printer-emu[diagram]' and apt install graphviz "
                   "(or write Mermaid text: -o FILE.md, FILE.mmd or stdout)")
_PICTURES = (".svg", ".png")
_TEXTS = (".md", ".mmd", ".mermaid", ".txt")


def render_readme_section() -> str:
    """The README's diagram block, markers included, ending with a newline."""
    objects = live_objects()
    parts = [
        BEGIN_MARKER,
        "<!-- Generated by `printer-emu diagram --markdown` from the live machines; "
        "tests/test_readme_diagrams.py fails when this block no longer matches the "
        "code. -->",
        "",
        "State diagrams of the firmware's active objects (`printer-emu diagram`). Guards "
        "are in brackets (`!` means *unless*); `[internal]` marks a transition that runs "
        "its callbacks without leaving its state.",
        "",
    ]
    for ao in objects:
        cls = type(ao)
        parts += [f"**{ao.NAME}** (`{cls.__module__}.{cls.__name__}`, priority "
                  f"{cls.PRIORITY})", "", "```mermaid", mermaid(ao).rstrip(), "```", ""]
    parts.append(END_MARKER)
    return "\n".join(parts) + "\n"


def readme_section(text: str) -> str | None:
    """The block of ``text`` from the begin marker to the end marker (included, with a
    final newline), or ``None`` when the markers are not both there in order."""
    begin = text.find(BEGIN_MARKER)
    end = text.find(END_MARKER, begin + 1) if begin >= 0 else -1
    if begin < 0 or end < 0:
        return None
    return text[begin:end + len(END_MARKER)] + "\n"


# -- the command line -----------------------------------------------------------------


def register(subcommands: Subcommands) -> None:
    """Add ``printer-emu diagram``; its handler returns the exit status."""
    p = subcommands.add_parser(
        "diagram", help="the state diagram of every active object (Mermaid, SVG, PNG)",
        description="Each active object's state diagram, from the firmware's live "
                    "machines: Mermaid stateDiagram-v2 text on stdout or -o FILE.md/.mmd, "
                    "or a picture with -o FILE.svg/.png (needs Graphviz: pip install "
                    "'printer-emu[diagram]', apt install graphviz).")
    p.add_argument("--markdown", action="store_true",
                   help="print the README block (markers included), as in docs/diagrams.md")
    p.add_argument("--object", action="append", default=[], metavar="NAME",
                   help="only this active object (repeatable)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE, not stdout: .svg or .png draws a picture, .md or "
                        ".mmd writes Mermaid text")
    p.add_argument("--no-internal", dest="internal", action="store_false",
                   help="leave out internal transitions (those that stay in their state)")
    p.set_defaults(handler=_cmd_diagram)


def _cmd_diagram(args: argparse.Namespace) -> int:
    if args.markdown and args.object:
        return report_error("diagram: --markdown shows every object; drop --object")
    suffix = Path(args.output).suffix.lower() if args.output else ""
    if args.output and suffix not in _PICTURES + _TEXTS:
        return report_error(f"diagram: -o {args.output}: expected FILE.svg or FILE.png (a "
                            "picture) or FILE.md or FILE.mmd (Mermaid text)")
    if suffix in _PICTURES:
        if args.markdown:
            return report_error("diagram: --markdown is text; write it to FILE.md")
        try:
            draw(Path(args.output), args.object or None, internal=args.internal)
        except KeyError as e:
            known = ", ".join(ao.NAME for ao in live_objects())
            return report_error(f"diagram: no active object {e.args[0]!r} (known: {known})")
        except DrawingError as e:
            return report_error(f"diagram: {e}")
        return EXIT_OK
    if args.markdown:
        if not args.internal:
            return report_error("diagram: --markdown is the README's block, every "
                                "transition in it; drop --no-internal")
        text = render_readme_section()
    else:
        try:
            found = diagrams(args.object or None, internal=args.internal)
        except KeyError as e:
            known = ", ".join(ao.NAME for ao in live_objects())
            return report_error(f"diagram: no active object {e.args[0]!r} (known: {known})")
        text = "\n".join(found.values())
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8", newline="\n")
        except OSError as e:
            return report_error(f"diagram: cannot write {args.output}: {e.strerror}")
    else:
        sys.stdout.write(text)
    return EXIT_OK
