"""Synchronising the host with its device when a link session comes up
(docs/board-commands.md, last section): which kind of sync a session needs, the device's
``board.snapshot``, and what a resync must do. Pure: :class:`~hal.serial.SerialBoard`
carries it out.

* **Open**: the first session. The snapshot is the board as it is.
* **Resync** (the same boot nonce as before): the device kept its state, but the link was
  down a while. An edge is raised for every input whose level changed meanwhile; imaging
  handles the device no longer holds complete when it says it imaged them lately (their
  ``done`` event was lost with the session) and fail otherwise; the commanded outputs,
  display and armed windows are applied again where the device differs (it went safe),
  and the regulations the firmware set are set again (the safe state ended them);
  cancels and simulation commands asked for meanwhile go out; then ``link`` is raised
  with ``LinkChange(up=True)``.
* **Reboot** (a new boot nonce), a ``reset`` event inside a synchronised session, or a
  snapshot counting more ``resets`` than we knew of (a board reset while we were away,
  without a reboot): a board reset on this side. ``reset_cause`` is the cause the new
  boot's ``reset`` event names when it is ``watchdog`` or ``software``, else
  ``device_reset`` (``power_on`` after :meth:`SerialBoard.power_cycle`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hal import AnalogChannel, DigitalInput, IoError, IoHandle, Output, ResetCause
from hal.serial._errors import MalformedPayload


class SyncKind(enum.Enum):
    """How a session that came up is synchronised (see the module docstring)."""

    OPEN = "open"
    RESYNC = "resync"
    REBOOT = "reboot"


def sync_kind(known_boot_nonce: int | None, boot_nonce: int) -> SyncKind:
    """The sync a session with a peer of ``boot_nonce`` needs, after one of
    ``known_boot_nonce`` (``None``: no session yet)."""
    if known_boot_nonce is None:
        return SyncKind.OPEN
    if boot_nonce != known_boot_nonce:
        return SyncKind.REBOOT
    return SyncKind.RESYNC


def reset_cause_of(text: object) -> ResetCause:
    """The :class:`ResetCause` a device names; ``device_reset`` for one we do not know."""
    try:
        return ResetCause(str(text))
    except ValueError:
        return ResetCause.DEVICE_RESET


def reboot_cause(announced: ResetCause | None, power_cycling: bool) -> ResetCause:
    """Why the device rebooted, for the firmware: what its first ``reset`` event said
    (its watchdog, a software reset); ``power_on`` for a power cycle we asked for; a
    power cycle or a silent reboot is, for the firmware, the device resetting itself."""
    if power_cycling:
        return ResetCause.POWER_ON
    if announced is None or announced in (ResetCause.POWER_ON, ResetCause.DEVICE_RESET):
        return ResetCause.DEVICE_RESET
    return announced


@dataclass(slots=True)
class Snapshot:
    """A device's ``board.snapshot`` answer."""

    t_ns: int
    inputs: dict[DigitalInput, bool]
    analog: dict[AnalogChannel, float]
    outputs: dict[Output, bool]
    reset_cause: ResetCause
    display: tuple[str, str] | None
    imaging: frozenset[int] | None
    """The imaging handles the device holds (``None``: it does not say)."""
    resets: int | None
    """The device's board resets since it booted (``None``: it does not say)."""
    imaged: frozenset[int] = frozenset()
    """The handles the device imaged most recently (``done``); empty when it does not say."""

    def holds(self, handle: int) -> bool:
        """Whether the device still holds imaging ``handle``."""
        return self.imaging is not None and handle in self.imaging


def parse_snapshot(result: Any) -> Snapshot:
    """A ``board.snapshot`` result; raises :class:`MalformedPayload`."""
    if not isinstance(result, dict):
        raise MalformedPayload(f"board.snapshot: expected a map, got {result!r}")
    try:
        inputs = {DigitalInput(k): bool(v) for k, v in result["inputs"].items()}
        analog = {AnalogChannel(k): float(v) for k, v in result["analog"].items()}
        outputs = {Output(k): bool(v) for k, v in result["outputs"].items()}
        display = result.get("display")
        rows = None if display is None else (str(display[0]), str(display[1]))
        imaging = result.get("imaging")
        resets = result.get("resets")
        imaged = result.get("imaged") or []  # absent (an older device): none
        return Snapshot(
            t_ns=int(result.get("t_ns", 0)),
            inputs=inputs,
            analog=analog,
            outputs=outputs,
            reset_cause=reset_cause_of(result.get("reset_cause", "power_on")),
            display=rows,
            imaging=None if imaging is None else frozenset(int(h) for h in imaging),
            resets=None if resets is None else int(resets),
            imaged=frozenset(int(h) for h in imaged),
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise MalformedPayload(f"board.snapshot: {exc!r} in {result!r}") from None


@dataclass(slots=True)
class Resync:
    """What a resync does, in this order: complete the ``imaged`` imaging handles (their
    ``done`` event was lost with the link), fail the ``lost`` ones, send the ``cancels``,
    send the ``commands`` (the firmware's state again), raise an edge for each of
    ``edges``."""

    imaged: list[int]
    lost: list[int]
    cancels: list[int]
    commands: list[tuple[str, dict[str, Any]]]
    edges: list[DigitalInput]


def plan_resync(
    snap: Snapshot,
    *,
    inputs: Mapping[DigitalInput, bool],
    outputs: Mapping[Output, bool],
    display: tuple[str, str],
    windows: Mapping[AnalogChannel, tuple[float, float]],
    regulations: Mapping[Output, tuple[AnalogChannel, float, float]],
    handles: Iterable[int],
    cancel_later: Iterable[int],
) -> Resync:
    """The :class:`Resync` that brings a device that kept its boot back in line with
    the firmware's view: ``inputs`` as last known, ``outputs``, ``display``, armed
    ``windows`` and ``regulations`` as commanded, imaging ``handles`` pending, and the
    handles whose cancel waited for the link (``cancel_later``). A pending handle the
    device no longer holds is ``imaged`` when the snapshot lists it among those it imaged
    lately, else ``lost``."""
    commands: list[tuple[str, dict[str, Any]]] = []
    for output in Output:
        if output not in regulations and snap.outputs.get(output) != outputs[output]:
            commands.append(("output.set", {"output": str(output), "on": outputs[output]}))
    if snap.display is not None and snap.display != display:
        commands.append(("display.show", {"rows": list(display)}))
    for channel, (low, high) in windows.items():
        commands.append(("window.set", {"channel": str(channel), "low": low, "high": high}))
    for output, regulation in regulations.items():  # the safe state ended them
        commands.append(("output.regulate", regulate_args(output, *regulation)))
    gone = [n for n in handles if not snap.holds(n)]
    return Resync(
        imaged=[n for n in gone if n in snap.imaged],
        lost=[n for n in gone if n not in snap.imaged],
        cancels=[n for n in sorted(cancel_later) if snap.imaging is None or n in snap.imaging],
        commands=commands,
        edges=[pin for pin in DigitalInput if snap.inputs.get(pin, inputs[pin]) != inputs[pin]],
    )


def regulate_args(output: Output, channel: AnalogChannel, low: float, high: float
                  ) -> dict[str, Any]:
    """The arguments of ``output.regulate``."""
    return {"output": str(output), "channel": str(channel), "low": low, "high": high}


def settle_imaging(plan: Resync, handles: dict[int, IoHandle]) -> None:
    """Take the handles a resync settles out of ``handles`` (the host's pending ones, by
    number): complete the ``imaged`` ones, as their lost ``done`` events would have, and
    fail the ``lost`` ones."""
    for number in plan.imaged:
        handle = handles.pop(number)
        handle.complete(handle.request)
    for number in plan.lost:
        handles.pop(number).fail(IoError("imaging request lost while the link was down"))
