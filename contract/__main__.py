"""``python -m contract``: the same command line as the ``contract`` script."""

from .cli import main

raise SystemExit(main())
