"""``python -m hsi`` runs the command-line interface."""

from hsi.cli.main import main

raise SystemExit(main())
