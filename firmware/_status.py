"""Status events: what the firmware tells the world.

Every state change, warning, error and delivered page is published as a
:class:`StatusEvent`; any listener (the CLI, tests, a serial host) subscribes through
:meth:`firmware.Printer.subscribe`. Listeners run synchronously on the scheduler's thread
and must not block.

Kinds (``detail`` keys in brackets):

========================  ==========================================================
``boot``                  firmware started [reset_cause]
``self_test_failed``      [reason]
``state``                 an active object changed state [state]
``job_queued``            [job, pages]
``job_started``           [job]
``job_done``              a job finished [job, state, delivered, pages]
``page_feeding``          a sheet was picked for a page [job, page, sheet]
``page_delivered``        [job, page, sheet]; published by the spooler at boot with
                          ``sheet=None, recovered=True`` for a page whose sheet came
                          out while the firmware could not see it (before a reset)
``page_spoiled``          a sheet came out without its image; the page is reprinted
``misfeed``               a pickup took nothing [job, page, attempt]
``jam``                   [job, page, at] (``at``: feed, exit, drum, path)
``jam_cleared``           [pages_requeued]
``paper_out``/``paper_loaded``
``cover_open``/``cover_closed``
``link_down``/``link_up``  the link to a serial board was lost / is back [reason]
``toner_low``/``toner_empty``/``toner_replaced``  [reading_pct]
``fuser_ready``           [reading_c]
``fuser_cold``            the fuser fell below its band; no pickup until ``fuser_ready``
``fuser_error``           [reason, reading_c]
``power_save``/``wake``
``watchdog_reset``        the board was reset by its watchdog (published at reboot)
``hang``                  an active object was made to hang (fault injection) [object]
========================  ==========================================================
"""

from __future__ import annotations

from typing import Any, NamedTuple


class StatusEvent(NamedTuple):
    """One status event (see the module docstring for the kinds). Immutable; a named
    tuple because the firmware makes a few per page and a frozen dataclass costs twice
    as much to build."""

    t_ns: int
    """The scheduler's instant of the event (when the firmware published it)."""
    kind: str
    source: str
    detail: dict[str, Any]
    board_t_ns: int | None = None
    """The board's clock's instant of what the event reports, where the board stamped it
    (``page_delivered``: the sheet's trailing edge leaving the exit sensor); ``None``
    otherwise. On the emulated board it equals ``t_ns``; over a link it is the device's
    own time, which no latency or host load shifts."""
