"""The printer's network task: IPP Everywhere, AppSocket/PJL and the Printer MIB.

:class:`NetworkFrontEnd` is the whole of it: made on a :class:`firmware.Printer`, it
serves IPP on ``ipp://HOST:PORT/ipp/print``, raw jobs and PJL on a TCP port, and the
Printer MIB over SNMP, from a thread of its own that enters the firmware only through the
scheduler's ``post_threadsafe`` and reads only the status the firmware publishes.
"""

from firmware.net._documents import DocumentError, DocumentReader
from firmware.net._front_end import ListenError, NetworkFrontEnd
from firmware.net._printer_status import JobProgress, PrinterStatus, StatusBoard
from firmware.net._pwg_raster import PwgRasterError, PwgRasterReader

__all__ = [
    "DocumentError",
    "DocumentReader",
    "JobProgress",
    "ListenError",
    "NetworkFrontEnd",
    "PrinterStatus",
    "PwgRasterError",
    "PwgRasterReader",
    "StatusBoard",
]
