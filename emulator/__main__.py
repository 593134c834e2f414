from emulator._cli import main

raise SystemExit(main())
