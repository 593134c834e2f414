"""``printer-emu run --ipp/--raw/--snmp``: the printer on the network until Ctrl-C.

The emulated board runs in real time (or ``--speed`` times it: never ``max``, clients
would wait on a printer racing through time) with :class:`firmware.net.NetworkFrontEnd`
listening: IPP Everywhere on ``ipp://HOST:PORT/ipp/print``, raw jobs and PJL on a TCP
port (AppSocket), the Printer MIB over SNMP. Jobs print as they arrive, with the same
live display, ``--trace`` and ``--scenario`` as any run (a scenario's jobs and the
``--job``/``--pages`` jobs are queued at the start). Ctrl-C (or SIGTERM) stops the
scheduler between two of its events, the front ends close, and the summary (or the
``--json`` record, with the addresses under ``"network"``) is printed: exit status 0.

Addresses are ``HOST:PORT``, ``PORT`` or ``[IPv6]:PORT``; an option given without one
listens on loopback at the usual port. Listening elsewhere than loopback prints a
one-line warning: anyone who reaches the address can print and read the printer's
state. A port that cannot be bound is one line naming it, exit status 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from rich.console import Console

from emulator.cli._common import EXIT_OK, RecordAmendment, UsageError, jobs_for
from emulator.run import JobSpec, PrintRun, Scenario
from firmware import StatusEvent

if TYPE_CHECKING:
    from firmware.net import NetworkFrontEnd

Address = tuple[str, int]

DEFAULT_IPP = ("127.0.0.1", 8631)
"""Not 631: that is the machine's own CUPS (and a privileged port)."""
DEFAULT_RAW = ("127.0.0.1", 9100)
DEFAULT_SNMP = ("127.0.0.1", 1161)
"""Not 161: a privileged port."""
_PROGRESS_EVERY_S = 0.1


def parse_address(text: str, default: Address) -> Address:
    """``HOST:PORT``, ``PORT``, ``[IPv6]:PORT`` or ``HOST`` (the default port)."""
    host, port_text = default[0], ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not (text[end + 1:] == "" or text[end + 1] == ":"):
            raise ValueError(f"expected [IPv6]:PORT, got {text!r}")
        host, port_text = text[1:end], text[end + 2:]
    elif text.isdigit():
        port_text = text
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        host = host or default[0]
    elif ":" in text:
        raise ValueError(f"an IPv6 address goes in brackets: [{text}]:PORT")
    else:
        host = text
    port = int(port_text) if port_text else default[1]
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is not within 0..65535")
    return host, port


def _address_type(default: Address) -> Callable[[str], Address]:
    def parse(text: str) -> Address:
        try:
            return parse_address(text, default)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--ipp``, ``--raw``, ``--snmp`` and ``--snmp-community`` to ``run``."""
    group = parser.add_argument_group(
        "network printer", "keep the printer up on the network until Ctrl-C, printing jobs "
                           "as they arrive (loopback unless an address says otherwise)")
    for flag, default, what in (
            ("--ipp", DEFAULT_IPP, "IPP Everywhere at ipp://HOST:PORT/ipp/print"),
            ("--raw", DEFAULT_RAW, "raw jobs and PJL (AppSocket) on a TCP port"),
            ("--snmp", DEFAULT_SNMP, "the Printer MIB over SNMP (UDP)")):
        group.add_argument(flag, nargs="?", const=default, default=None,
                           type=_address_type(default), metavar="HOST:PORT",
                           help=f"{what} (default {default[0]}:{default[1]})")
    group.add_argument("--snmp-community", default="public", metavar="NAME",
                       help="the SNMP read community (default public)")


def wants_network(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) is not None for name in ("ipp", "raw", "snmp"))


def network_jobs(args: argparse.Namespace, scenario: Scenario | None) -> list[JobSpec]:
    """The jobs queued when the printer comes up on the network: on the network the jobs
    come from clients, so the demo job only when ``--pages``/``--coverage`` ask for it;
    the scenario's and the ``--job`` files' as in any run."""
    asked = (args.job or args.pages is not None or args.coverage is not None
             or (scenario is not None and scenario.jobs))
    return jobs_for(args, scenario) if asked else []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def _host_in_uri(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def addresses(front_end: NetworkFrontEnd, community: str) -> dict[str, str]:
    """What listens where, as a client names it."""
    out: dict[str, str] = {}
    if front_end.ipp_address is not None:
        host, port = front_end.ipp_address
        out["ipp"] = f"ipp://{_host_in_uri(host)}:{port}/ipp/print"
    if front_end.raw_address is not None:
        host, port = front_end.raw_address
        out["raw"] = f"socket://{_host_in_uri(host)}:{port}"
    if front_end.snmp_address is not None:
        host, port = front_end.snmp_address
        out["snmp"] = f"udp:{_host_in_uri(host)}:{port} (community {community})"
    return out


@contextmanager
def _stop_on_signals(run: PrintRun) -> Iterator[list[int]]:
    """SIGINT and SIGTERM stop the scheduler after the event that is running (never an
    exception in the middle of the firmware); yields the signals received."""
    received: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        run.scheduler.stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _job_lines(console: Console, run: PrintRun) -> None:
    """A line for each job as it arrives and as it ends."""

    def on_status(event: StatusEvent) -> None:
        if event.kind not in ("job_queued", "job_done"):
            return
        job = run.printer.jobs.jobs.get(event.detail["job"])
        if job is None:
            return
        t_s = (event.t_ns - run.start_ns) / 1e9
        if event.kind == "job_queued":
            console.print(f"{t_s:10.3f}s  job {job.id} in: {job.name or '(unnamed)'}, "
                          f"{job.pages} pages", highlight=False)
        else:
            console.print(f"{t_s:10.3f}s  job {job.id} {job.state.value}: "
                          f"{job.delivered}/{job.pages} pages", highlight=False)

    run.status_listeners.append(on_status)


def serve_network(run: PrintRun, args: argparse.Namespace, speed: float,
                  amend: RecordAmendment | None = None) -> int:
    """Keep ``run``'s printer up with its front ends until a signal, its board's time
    running ``speed`` times real time (a serial board's: 1.0, the wall's); print the
    summary as ``--json``/``--quiet``/neither ask (``amend`` completes the ``--json``
    record). Returns `EXIT_OK` (user mistakes raise `UsageError`)."""
    # Here, not at the top: aiohttp and pysnmp cost every other run's start half a second.
    from firmware.net import ListenError, NetworkFrontEnd

    front_end = NetworkFrontEnd(run.printer, ipp=args.ipp, raw=args.raw, snmp=args.snmp,
                                snmp_community=args.snmp_community)
    try:
        front_end.start()
    except ListenError as e:
        raise UsageError(e.strerror or str(e)) from None
    try:
        return _serve(run, front_end, args, speed, amend)
    finally:
        front_end.close()


def _serve(run: PrintRun, front_end: NetworkFrontEnd, args: argparse.Namespace,
           speed: float, amend: RecordAmendment | None) -> int:
    # The signals are taken before the addresses are printed: a client (or a test) that
    # reads them and sends SIGINT at once gets the summary, not an interrupted exit.
    with _stop_on_signals(run) as received:
        return _serve_until_signal(run, front_end, args, speed, received, amend)


def _serve_until_signal(run: PrintRun, front_end: NetworkFrontEnd, args: argparse.Namespace,
                        speed: float, received: list[int],
                        amend: RecordAmendment | None) -> int:
    console = Console(stderr=False, highlight=False)
    quiet = bool(args.json or args.quiet)
    listening = addresses(front_end, args.snmp_community)
    for name, address in (("IPP", args.ipp), ("raw", args.raw), ("SNMP", args.snmp)):
        if address is not None and not _is_loopback(address[0]):
            print(f"printer-emu: warning: {name} listens on {address[0]}: the printer is "
                  "open to the network (anyone who reaches it can print and read its state)",
                  file=sys.stderr)
    out = sys.stderr if quiet else sys.stdout
    print(f"printer-emu: {run.board_name} is on the network (Ctrl-C to stop):", file=out)
    for name, address in listening.items():
        print(f"  {name:5} {address}", file=out)
    out.flush()

    view = None
    if not quiet:
        from emulator.cli._console import RunConsole

        _job_lines(console, run)
        view = RunConsole(run, console, live=console.is_terminal)
    scheduler = run.scheduler
    step_ns = round(_PROGRESS_EVERY_S * 1e9 * speed)  # a display refresh of board time
    wall_start = time.perf_counter()
    try:
        while not received:
            scheduler.run_until(scheduler.now_ns + step_ns)
            if view is not None:
                view.progress(run)
    finally:
        run.wall_time_s = time.perf_counter() - wall_start
        run.end_ns = scheduler.now_ns
        if view is not None:
            view.finish()
    result = run.result()
    if args.json:
        record = {**result, "network": listening}
        sys.stdout.write(json.dumps(record if amend is None else amend(record)) + "\n")
    elif args.quiet:
        print(f"stopped: {result['pages_delivered']} pages printed in "
              f"{result['sim_time_s']:.3f} s on {result['board']}")
    return EXIT_OK
