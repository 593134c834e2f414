"""The lab: instruments that put a real link's faults between a host and a device.

* :mod:`tests.lab.relay`: a seeded TCP relay with the faults of a real link (latency,
  jitter, a stall, bit flips, dropped and duplicated bytes) between a
  :class:`hal.serial.SerialBoard` on ``socket://`` and ``printer-emu serve --tcp``.
* :mod:`tests.lab.ser2net`: ``serve --pty`` exported as RFC 2217 by ser2net, as a lab
  exports a real board's UART.

They live with the tests and are imported by the benchmarks too (``python -m
benchmarks serial``): both run from the checkout's root, where ``tests`` is importable,
so there is one relay, proven by the tests the benchmark relies on.
"""
