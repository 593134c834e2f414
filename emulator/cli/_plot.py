"""``printer-emu plot TRACE -o FILE``: the timeline picture of a traced run.

The drawing is :func:`emulator.trace.plot_trace`'s (matplotlib, the optional extra
``plot``); this is its command line. A trace that cannot be read or a picture that
cannot be drawn is one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse

from emulator.cli._common import EXIT_OK, Subcommands, report_error
from emulator.trace import PlotError, TraceError, plot_trace


def register(subcommands: Subcommands) -> None:
    """Add ``printer-emu plot TRACE -o FILE``; its handler returns the exit status."""
    p = subcommands.add_parser(
        "plot", help="draw the timeline of a traced run (PNG or SVG)",
        description="Draw a run's timeline from its trace (--trace FILE.jsonl or .vcd): "
                    "each active object's states as a lane, toner % and fuser °C as "
                    "curves, pages, faults and interrupts as ticks. Needs matplotlib "
                    "(pip install 'printer-emu[plot]').")
    p.add_argument("trace", metavar="TRACE", help="a trace file (.jsonl or .vcd)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the picture: FILE.png or FILE.svg")
    p.add_argument("--title", help="the picture's title (default: board, pages, time)")
    p.set_defaults(handler=_cmd_plot)


def _cmd_plot(args: argparse.Namespace) -> int:
    try:
        plot_trace(args.trace, args.output, title=args.title)
    except (PlotError, TraceError) as e:
        return report_error(f"plot: {e}")
    return EXIT_OK
