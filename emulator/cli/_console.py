"""What ``printer-emu run`` shows a person: a live progress bar, a log line for each
warning or error, and a summary table (``rich``). Nothing here changes the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from firmware import StatusEvent

if TYPE_CHECKING:
    from emulator.run import Action, PrintRun

_LOGGED = {
    "toner_low": ("yellow", "toner low"),
    "toner_empty": ("red", "toner empty"),
    "toner_replaced": ("green", "toner replaced"),
    "paper_out": ("yellow", "paper out"),
    "paper_loaded": ("green", "paper loaded"),
    "jam": ("red", "paper jam"),
    "jam_cleared": ("green", "jam cleared"),
    "cover_open": ("yellow", "cover opened"),
    "cover_closed": ("green", "cover closed"),
    "misfeed": ("yellow", "misfeed"),
    "fuser_error": ("red", "fuser error"),
    "watchdog_reset": ("red", "watchdog reset"),
    "self_test_failed": ("red", "self-test failed"),
    "hang": ("red", "active object hung"),
    "page_spoiled": ("yellow", "page spoiled"),
    "power_save": ("dim", "power save"),
    "wake": ("dim", "wake"),
}


def _detail_text(event: StatusEvent) -> str:
    parts = [f"{k}={v}" for k, v in event.detail.items() if k not in ("policy",)]
    return " ".join(parts)


class RunConsole:
    """Attach to a :class:`PrintRun` before it runs; call :meth:`finish` after."""

    def __init__(self, run: PrintRun, console: Console, live: bool) -> None:
        self._run = run
        self._console = console
        self._live: Live | None = None
        run.status_listeners.append(self._log)
        run.on_action(self._log_action)
        if live:
            self._live = Live(self._render(), console=console, refresh_per_second=10,
                              transient=True)
            self._live.start()

    def _log_action(self, action: Action) -> None:
        # Actions the firmware reports no event of its own for (`PrintRun`'s
        # ``injected_*`` events): without a line the printer would resume for no reason.
        if action.kind not in ("press", "heater"):
            return
        t_s = (self._run.scheduler.now_ns - self._run.start_ns) / 1e9
        line = Text(f"{t_s:10.3f}s  ", style="dim")
        line.append(f"injected {action.kind}", style="magenta")
        line.append(f"  {action.value}", style="dim")
        self._console.print(line)

    def _log(self, event: StatusEvent) -> None:
        style_text = _LOGGED.get(event.kind)
        if style_text is None:
            return
        style, text = style_text
        t_s = (event.t_ns - self._run.start_ns) / 1e9
        line = Text(f"{t_s:10.3f}s  ", style="dim")
        line.append(text, style=style)
        detail = _detail_text(event)
        if detail:
            line.append(f"  {detail}", style="dim")
        self._console.print(line)

    def _render(self) -> Group:
        # Two lines, each its own text: in one grid the states line widened the bar's
        # column (blank columns after the bar) and wrapped at the terminal's width.
        run = self._run
        total = max(run.pages_total, 1)
        done = run.pages_delivered
        width = 30
        filled = round(width * done / total)
        toner = run.observation.toner_pct()
        toner_text = "?" if toner is None else f"{toner:5.1f}%"
        line = Text("━" * filled, style="green") + Text("━" * (width - filled), style="dim")
        line.append(f" {done}/{run.pages_total} pages  toner {toner_text}  ")
        line.append(f"t={run.sim_time_s:8.1f}s", style="dim")
        states = "  ".join(f"{name}:{state}" for name, state in run.printer.states().items())
        return Group(line, Text(states, style="cyan", no_wrap=True, overflow="ellipsis"))

    def progress(self, run: PrintRun) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def finish(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._console.print(summary_table(self._run))


def summary_table(run: PrintRun) -> Table:
    result = run.result()
    table = Table(title=f"printer-emu run on {run.board_name} (seed {run.seed})",
                  show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("outcome", str(result["outcome"]))
    table.add_row("pages delivered", f"{result['pages_delivered']} of {run.pages_total}")
    sheets = result["sheets_used"]
    table.add_row("sheets used", "?" if sheets is None else str(sheets))
    table.add_row("jams", str(result["jams"]))
    table.add_row("warnings", str(result["warnings"]))
    table.add_row("simulated time", f"{result['sim_time_s']:.3f} s")
    table.add_row("wall time", f"{result['wall_time_s']:.3f} s")
    speedup = result["speedup"]
    table.add_row("speed-up over real time", "?" if speedup is None else f"{speedup:,.1f}x")
    for missed in result.get("moments_not_reached", ()):
        table.add_row("[yellow]not reached[/]", f"{missed} (its page never came)")
    for job in result["jobs"]:
        table.add_row(f"job {job['id']}", f"{job['delivered']}/{job['pages']} pages, "
                      f"{job['state']}  ({job['name']})")
    return table
