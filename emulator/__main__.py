from emulator.cli._main import main

raise SystemExit(main())
