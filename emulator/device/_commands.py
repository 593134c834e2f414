"""The device's commands: docs/board-commands.md carried out on an :class:`EmulatedBoard`.

:class:`BoardCommands` holds the command table the virtual device answers from, and the
imaging requests of the session (a host's ``handle`` bound to the board's
:class:`~hal.IoHandle`). A handler takes ``(args, request_id)`` and returns the result,
or raises the :class:`~hal.serial.DeviceRejected` the device answers with. ``sim.*``
commands are in the table only for a device made with ``sim=True``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from emulator.board import EmulatedBoard
from emulator.device._args import (
    Args,
    arg,
    bad_argument,
    boolean,
    name,
    not_supported,
    number,
    uint,
)
from hal import (
    AnalogChannel,
    Button,
    DigitalInput,
    ImagePage,
    IoEvent,
    IoHandle,
    IoState,
    JamPoint,
    Output,
    ResetCause,
)

Handler = Callable[[Args, int], Any]
"""``handler(args, request_id) -> result``; raises :class:`~hal.serial.DeviceRejected`."""
EventSender = Callable[[str, int, dict[str, Any], int], object]
"""``send_event(kind, t_ns, data, request_id)``: an EVENT to the host."""
WhenAnswered = Callable[[Callable[[], None]], None]
"""``when_answered(action)``: run ``action`` once the host has the answer to this request."""

IMAGED_KEPT = 32
"""The handles imaged most recently that ``board.snapshot`` reports (``imaged``): more
than a host can have pending at once (a paper path's worth of sheets, and a device takes
at most 16: the C device's MCU_IMAGING_MAX), so every handle completed since the last
session ended is among them."""


class _Imaging:
    """One host handle bound to a board request, in the session that submitted it."""

    __slots__ = ("handle", "host_handle", "request_id")

    def __init__(self, host_handle: int, request_id: int, handle: IoHandle) -> None:
        self.host_handle = host_handle
        self.request_id = request_id
        self.handle = handle


class BoardCommands:
    """The commands of one device (see the module docstring).

    ``send_event`` reports imaging progress; ``when_answered`` defers what must wait for
    the answer to reach the host (a reboot); ``window_armed(channel)`` tells the device a
    comparator was armed again (an old crossing it kept is moot).
    """

    def __init__(
        self,
        board: EmulatedBoard,
        *,
        sim: bool,
        send_event: EventSender,
        when_answered: WhenAnswered,
        window_armed: Callable[[str], None],
    ) -> None:
        self.board = board
        self._send_event = send_event
        self._when_answered = when_answered
        self._window_armed = window_armed
        self._handles: dict[int, _Imaging] = {}
        self._imaged: deque[int] = deque(maxlen=IMAGED_KEPT)  # newest last
        self.table: dict[str, Handler] = {
            "board.snapshot": self._snapshot,
            "board.clock": self._clock,
            "output.set": self._output_set,
            "output.regulate": self._output_regulate,
            "pickup.pulse": self._pickup_pulse,
            "window.set": self._window_set,
            "analog.read": self._analog_read,
            "display.show": self._display_show,
            "imaging.submit": self._imaging_submit,
            "imaging.cancel": self._imaging_cancel,
            "watchdog.kick": self._watchdog_kick,
            "board.reset": self._board_reset,
        }
        """The command table: what the device answers (tests replace entries to make a
        device that refuses)."""
        if sim:
            self.table.update({
                "sim.toner": self._sim_toner,
                "sim.replace_toner": self._sim_replace_toner,
                "sim.tray": self._sim_tray,
                "sim.jam": self._sim_jam,
                "sim.misfeed": self._sim_misfeed,
                "sim.cover": self._sim_cover,
                "sim.press": self._sim_press,
                "sim.heater": self._sim_heater,
                "sim.observe": self._sim_observe,
                "sim.power_cycle": self._sim_power_cycle,
            })

    @property
    def pending_handles(self) -> list[int]:
        """Host handles of imaging requests still pending on the board."""
        return sorted(self._handles)

    @property
    def imaged_handles(self) -> list[int]:
        """Host handles whose imaging completed most recently, oldest first (at most
        :data:`IMAGED_KEPT`): a host that lost their ``done`` events finds them here."""
        return list(self._imaged)

    def answered(self, cmd: str, args: Args) -> None:
        """``cmd`` was answered: what follows its RESPONSE (an imaging request's
        progress)."""
        if cmd == "imaging.submit":
            self._watch_imaging(int(args["handle"]))

    def end_session(self) -> None:
        """The session ended: its imaging requests are cancelled on the board (one it
        imaged before anyone followed it counts as imaged)."""
        handles, self._handles = self._handles, {}
        for entry in handles.values():
            if not entry.handle.cancel() and entry.handle.state is IoState.DONE:
                self._imaged.append(entry.host_handle)

    def forget(self) -> None:
        """The device rebooted: the board failed every request already, and the handles
        it imaged are of the old boot."""
        self._handles.clear()
        self._imaged.clear()

    # -- the board -----------------------------------------------------------------------

    def _snapshot(self, args: Args, rid: int) -> Any:
        board = self.board
        return {
            "t_ns": board.scheduler.now_ns,
            "inputs": {str(pin): board.read_input(pin) for pin in DigitalInput},
            "analog": {str(ch): float(board.read_analog(ch)) for ch in AnalogChannel},
            "outputs": {str(out): on for out, on in board.outputs.items()},
            "reset_cause": str(board.reset_cause),
            "display": list(board.display),
            "imaging": self.pending_handles,
            "imaged": self.imaged_handles,
            "resets": board.resets,
        }

    def _output_set(self, args: Args, rid: int) -> Any:
        output = name(args, "output", Output)
        self.board.set_output(output, boolean(args, "on"))
        return None

    def _output_regulate(self, args: Args, rid: int) -> Any:
        output, channel = name(args, "output", Output), name(args, "channel", AnalogChannel)
        low, high = number(args, "low"), number(args, "high")
        if "regulator" not in self.board.capabilities:
            raise not_supported("this device has no regulator")
        if (output, channel) != (Output.HEATER, AnalogChannel.FUSER_C):
            raise not_supported("this device regulates only heater by fuser_c")
        if not low <= high:
            raise bad_argument(f"the band [{low}, {high}] is empty (low > high)")
        self.board.regulate(output, channel, low, high)
        return None

    def _pickup_pulse(self, args: Args, rid: int) -> Any:
        self.board.pulse_pickup()
        return None

    def _window_set(self, args: Args, rid: int) -> Any:
        channel = name(args, "channel", AnalogChannel)
        low, high = number(args, "low"), number(args, "high")
        if not low <= high:
            raise bad_argument(f"window [{low}, {high}] is empty")
        self._window_armed(str(channel))
        self.board.set_window(channel, low, high)
        return None

    def _analog_read(self, args: Args, rid: int) -> Any:
        channel = name(args, "channel", AnalogChannel)
        return {"value": float(self.board.read_analog(channel))}

    def _display_show(self, args: Args, rid: int) -> Any:
        rows = arg(args, "rows")
        if (
            not isinstance(rows, list)
            or len(rows) != 2
            or not all(isinstance(r, str) for r in rows)
        ):
            raise bad_argument("'rows' must be a list of two text strings")
        self.board.show(rows[0], rows[1])
        return None

    def _watchdog_kick(self, args: Args, rid: int) -> Any:
        self.board.kick_watchdog()
        return None

    def _clock(self, args: Args, rid: int) -> Any:
        return {"t_ns": self.board.scheduler.now_ns}  # the clock its events are stamped by

    def _board_reset(self, args: Args, rid: int) -> Any:
        self._when_answered(lambda: self.board.reset(ResetCause.SOFTWARE))
        return None

    # -- imaging -------------------------------------------------------------------------

    def _imaging_submit(self, args: Args, rid: int) -> Any:
        host_handle = uint(args, "handle")
        job, page = uint(args, "job"), uint(args, "page")
        coverage = number(args, "coverage_pct")
        if not 0.0 <= coverage <= 100.0:
            raise bad_argument(f"'coverage_pct' must be in [0, 100], got {coverage}")
        if host_handle in self._handles:
            raise bad_argument(f"handle {host_handle} is already pending")
        handle = self.board.submit(ImagePage(job, page, coverage))
        self._handles[host_handle] = _Imaging(host_handle, rid, handle)
        return None

    def _watch_imaging(self, host_handle: int) -> None:
        """After the submit's RESPONSE: report what the handle did so far, then follow it."""
        entry = self._handles.get(host_handle)
        if entry is None:
            return
        handle = entry.handle
        for event in list(handle.events):
            self._imaging_event(entry, event)
        handle.on_event(lambda _h, event: self._imaging_event(entry, event))
        handle.on_done(lambda _h: self._imaging_done(entry))

    def _imaging_event(self, entry: _Imaging, event: IoEvent) -> None:
        if self._handles.get(entry.host_handle) is not entry:
            return
        if event.kind == "imaging_started":
            self._send_event(
                "imaging",
                event.t_ns,
                {"handle": entry.host_handle, "state": "started"},
                entry.request_id,
            )

    def _imaging_done(self, entry: _Imaging) -> None:
        if self._handles.get(entry.host_handle) is not entry:
            return  # cancelled with its session, or the board reset
        del self._handles[entry.host_handle]
        handle = entry.handle
        data: dict[str, Any] = {"handle": entry.host_handle}
        if handle.state is IoState.DONE:
            data["state"] = "done"
            self._imaged.append(entry.host_handle)
        elif handle.state is IoState.FAILED:
            data["state"] = "failed"
            data["error"] = str(handle.error)
        else:
            return  # cancelled by the host: the cancel's RESPONSE said so
        self._send_event("imaging", self.board.scheduler.now_ns, data, entry.request_id)

    def _imaging_cancel(self, args: Args, rid: int) -> Any:
        host_handle = uint(args, "handle")
        entry = self._handles.pop(host_handle, None)
        cancelled = entry is not None and entry.handle.cancel()
        return {"cancelled": cancelled}

    # -- simulation ----------------------------------------------------------------------

    def _sim_toner(self, args: Args, rid: int) -> Any:
        pct = number(args, "pct")
        if not 0.0 <= pct <= 100.0:
            raise bad_argument(f"'pct' must be in [0, 100], got {pct}")
        self.board.faults.set_toner_pct(pct)
        return None

    def _sim_replace_toner(self, args: Args, rid: int) -> Any:
        self.board.faults.replace_toner()
        return None

    def _sim_tray(self, args: Args, rid: int) -> Any:
        sheets = uint(args, "sheets")
        capacity = self.board.config.tray.capacity_sheets
        if sheets > capacity:
            raise bad_argument(f"the tray holds at most {capacity} sheets, got {sheets}")
        self.board.faults.set_tray(sheets)
        return None

    def _sim_jam(self, args: Args, rid: int) -> Any:
        self.board.faults.jam(name(args, "at", JamPoint))
        return None

    def _sim_misfeed(self, args: Args, rid: int) -> Any:
        self.board.faults.misfeed()
        return None

    def _sim_cover(self, args: Args, rid: int) -> Any:
        self.board.faults.set_cover(boolean(args, "open"))
        return None

    def _sim_press(self, args: Args, rid: int) -> Any:
        self.board.faults.press(name(args, "button", Button))
        return None

    def _sim_heater(self, args: Args, rid: int) -> Any:
        self.board.faults.set_heater_failed(boolean(args, "failed"))
        return None

    def _sim_observe(self, args: Args, rid: int) -> Any:
        board = self.board
        return {
            "toner_pct": float(board.toner_level_pct),
            "tray_sheets": board.tray_sheets,
            "sheets_picked": board.sheets_picked,
            "sheets_delivered": board.sheets_delivered,
            "sheets_removed": board.sheets_removed,
            "fuser_c": float(board.fuser_temp_c),
        }

    def _sim_power_cycle(self, args: Args, rid: int) -> Any:
        self._when_answered(self.board.power_cycle)
        return None
