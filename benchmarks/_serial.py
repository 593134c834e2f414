"""The serial board's costs: ``python -m benchmarks serial``.

In one run, each against a subprocess on a kernel pty (the same kind of line a USB
serial adapter gives):

* **Request round trip**: ``SerialBoard.request("analog.read")`` to ``printer-emu serve
  --pty``, from the call to the result's callback on the scheduler's thread (encode,
  link, pty, the device's event loop, and back through our reader thread and
  scheduler) — beside a **raw pyserial echo**: ``serial.write`` of a frame-sized
  message to a subprocess that echoes it with ``os.read``/``os.write``, then
  ``serial.read`` of it back.
* **Device event → ISR**: the event's device time against the instant the host's ISR
  runs, for two kinds of event. (1) Isolated button presses (``sim.press``): the press
  edge comes while the device answers the request that pressed it; the release edge
  comes from the device's own timer 100 ms later, after both ends have gone idle, the
  worst case on a virtual machine, where a sleeping CPU loses its caches and a wake-up
  crosses the hypervisor. Beside it, a **raw one-way pty hop after the same idle**: a
  subprocess that sleeps 100 ms and writes its clock to a pty, read by a thread blocked
  on the other end (no protocol, no processing: the floor under a release's latency).
  (2) Every input edge and comparator crossing of a devkit job run over the pty, the
  traffic the firmware's timing windows depend on. The device's clock is related to
  ours by the ``board.snapshot`` with the shortest round trip (its ``t_ns`` against the
  midpoint); the error of that estimate (half that round trip) is reported.
* **Per device**: the request round trip (p50, p99) and a devkit job's pages per minute on
  each device that speaks the protocol: Python ``serve --pty``, the C reference device's
  host build on a pty, and its Cortex-M builds in QEMU (``microbit``, ``mps2-an385``),
  opened at the 115200 baud their link timings are sized for (QEMU does not pace the
  bytes). A device that cannot be built or launched here is listed as unavailable with
  the reason (:mod:`benchmarks.mcu_device`).
* **Latency tolerance** (:mod:`benchmarks._latency`): pages per minute and false
  paper-path and heater faults for devkit and lp-2000 jobs through the lab's link-fault
  relay at constant link latencies of 0, 10, 20, 50 and 100 ms (alone: ``python -m
  benchmarks latency``).
* **Pages per minute at a line rate** (115200 baud, or ``PRINTER_EMU_BENCH_BAUD``): a
  devkit job over ``serve --pty --baud N`` with the host pacing its own bytes too,
  beside the same job on the emulated board in process (virtual time). Steady state:
  ``60 * (pages - 1) / (last delivery - first delivery)``.

**Placement.** Every far end (the echo, ``serve``, the hop writer) runs on a CPU of its
own, as a device on the other end of a cable does: the last CPU this process may use,
when it may use two or more (``PRINTER_EMU_BENCH_PIN=0`` leaves placement to the OS).
The host side is not pinned. Unpinned, a VM that packs lightly loaded tasks onto one
vCPU may put both ends of a pty on the same one for a whole run: the echo then costs a
third of what it does across CPUs (~25 against ~70 us on the development VM) while a
request, which pays its Python at both ends, is no faster, and the ratio swings between
runs with the packing, not with the code.

The round trips alternate sample by sample (one echo, one request, ...) and each is the
percentile of all its samples: on a shared machine the echo alone swings several-fold
between runs, and only figures taken under the same conditions compare. Targets (from the
issue): round-trip p50 within 2x the raw echo; event latency p99 under 1 ms; at the line
rate the same pages per minute as in process (within 2 %). The event target is checked on
the isolated presses and releases pooled, and on the job's events.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import subprocess
import sys
import time
import tty
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final

import serial

from benchmarks import _latency
from benchmarks import scale as workload_scale
from benchmarks.mcu_device import DeviceUnavailable, McuDevice
from emulator.device import ServeProcess

REPEATS: Final = 3
ROUND_TRIPS: Final = 2000
"""Requests (and echoes) per contender at scale 1, over all rounds."""
PRESSES: Final = 600
"""Button presses at scale 1 (two events each)."""
PAGES: Final = 40
JOB_PAGES: Final = 60
"""Pages of the job whose events are timed, at scale 1 (about 7 events a page)."""
DEVICE_ROUND_TRIPS: Final = 1000
"""Requests per device at scale 1 (the per-device round trips)."""
DEVICE_PAGES: Final = 40
"""Pages of the devkit job printed on each device at scale 1."""
DEVICES: Final = {"serve": "Python serve", "host": "C host build",
                  "microbit": "C on QEMU microbit", "mps2": "C on QEMU mps2"}
"""The devices of the per-device figures, and what the table calls them."""
HOPS: Final = 100
"""Raw one-way pty hops after an idle spell, at scale 1."""
IDLE_S: Final = 0.1
"""The idle spell before each raw hop: as long as a button press lasts on the device."""
BOARD: Final = "devkit"
DEFAULT_BAUD: Final = 115_200
BAUD_ENV: Final = "PRINTER_EMU_BENCH_BAUD"
PIN_ENV: Final = "PRINTER_EMU_BENCH_PIN"
ECHO_MESSAGE_BYTES: Final = 32
"""About a REQUEST frame of ``analog.read`` on the wire."""
RTT_TARGET: Final = 2.0
EVENT_P99_TARGET_NS: Final = 1_000_000
PPM_TOLERANCE: Final = 0.02

_ECHO_SERVER = """
import os, select, sys, tty
master, slave = os.openpty()
tty.setraw(master); tty.setraw(slave)
print(os.ttyname(slave), flush=True)
while True:
    ready, _, _ = select.select([master, sys.stdin], [], [])
    if sys.stdin in ready:
        break
    data = os.read(master, 65536)
    while data:
        data = data[os.write(master, data):]
"""


_HOP_WRITER = """
import os, sys, time
fd = int(sys.argv[1])
for _ in range(int(sys.argv[2])):
    time.sleep(float(sys.argv[3]))
    os.write(fd, time.monotonic_ns().to_bytes(8, "little"))
"""


def _far_end_cpu() -> int | None:
    """The CPU every far end runs on (see the module docstring), or ``None``: placement
    left to the OS (one CPU allowed, no affinity on this platform, or turned off)."""
    if os.environ.get(PIN_ENV, "1") == "0" or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[-1] if len(cpus) >= 2 else None


FAR_END_CPU: Final = _far_end_cpu()


def _place_far_end(pid: int) -> None:
    """Move every thread of the far end ``pid`` to :data:`FAR_END_CPU` (nothing when that
    is ``None``); threads it starts later inherit the place."""
    if FAR_END_CPU is None:
        return
    # Affinity is a thread's, not a process's: set it on each one.
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(tid), {FAR_END_CPU})


@contextlib.contextmanager
def _device(*extra_args: str) -> Iterator[ServeProcess]:
    """``printer-emu serve --pty`` with :data:`BOARD`, placed as a far end."""
    with ServeProcess(BOARD, extra_args=list(extra_args)) as device:
        assert device.process is not None
        _place_far_end(device.process.pid)
        yield device


def _progress(text: str) -> None:
    print(f"[serial] {text}", file=sys.stderr, flush=True)


class _EchoServer:
    """The raw echo (:data:`_ECHO_SERVER`) in a subprocess; its first stdout line is the
    pty to open. Stopped on close."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _ECHO_SERVER],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        self.address = self.process.stdout.readline().decode().strip()
        if not self.address:
            self.close()
            raise RuntimeError("the echo server printed no address")
        _place_far_end(self.process.pid)

    def __enter__(self) -> _EchoServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        process = self.process
        if process.poll() is None:
            if process.stdin is not None:
                process.stdin.close()  # the echo server stops on stdin's end
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


def _percentiles(samples: list[int]) -> tuple[int, int]:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, (len(ordered) * 99) // 100)]
    return p50, p99


def _pooled(samples: list[int]) -> dict[str, int]:
    p50, p99 = _percentiles(samples)
    return {"p50_ns": p50, "p99_ns": p99, "samples": len(samples)}


# -- contenders --------------------------------------------------------------------------


def _round_trips(port: Any, board: Any, count: int) -> tuple[list[int], list[int]]:
    """``count`` raw echoes and ``count`` requests, one of each in turn, so both see the
    same state of a shared, noisy machine."""
    message = bytes(range(1, ECHO_MESSAGE_BYTES + 1))
    echoes: list[int] = []
    requests: list[int] = []
    answered: list[int] = []
    scheduler = board.scheduler
    gc.collect()
    for _ in range(count):
        t0 = time.perf_counter_ns()
        port.write(message)
        back = port.read(len(message))
        echoes.append(time.perf_counter_ns() - t0)
        if back != message:
            raise RuntimeError(f"the echo returned {back!r}")
        requests.append(_request_round_trip(board, scheduler, answered))
    return echoes, requests


def _request_round_trip(board: Any, scheduler: Any, answered: list[int]) -> int:
    """One ``analog.read``: from the call to its result's callback (ns)."""
    answered.clear()
    t0 = time.perf_counter_ns()
    board.request("analog.read", {"channel": "toner_pct"},
                  on_result=lambda _r: answered.append(time.perf_counter_ns()))
    if not scheduler.run_until(lambda: bool(answered), timeout_ns=1_000_000_000):
        raise RuntimeError("a request was not answered within 1 s")
    return answered[0] - t0


def _device_clock_origin(board: Any, count: int) -> tuple[int, int]:
    """``(origin_ns, error_ns)``: the device's ``t_ns`` plus ``origin_ns`` is our
    ``time.monotonic_ns()``, within ``error_ns``."""
    best: tuple[int, int] | None = None
    scheduler = board.scheduler
    got: list[tuple[int, int]] = []

    def answer(result: Any) -> None:
        got.append((time.monotonic_ns(), int(result["t_ns"])))

    for _ in range(count):
        got.clear()
        t0 = time.monotonic_ns()
        board.request("board.snapshot", on_result=answer)
        if not scheduler.run_until(lambda: bool(got), timeout_ns=1_000_000_000):
            raise RuntimeError("board.snapshot was not answered within 1 s")
        t1, device_t = got[0]
        rtt = t1 - t0
        if best is None or rtt < best[1]:
            best = ((t0 + t1) // 2 - device_t, rtt)
    assert best is not None
    return best[0], best[1] // 2


def _idle_pty_hops(count: int) -> list[int]:
    """``count`` one-way hops over a pty, each after :data:`IDLE_S` of idle (ns)."""
    master, slave = os.openpty()
    try:
        tty.setraw(master)
        tty.setraw(slave)
        writer = subprocess.Popen([sys.executable, "-c", _HOP_WRITER, str(master),
                                   str(count), str(IDLE_S)], pass_fds=(master,))
        hops: list[int] = []
        try:
            _place_far_end(writer.pid)
            deadline = time.monotonic() + count * IDLE_S + 30
            while len(hops) < count:
                if not select.select([slave], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise RuntimeError("the pty hop writer went quiet")
                now = time.monotonic_ns()
                data = os.read(slave, 8)
                hops.append(now - int.from_bytes(data, "little"))
        finally:
            writer.kill()
            writer.wait(5)
        return hops
    finally:
        os.close(master)
        os.close(slave)


def _print_job(board: Any, pages: int, what: str, max_run_ns: int | None = None) -> Any:
    """Print ``pages`` pages at 5% on ``board`` from seed 0; the finished ``PrintRun``.
    Raises :class:`RuntimeError` naming ``what`` unless the job completed."""
    from emulator.run import JobSpec, Outcome, PrintRun

    run = PrintRun(board, seed=0)
    run.add_job(JobSpec(pages=pages, coverage_pct=5.0))
    gc.collect()
    outcome = run.run() if max_run_ns is None else run.run(max_run_ns=max_run_ns)
    if outcome is not Outcome.COMPLETED:
        raise RuntimeError(f"{what} ended {outcome.value}")
    return run


def _job_events(pages: int) -> tuple[list[int], int]:
    """Device event -> ISR (ns) for every input edge and comparator crossing of a devkit
    job over ``serve --pty``, and the device clock's error (ns)."""
    from boards import load_board
    from hal import ANALOG_IRQ_LINE, AnalogChannel
    from hal.serial import SerialBoard

    sent: dict[str, deque[int]] = {}
    latencies: list[int] = []
    with _device() as device, \
            SerialBoard(device.url, load_board(BOARD)) as board:
        origin_ns, error_ns = _device_clock_origin(board, 50)

        def on_event(event: Any, host_t_ns: int) -> None:
            if event.kind == "input":
                line = str(event.data["name"])
            elif event.kind == "window":
                line = ANALOG_IRQ_LINE[AnalogChannel(event.data["channel"])]
            else:
                return
            sent.setdefault(line, deque()).append(event.t_ns + origin_ns)

        def on_irq(what: str, event: Any) -> None:
            # Taken just before the ISR runs; edges the host drops as stale never get
            # here, so the queue of each line is matched from its front.
            queue = sent.get(event.name)
            if what == "isr" and queue:
                latencies.append(time.monotonic_ns() - queue.popleft())

        board.add_event_listener(on_event)
        board.irq.add_listener(on_irq)
        _print_job(board, pages, "the timed job over the pty",
                   (pages * 3 + 30) * 1_000_000_000)
    return latencies, error_ns


def _event_round(board: Any, presses: int, origin_ns: int) -> list[int]:
    from hal import Button, IrqEvent

    device_times: list[int] = []
    isr_times: list[int] = []
    # Cleared at the end: the board has no way to remove a listener, so it goes deaf.
    listening = [True]

    def on_event(event: Any, host_t_ns: int) -> None:
        if listening[0] and event.kind == "input" and event.data.get("name") == "button_cancel":
            device_times.append(event.t_ns + origin_ns)

    def isr(_e: IrqEvent) -> None:
        isr_times.append(time.monotonic_ns())

    board.add_event_listener(on_event)
    board.irq.attach("button_cancel", isr)
    faults = board.faults
    scheduler = board.scheduler
    gc.collect()
    for i in range(presses):
        faults.press(Button.CANCEL)
        want = 2 * (i + 1)
        if not scheduler.run_until(lambda w=want: len(isr_times) >= w,
                                   timeout_ns=1_000_000_000):
            raise RuntimeError("a button press did not reach its ISR within 1 s")
        scheduler.run_until(scheduler.now_ns + 1_000_000)  # a gap between presses
    board.irq.detach("button_cancel")
    listening[0] = False
    # In order: a press, its release, the next press, ...
    return [isr - dev for isr, dev in zip(isr_times, device_times, strict=True)]


def _ppm(page_times_s: list[float]) -> tuple[float, float]:
    """``(steady, overall)`` pages per minute from delivery instants (run time, s)."""
    n = len(page_times_s)
    steady = 60.0 * (n - 1) / (page_times_s[-1] - page_times_s[0]) if n > 1 else 0.0
    return steady, 60.0 * n / page_times_s[-1]


def _job_in_process(pages: int) -> list[float]:
    from boards import load_board
    from emulator.board import EmulatedBoard
    from hal import Scheduler

    board = EmulatedBoard(load_board(BOARD), Scheduler(), seed=0)
    run = _print_job(board, pages, "the in-process job")
    return [p["t_s"] for p in run.page_log]


def _job_on_line(pages: int, baud: int) -> tuple[list[float], dict[str, Any]]:
    from boards import load_board
    from hal.serial import SerialBoard

    with _device("--baud", str(baud)) as device, \
            SerialBoard(device.url, load_board(BOARD), baud=baud, pace=True) as board:
        run = _print_job(board, pages, "the job over the line",
                         (pages * 2 + 30) * 1_000_000_000)
        transport: Any = board.transport
        line = {"bytes_to_device": transport.bytes_written,
                "bytes_from_device": transport.bytes_read,
                "retransmitted": board.link.stats.retransmitted,
                "wall_time_s": round(run.wall_time_s, 3)}
        return [p["t_s"] for p in run.page_log], line


@contextlib.contextmanager
def _launch(kind: str) -> Iterator[tuple[str, int | None]]:
    """Launch the device ``kind`` (a key of :data:`DEVICES`) as a far end; yields its port
    and the baud rate to open it with (``None``: a pty's own pace)."""
    if kind == "serve":
        with _device() as device:
            yield device.url, None
        return
    with McuDevice(kind) as mcu:
        assert mcu.process is not None
        _place_far_end(mcu.process.pid)
        yield mcu.url, mcu.line_baud


def _device_figures(kind: str, count: int, pages: int) -> dict[str, Any]:
    """Request round trips and a devkit job's pages per minute on one device, or why it is
    unavailable."""
    from boards import load_board
    from hal.serial import PrinterLinkError, SerialBoard

    config = load_board(BOARD)
    try:
        with _launch(kind) as (url, baud):
            with SerialBoard(url, config, baud=baud, analog_poll_s=None) as board:
                answered: list[int] = []
                for _ in range(20):  # warm up
                    _request_round_trip(board, board.scheduler, answered)
                gc.collect()
                rtt = _pooled([_request_round_trip(board, board.scheduler, answered)
                               for _ in range(count)])
            with SerialBoard(url, config, baud=baud) as board:
                run = _print_job(board, pages, f"the job on {DEVICES[kind]}",
                                 (pages * 3 + 30) * 1_000_000_000)
    except (DeviceUnavailable, PrinterLinkError, RuntimeError, OSError) as exc:
        return {"available": False, "reason": str(exc) or type(exc).__name__}
    ppm, _ = _ppm([p["t_s"] for p in run.page_log])
    return {"available": True, "request_p50_ns": rtt["p50_ns"],
            "request_p99_ns": rtt["p99_ns"], "samples": rtt["samples"], "pages": pages,
            "pages_per_minute": round(ppm, 1)}


# -- the benchmark ------------------------------------------------------------------------


def _latencies(count: int, presses: int) -> dict[str, Any]:
    from boards import load_board
    from hal.serial import SerialBoard

    with _EchoServer() as echo, _device() as device, \
            serial.serial_for_url(echo.address, timeout=1.0) as port, \
            SerialBoard(device.url, load_board(BOARD), analog_poll_s=None) as board:
        _round_trips(port, board, 50)  # warm up both
        _progress(f"{count} round trips of each, in turn")
        echoes, requests = _round_trips(port, board, count)
        _progress("device clock")
        origin_ns, clock_error_ns = _device_clock_origin(board, max(20, count // 20))
        event_rounds = []
        for i in range(REPEATS):
            _progress(f"events, round {i + 1}/{REPEATS}")
            event_rounds.append(_event_round(board, max(5, presses // REPEATS), origin_ns))
    isolated = [x for r in event_rounds for x in r]
    return {"echo": _pooled(echoes), "request": _pooled(requests),
            "event": _pooled(isolated), "press": _pooled(isolated[0::2]),
            "release": _pooled(isolated[1::2]), "clock_error_ns": clock_error_ns}


def run(scale: float | None = None) -> dict[str, Any]:
    s = workload_scale() if scale is None else scale
    baud = int(os.environ.get(BAUD_ENV) or DEFAULT_BAUD)
    count = max(30, round(ROUND_TRIPS * s))
    presses = max(15, round(PRESSES * s))
    pages = max(3, round(PAGES * s))
    job_pages = max(3, round(JOB_PAGES * s))
    hop_count = max(10, round(HOPS * s))

    lat = _latencies(count, presses)
    _progress(f"{hop_count} raw pty hops, each after {IDLE_S * 1000:g} ms idle")
    hops = _pooled(_idle_pty_hops(hop_count))
    _progress(f"events of a {job_pages}-page job over the pty")
    job_latencies, job_clock_error_ns = _job_events(job_pages)
    job = _pooled(job_latencies)
    _progress(f"a {pages}-page job in process, then at {baud} baud")
    in_process = _job_in_process(pages)
    on_line, line = _job_on_line(pages, baud)
    ppm_in, ppm_in_all = _ppm(in_process)
    ppm_line, ppm_line_all = _ppm(on_line)
    device_count = max(30, round(DEVICE_ROUND_TRIPS * s))
    device_pages = max(3, round(DEVICE_PAGES * s))
    devices: dict[str, dict[str, Any]] = {}
    for kind, label in DEVICES.items():
        _progress(f"{label}: {device_count} round trips, a {device_pages}-page job")
        devices[kind] = _device_figures(kind, device_count, device_pages)

    _progress("latency tolerance: jobs through the link-fault relay")
    tolerance = _latency.measure(s)

    echo, request, event = lat["echo"], lat["request"], lat["event"]
    press, release = lat["press"], lat["release"]
    rtt_ratio = request["p50_ns"] / echo["p50_ns"]
    ppm_ratio = ppm_line / ppm_in if ppm_in else 0.0
    targets = {
        "round_trip_p50_within_2x_echo": rtt_ratio <= RTT_TARGET,
        "event_p99_under_1ms": event["p99_ns"] < EVENT_P99_TARGET_NS,
        "job_event_p99_under_1ms": job["p99_ns"] < EVENT_P99_TARGET_NS,
        "same_ppm_at_line_rate": abs(ppm_ratio - 1.0) <= PPM_TOLERANCE,
    }

    def us(ns: float) -> float:
        return round(ns / 1000, 1)

    rows: list[list[Any]] = [
        ["raw pyserial echo over a pty (us)", us(echo["p50_ns"]), us(echo["p99_ns"]), "-"],
        ["request round trip over a pty (us)", us(request["p50_ns"]), us(request["p99_ns"]),
         f"p50 <= {RTT_TARGET:g}x echo: {rtt_ratio:.2f}x"],
        ["device event -> ISR over a pty, isolated presses (us)", us(event["p50_ns"]),
         us(event["p99_ns"]), "p99 < 1000 us"],
        ["  the press edges (device busy answering)", us(press["p50_ns"]),
         us(press["p99_ns"]), "-"],
        [f"  the release edges (after {IDLE_S * 1000:g} ms idle)", us(release["p50_ns"]),
         us(release["p99_ns"]), "-"],
        [f"  raw one-way pty hop after {IDLE_S * 1000:g} ms idle", us(hops["p50_ns"]),
         us(hops["p99_ns"]), "-"],
        [f"device event -> ISR over a pty, a {job_pages}-page job (us)", us(job["p50_ns"]),
         us(job["p99_ns"]), "p99 < 1000 us"],
        [f"devkit ppm in process / at {baud} baud", round(ppm_in, 1), round(ppm_line, 1),
         f"same within {PPM_TOLERANCE:.0%}: {ppm_ratio:.3f}x"],
    ]
    # The devices side by side, a column each, beside the raw echo (the floor).
    shown = [kind for kind in DEVICES if devices[kind]["available"]]

    def per_device(key: str, scale: Callable[[float], float] = lambda v: v) -> list[Any]:
        return [scale(devices[kind][key]) for kind in shown]

    device_table = {
        "title": "the devices over a pty: request round trip and devkit pages per minute",
        "columns": ["measure", "raw echo", *(DEVICES[kind] for kind in shown)],
        "rows": [
            ["request round trip p50 (us)", us(echo["p50_ns"]), *per_device("request_p50_ns", us)],
            ["request round trip p99 (us)", us(echo["p99_ns"]), *per_device("request_p99_ns", us)],
            [f"devkit pages per minute ({device_pages} pages)", None,
             *per_device("pages_per_minute")],
        ],
    }
    unavailable = [f"{DEVICES[kind]}: unavailable ({devices[kind]['reason']})"
                   for kind in DEVICES if kind not in shown]
    rows.append(["latency tolerance: pages per minute, faults", None, None, "-"])
    rows += _latency.table_rows(tolerance["rows"])
    targets.update(tolerance["targets_met"])
    return {
        "name": "serial",
        "scale": s,
        "baud": baud,
        "far_end_cpu": FAR_END_CPU,
        "round_trip": {"echo_p50_ns": echo["p50_ns"], "echo_p99_ns": echo["p99_ns"],
                       "request_p50_ns": request["p50_ns"],
                       "request_p99_ns": request["p99_ns"],
                       "samples": request["samples"], "request_vs_echo_p50": rtt_ratio},
        "event_to_isr": {"p50_ns": event["p50_ns"], "p99_ns": event["p99_ns"],
                         "samples": event["samples"],
                         "clock_error_ns": lat["clock_error_ns"],
                         "press": press, "release": release, "raw_pty_hop_after_idle": hops,
                         "job": {**job, "pages": job_pages,
                                 "clock_error_ns": job_clock_error_ns}},
        "pages_per_minute": {"pages": pages, "in_process": ppm_in,
                             "in_process_with_warmup": ppm_in_all, "on_line": ppm_line,
                             "on_line_with_warmup": ppm_line_all, "on_line_vs_in_process":
                             ppm_ratio, "line": line},
        "targets_met": targets,
        "table": {
            "title": "serial board: latency (p50, p99) and throughput",
            "columns": ["measure", "p50 / in process", "p99 / on the line", "target"],
            "rows": rows,
        },
        "more_tables": [device_table],
        "devices": devices,
        "latency_tolerance": tolerance["rows"],
        "notes": [f"{'met' if ok else 'MISSED'}: {name}" for name, ok in targets.items()]
        + unavailable + [
            "the far ends (echo, serve, hop writer, C devices) on CPU "
            f"{FAR_END_CPU}, the host unpinned" if FAR_END_CPU is not None else
            "placement left to the OS (no CPU pinned)",
            f"event latency: the device's clock is related to ours within "
            f"{us(lat['clock_error_ns'])} us (half the best snapshot round trip)",
            *[f"latency tolerance: {note}" for note in tolerance["notes"]
              if not note.startswith(("met", "MISSED"))],
            f"the line at {baud} baud: {line['bytes_to_device']} B to the device, "
            f"{line['bytes_from_device']} B back in {line['wall_time_s']} s "
            f"({line['retransmitted']} frames retransmitted)",
        ],
    }
