"""The input tray: a stack of sheets and the ``paper_present`` sensor under it.

Contract
--------
* The tray holds ``count`` sheets, ``0 <= count <= capacity_sheets``; it starts with the
  board file's ``loaded_sheets``.
* ``paper_present`` reads ``True`` while ``count > 0``; each change of that level raises
  the ``paper_present`` line with the new level (no edge when the count changes but the
  level does not).
* :meth:`take` removes one sheet if there is one (the pickup); :meth:`set_count` is a
  refill or an emptying by hand. Asking for more than the tray holds is misuse
  (``ValueError``), not a printer fault.
"""

from __future__ import annotations

from collections.abc import Callable

from boards import TrayConfig
from hal import InterruptController

_LINE = "paper_present"


class InputTray:
    """See the module docstring."""

    def __init__(self, config: TrayConfig, irq: InterruptController) -> None:
        self.capacity_sheets = config.capacity_sheets
        self.count = config.loaded_sheets
        self._irq = irq
        self.observer: Callable[[str, object], None] | None = None
        """Told ``(signal, value)`` on every change: ``sheets``, ``paper_present``."""

    @property
    def paper_present(self) -> bool:
        return self.count > 0

    def take(self) -> bool:
        """Take the top sheet; ``False`` if the tray is empty."""
        if self.count == 0:
            return False
        self._change(self.count - 1)
        return True

    def set_count(self, sheets: int) -> None:
        """The tray now holds ``sheets``."""
        if not 0 <= sheets <= self.capacity_sheets:
            raise ValueError(f"a tray of {self.capacity_sheets} sheets cannot hold {sheets} sheets")
        self._change(sheets)

    def _change(self, sheets: int) -> None:
        was_present = self.count > 0
        if sheets == self.count:
            return
        self.count = sheets
        present = sheets > 0
        observer = self.observer
        if observer is not None:
            observer("sheets", sheets)
            if present != was_present:
                observer("paper_present", present)
        if present != was_present:
            self._irq.raise_line(_LINE, present)
