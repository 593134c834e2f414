"""The link's timings for a board, from its board file's ``[serial]`` table: what each end
passes to :class:`~hal.serial.LinkEndpoint` (``window``, ``max_payload``, ``rto_ns``,
``heartbeat_ns``, ``dead_after_ns``, and the device's ``ack_delay_ns``).

On a line paced at ``baud`` (a real UART, or ``--baud``) a window of frames takes time on
the wire each way, so the retransmission timeout (and the silence that ends a session)
grow to fit it.
"""

from __future__ import annotations

from boards import BoardConfig
from hal.serial._frames import MAX_PAYLOAD_LIMIT, MIN_MAX_PAYLOAD
from hal.serial._link import suggested_rto_ns

_MS = 1_000_000
_S = 1_000_000_000

_HOST_DEFAULTS: dict[str, int] = {
    "window": 8,
    "rto_ns": 60 * _MS,
    "heartbeat_ns": 200 * _MS,
    "dead_after_ns": 1 * _S,
    "max_payload": 1024,
}
"""The host's timings when no board file is given yet (those of the shipped boards)."""

_TYPICAL_PAYLOAD = 256
"""Frames of the board vocabulary are far below this; the host's retransmission timeout
on a slow line is sized for a window of them."""


def host_link_options(config: BoardConfig | None, baud: int | None) -> dict[str, int]:
    """The host's link parameters for ``config`` (``None``: the shipped boards')."""
    if config is None:
        params = dict(_HOST_DEFAULTS)
    else:
        s = config.serial
        params = {
            "window": s.window,
            "rto_ns": round(s.retransmit_ms * _MS),
            "heartbeat_ns": round(s.heartbeat_ms * _MS),
            "dead_after_ns": round(s.link_dead_ms * _MS),
            "max_payload": max(MIN_MAX_PAYLOAD, s.max_payload),
        }
    if baud:
        wire_bytes = params["window"] * (_TYPICAL_PAYLOAD + 24)
        line_rto = 2 * wire_bytes * 10 * _S // baud + 20 * _MS
        params["rto_ns"] = max(params["rto_ns"], line_rto)
        params["dead_after_ns"] = max(params["dead_after_ns"], 4 * params["rto_ns"])
    return params


def device_link_options(config: BoardConfig, baud: int | None = None) -> dict[str, int]:
    """The device's link parameters for ``config``, made safe for a line paced at
    ``baud``: a full window of the largest frames must fit in the retransmission
    timeout (see :func:`~hal.serial.suggested_rto_ns`)."""
    serial = config.serial
    window = max(1, serial.window)
    max_payload = min(max(MIN_MAX_PAYLOAD, serial.max_payload), MAX_PAYLOAD_LIMIT)
    rto_ns = round(serial.retransmit_ms * _MS)
    if baud:
        rto_ns = max(rto_ns, suggested_rto_ns(baud, window, max_payload))
    dead_after_ns = max(round(serial.link_dead_ms * _MS), 3 * rto_ns)
    heartbeat_ns = min(round(serial.heartbeat_ms * _MS), dead_after_ns // 3)
    ack_delay_ns = min(2 * _MS, rto_ns // 4)
    return {
        "window": window,
        "max_payload": max_payload,
        "rto_ns": rto_ns,
        "heartbeat_ns": max(1, heartbeat_ns),
        "dead_after_ns": dead_after_ns,
        "ack_delay_ns": ack_delay_ns,
    }
