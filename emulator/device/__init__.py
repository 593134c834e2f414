"""The virtual serial device: an emulated board behind the device end of the serial
protocol (docs/protocol.md, docs/board-commands.md), and ``printer-emu serve``, which puts
it on a pty, a TCP port or RFC 2217.

* :class:`VirtualDevice` (``_virtual_device``): the device, transport-agnostic, on the
  board's scheduler; its commands are ``_commands`` (arguments checked by ``_args``).
* :func:`serve` (``_serve``) with :class:`ServeOptions` (``_serve_options``): the
  server's process; its servers (``_servers``) move bytes between a client's connection
  (``_connections``) and the device; its flash is claimed by ``_flash_claim``.
* :class:`ServeProcess` (``_serve_process``): ``printer-emu serve`` in a child process,
  for the HIL plugin and tests; :func:`wait_for_output` (``_child_output``) reads what a
  device child announces, with a deadline.
"""

from emulator.device._ahead import run_ahead
from emulator.device._child_output import ChildSilent, wait_for_output
from emulator.device._serve import EXIT_FAILED, EXIT_OK, serve
from emulator.device._serve_options import DEFAULT_BOARD, DEFAULT_HOST, ServeError, ServeOptions
from emulator.device._serve_process import ServeProcess, ServeProcessError
from emulator.device._virtual_device import SAFE_OUTPUTS, VirtualDevice, link_timings

__all__ = [
    "DEFAULT_BOARD",
    "DEFAULT_HOST",
    "EXIT_FAILED",
    "EXIT_OK",
    "SAFE_OUTPUTS",
    "ChildSilent",
    "ServeError",
    "ServeOptions",
    "ServeProcess",
    "ServeProcessError",
    "VirtualDevice",
    "link_timings",
    "run_ahead",
    "serve",
    "wait_for_output",
]
