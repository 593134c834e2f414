"""``printer-emu run``: the firmware on an emulated board (or, with ``--port``, on a
serial device: `emulator.cli._run_port`) printing jobs; with ``--ipp``/``--raw``/
``--snmp``, on the network until Ctrl-C (`emulator.cli._run_network`), on either.

On the emulated board the run goes in virtual time, ``--speed`` times real time or as
fast as the CPU allows; the same board, jobs, scenario and seed give the same record.
On the network it goes in real time unless ``--speed`` gives a ratio.
"""

from __future__ import annotations

import argparse

from boards import load_board
from emulator.cli._common import (
    DEFAULT_BOARD,
    DEFAULT_COVERAGE_PCT,
    DEFAULT_PAGES,
    Subcommands,
    UsageError,
    add_trace_option,
    execute,
    jobs_for,
    parse_speed,
    scenario_of,
    seed_of,
)
from emulator.cli._run_network import (
    add_network_options,
    network_jobs,
    serve_network,
    wants_network,
)
from emulator.cli._run_port import add_port_option, run_on_port
from emulator.run import PrintRun
from emulator.trace import trace_run
from hal import Scheduler, VirtualClock


def register(subcommands: Subcommands) -> None:
    """Add ``printer-emu run``; its handler returns the exit status."""
    p = subcommands.add_parser("run", help="run the firmware on a board and print jobs",
                               description="Run the printer firmware on an emulated board (or "
                                           "on a serial device with --port) and print jobs.")
    p.add_argument("--board", help=f"board name or TOML path (default {DEFAULT_BOARD})")
    p.add_argument("--pages", type=int, help=f"pages of the demo job (default {DEFAULT_PAGES})")
    p.add_argument("--coverage", type=float, metavar="PCT",
                   help="toner coverage of the demo job, percent "
                        f"(default {DEFAULT_COVERAGE_PCT:g})")
    p.add_argument("--job", action="append", default=[], metavar="FILE",
                   help="a text file to print (repeatable)")
    p.add_argument("--seed", type=int, help="seed of the run's random draws (default 0)")
    p.add_argument("--speed", default="max", action=_SpeedAction,
                   help="max | realtime | a ratio to real time (on the network: realtime "
                        "unless a ratio is given)")
    p.add_argument("--scenario", metavar="FILE", help="a scenario file (TOML)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.add_argument("--quiet", action="store_true", help="print only the final line")
    add_trace_option(p)
    add_port_option(p)
    add_network_options(p)
    p.set_defaults(handler=_cmd_run, speed_given=False)


class _SpeedAction(argparse.Action):
    """``--speed``, remembering that it was given (the network's default differs)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.speed_given = True


def _network_speed(args: argparse.Namespace) -> float:
    if not args.speed_given:
        return 1.0
    speed = parse_speed(args.speed)
    if speed is None:
        raise UsageError("--speed max does not apply with --ipp/--raw/--snmp: clients need "
                         "a printer in real time (give realtime or a ratio)")
    return speed


def _cmd_run(args: argparse.Namespace) -> int:
    network = wants_network(args)
    if args.port is None and args.baud is not None:
        raise UsageError("--baud sets a serial device's line rate: it needs --port")
    if args.port is not None:
        return run_on_port(args)
    from emulator.board import EmulatedBoard  # the physics, only when a run needs them

    scenario = scenario_of(args)
    board_ref = args.board or (scenario.board if scenario and scenario.board else DEFAULT_BOARD)
    config = load_board(board_ref)
    seed = seed_of(args, scenario)
    speed = _network_speed(args) if network else parse_speed(args.speed)
    jobs = network_jobs(args, scenario) if network else jobs_for(args, scenario)

    scheduler = Scheduler(VirtualClock(speed))
    board = EmulatedBoard(config, scheduler, seed=seed)
    run = PrintRun(board, seed=seed)
    for spec in jobs:
        run.add_job(spec)
    if scenario:
        run.add_actions(scenario.actions, scenario.source)
    with trace_run(run, args.trace):
        if network:
            assert speed is not None
            return serve_network(run, args, speed)
        return execute(run, args)
