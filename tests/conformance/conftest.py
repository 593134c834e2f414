"""Fixtures of the Board conformance suite: one ``bench`` per kind of board.

* ``emulated`` — :class:`emulator.board.EmulatedBoard` in virtual time;
* ``serial-virtual`` — :class:`hal.serial.SerialBoard` to the virtual device
  (:class:`emulator.device.VirtualDevice`) in the same process and virtual time, over
  an in-memory line: the serial board's logic, deterministic;
* ``serial-pty`` — ``SerialBoard`` to a real ``printer-emu serve --pty --board devkit``
  subprocess, in wall time: the whole stack, threads and a kernel pty included;
* ``mcu-host``, ``mcu-microbit``, ``mcu-mps2`` — ``SerialBoard`` to the C reference
  device (``mcu/``): the host build on a pty, and Cortex-M machine code under QEMU
  (launched by ``tests/mcu/_mcu.McuDevice``). They announce no ``"sim"``, as a real
  board does not: a test that needs fault injection skips there, saying so.

Tests are written against the Board contract only and wait through
:meth:`Bench.wait_until`, which runs the board's scheduler: instantly in virtual time,
bounded in wall time. Every subprocess and port is closed however the test ends.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from boards import BoardConfig, load_board
from emulator.device import ServeProcess
from hal import Board, FaultInjector, IrqEvent, Scheduler

S = 1_000_000_000
BOARD = "devkit"
BENCHES = ("emulated", "serial-virtual", "serial-pty", "mcu-host", "mcu-microbit", "mcu-mps2")


class _MemoryLine:
    """A serial line inside the process, in the scheduler's virtual time."""

    name = "mem://conformance"

    def __init__(self, scheduler: Scheduler, device: Any, latency_ns: int = 100_000) -> None:
        self._scheduler = scheduler
        self._device = device
        self._latency_ns = latency_ns
        self._on_bytes: Callable[[bytes], None] | None = None

    def start(self, on_bytes: Callable[[bytes], None], on_lost: Callable[[Exception], None],
              on_reopened: Callable[[], None]) -> None:
        self._on_bytes = on_bytes
        self._device.connection_made(self._to_host)

    def _to_host(self, data: bytes) -> None:
        self._scheduler.call_later(self._latency_ns, lambda: self._deliver(data))

    def _deliver(self, data: bytes) -> None:
        if self._on_bytes is not None:
            self._on_bytes(data)

    def write(self, data: bytes) -> None:
        device = self._device
        self._scheduler.call_later(self._latency_ns, lambda: device.receive(data))

    def close(self) -> None:
        self._on_bytes = None


class Bench:
    """A board under test and the means to wait on it, whatever its clock.

    ``raises`` records every interrupt the board raises, ``(line name, value)``."""

    def __init__(self, kind: str, board: Board, closers: list[Callable[[], object]]) -> None:
        self.kind = kind
        self.board = board
        self.scheduler = board.scheduler
        self.raises: list[tuple[str, object]] = []
        self._closers = closers
        board.irq.add_listener(self._on_irq)

    def _on_irq(self, kind: str, event: IrqEvent) -> None:
        if kind == "raise":
            self.raises.append((event.name, event.value))

    @property
    def wall(self) -> bool:
        return not self.scheduler.is_virtual

    @property
    def faults(self) -> FaultInjector:
        """The board's fault injector; a board without one (a real board, the C device)
        skips the test, as the HIL suite does on a lab's board."""
        faults = self.board.faults
        if faults is None:
            pytest.skip(f"{self.kind}: needs fault injection (the 'sim' capability), "
                        "which this board does not announce")
        return faults

    def raised(self, line: str) -> list[object]:
        return [value for name, value in self.raises if name == line]

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 3.0,
                   what: str = "") -> None:
        """Run the board until ``predicate()``; fail the test after ``timeout_s`` of the
        board's time (virtual time passes at once; wall time is waited)."""
        reached = self.scheduler.run_until(predicate, timeout_ns=round(timeout_s * S))
        assert reached, f"{self.kind}: {what or 'condition'} not reached within {timeout_s} s"

    def run_for(self, seconds: float) -> None:
        self.scheduler.run_until(self.scheduler.now_ns + round(seconds * S))

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()


def _emulated(config: BoardConfig) -> Bench:
    from emulator.board import EmulatedBoard

    return Bench("emulated", EmulatedBoard(config, Scheduler(), seed=0), [])


def _serial_virtual(config: BoardConfig) -> Bench:
    from emulator.board import EmulatedBoard
    from emulator.device import VirtualDevice
    from hal.serial import SerialBoard

    scheduler = Scheduler()
    device = VirtualDevice(EmulatedBoard(config, scheduler, seed=0), rng=random.Random(0))
    line = _MemoryLine(scheduler, device)
    board = SerialBoard(line.name, config, scheduler, transport=line, strict=True)
    return Bench("serial-virtual", board, [device.close, board.close])


def _serial_pty(config: BoardConfig) -> Bench:
    from hal.serial import SerialBoard

    served = ServeProcess(config.name)
    served.start()
    try:
        board = SerialBoard(served.url, config, strict=True)
    except BaseException:
        served.stop()
        raise
    return Bench("serial-pty", board, [served.stop, board.close])


def _mcu(kind: str) -> Callable[[BoardConfig], Bench]:
    def make(config: BoardConfig) -> Bench:
        from hal.serial import SerialBoard
        from tests.mcu._mcu import McuDevice

        device = McuDevice(kind)
        device.start()
        try:
            board = SerialBoard(device.url, config, baud=device.line_baud, strict=True)
        except BaseException:
            device.close()
            raise
        return Bench(f"mcu-{kind}", board, [device.close, board.close])

    return make


_MAKERS: dict[str, Callable[[BoardConfig], Bench]] = {
    "emulated": _emulated,
    "serial-virtual": _serial_virtual,
    "serial-pty": _serial_pty,
    "mcu-host": _mcu("host"),
    "mcu-microbit": _mcu("microbit"),
    "mcu-mps2": _mcu("mps2"),
}


@pytest.fixture(scope="session")
def conformance_config() -> BoardConfig:
    return load_board(BOARD)


@pytest.fixture(params=BENCHES)
def bench(request: pytest.FixtureRequest, conformance_config: BoardConfig) -> Iterator[Bench]:
    made = _MAKERS[request.param](conformance_config)
    try:
        yield made
    finally:
        made.close()
