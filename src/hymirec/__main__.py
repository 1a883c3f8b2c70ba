from hymirec.cli import main

raise SystemExit(main())
