"""What a board file may say: one frozen dataclass per TOML table.

Each field's metadata gives its range (``lo``/``hi``, inclusive) or its ``choices`` and
a one-line ``doc``; the loader validates against exactly this, so the schema is the one
place a new key is added. Units are in the names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _f(doc: str, lo: float | None = None, hi: float | None = None,
       choices: tuple[str, ...] | None = None) -> Any:
    return field(metadata={"doc": doc, "lo": lo, "hi": hi, "choices": choices})


@dataclass(frozen=True)
class BoardInfo:
    name: str = _f("the board's name, as `--board` takes it")
    description: str = _f("one line for humans")


@dataclass(frozen=True)
class EngineConfig:
    rated_ppm: int = _f("rated pages per minute (the pickup pitch is 60 s / rated_ppm)", 1, 100_000)
    paper_speed_mm_s: float = _f("sheet speed while the main motor runs", 1.0, 1_000_000.0)
    sheet_length_mm: float = _f("length of a sheet along the path", 50.0, 1000.0)
    pickup_pulse_ms: float = _f("how long the pickup solenoid is energised", 0.001, 1000.0)
    pickup_retries: int = _f("pickups retried after a misfeed before it is a jam", 0, 10)
    edge_margin_pct: float = _f("slack on each expected sensor edge before it is late", 1.0, 500.0)
    edge_margin_min_ms: float = _f("least slack on an expected edge", 0.0, 10_000.0)
    power_save_after_s: float = _f("idle time before the fuser is switched off", 0.01, 86_400.0)
    watchdog_timeout_ms: float = _f(
        "reset if the watchdog is not kicked within this", 0.1, 60_000.0
    )
    watchdog_kick_ms: float = _f("how often a healthy firmware kicks the watchdog", 0.05, 60_000.0)


@dataclass(frozen=True)
class PaperPathConfig:
    feed_sensor_mm: float = _f("registration sensor, from the pickup roller", 1.0, 10_000.0)
    drum_mm: float = _f("the imaging drum", 1.0, 10_000.0)
    fuser_mm: float = _f("the fuser nip", 1.0, 10_000.0)
    exit_sensor_mm: float = _f("exit sensor", 1.0, 10_000.0)
    output_mm: float = _f("where a sheet drops into the output tray", 1.0, 10_000.0)


@dataclass(frozen=True)
class TrayConfig:
    capacity_sheets: int = _f("sheets the input tray holds", 1, 1_000_000)
    loaded_sheets: int = _f("sheets in the tray at power-on", 0, 1_000_000)


@dataclass(frozen=True)
class FuserConfig:
    ambient_c: float = _f("room temperature; the fuser cools toward it", -40.0, 60.0)
    max_c: float = _f("where the fuser settles with the heater on for ever", 50.0, 600.0)
    tau_s: float = _f("thermal time constant (heating and cooling)", 0.001, 3600.0)
    ready_c: float = _f("the temperature a page may be printed at", 30.0, 500.0)
    hysteresis_c: float = _f("half-width of the control band around ready_c", 0.1, 100.0)
    over_temp_c: float = _f("above this the heater is cut and it is a fuser error", 50.0, 600.0)
    cutoff_c: float = _f(
        "the element's thermostat (hardware over-temperature cutoff): the fuser never heats "
        "past it whatever the firmware commands; above ready_c + hysteresis_c and below "
        "over_temp_c", 50.0, 600.0
    )
    warmup_limit_s: float = _f("no ready temperature within this is a fuser error", 0.01, 3600.0)
    regulation: str = _f(
        "who switches the heater in the control band: the firmware at each window crossing, "
        "or the board's own regulator (a comparator with hysteresis driving the heater), "
        "which the firmware sets", choices=("firmware", "board"),
    )
    sheet_draw_c: float = _f("temperature a sheet takes from the fuser as it passes", 0.0, 100.0)
    thermistor_noise_c: float = _f("standard deviation of the thermistor's noise", 0.0, 50.0)
    plausible_min_c: float = _f(
        "self-test: a colder reading means a broken thermistor", -100.0, 100.0
    )
    plausible_max_c: float = _f(
        "self-test: a hotter reading means a shorted thermistor", 0.0, 1000.0
    )


@dataclass(frozen=True)
class TonerConfig:
    capacity_pages_at_5pct: int = _f("pages a full cartridge prints at 5% coverage", 1, 10_000_000)
    loaded_pct: float = _f("cartridge level at power-on", 0.0, 100.0)
    low_pct: float = _f("below this the printer warns (toner_low)", 0.0, 100.0)
    empty_pct: float = _f("below this the cartridge is empty (toner_empty)", 0.0, 100.0)
    hysteresis_pct: float = _f("a warning clears only this far above its threshold", 0.0, 50.0)
    sensor_noise_pct: float = _f("standard deviation of the level sensor's noise", 0.0, 20.0)
    empty_policy: str = _f("what an empty cartridge does to printing", choices=("stop", "continue"))


@dataclass(frozen=True)
class IrqLineConfig:
    line: int = _f("interrupt line number", 0, 255)
    priority: int = _f("higher is served first", 0, 255)


@dataclass(frozen=True)
class SerialConfig:
    baud: int = _f("line rate of the board's UART", 300, 12_000_000)
    heartbeat_ms: float = _f("a heartbeat is sent after this much silence", 1.0, 60_000.0)
    link_dead_ms: float = _f("the link is down after this much silence", 2.0, 600_000.0)
    retransmit_ms: float = _f("an unacknowledged frame is sent again after this", 1.0, 60_000.0)
    window: int = _f("frames in flight before the sender waits for an ack", 1, 64)
    max_payload: int = _f("largest frame payload in bytes", 64, 65_535)


@dataclass(frozen=True)
class FlashConfig:
    vendor: str = _f("imgtool --vid the board accepts (images carry --cid <board name>)")
    signing_key: str = _f(
        "PEM public key images must be signed with, relative to the board file; "
        "\"\" accepts unsigned images"
    )
    sector_size_bytes: int = _f("erase unit of the emulated flash", 512, 1 << 20)
    slot_sectors: int = _f("sectors per image slot, trailer sector included", 2, 4096)


IRQ_LINE_NAMES: tuple[str, ...] = (
    "cover_open",
    "paper_present",
    "feed_sensor",
    "exit_sensor",
    "button_cancel",
    "button_continue",
    "toner",
    "fuser",
    "link",
)
"""The interrupt lines every board declares in its ``[irq]`` table."""


@dataclass(frozen=True)
class BoardConfig:
    """A whole, validated board description."""

    board: BoardInfo
    engine: EngineConfig
    paper_path: PaperPathConfig
    tray: TrayConfig
    fuser: FuserConfig
    toner: TonerConfig
    serial: SerialConfig
    flash: FlashConfig
    irq: dict[str, IrqLineConfig]
    source: str = ""
    """Where it was loaded from (a path), for error messages; not a board-file key."""

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def page_pitch_ns(self) -> int:
        """Time between two pickups at the rated speed."""
        return round(60e9 / self.engine.rated_ppm)
