"""`python -m gandiag` is the `gandiag` command."""

from gandiag.cli import main

raise SystemExit(main())
