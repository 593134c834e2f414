"""``python -m emulator ...``: the ``printer-emu`` command line."""

from emulator.cli import main

raise SystemExit(main())
