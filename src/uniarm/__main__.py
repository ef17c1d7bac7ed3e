from uniarm.cli import main

raise SystemExit(main())
