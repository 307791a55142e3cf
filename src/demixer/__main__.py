from demixer.cli.main import main

raise SystemExit(main())
