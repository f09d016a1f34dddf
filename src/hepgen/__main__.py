"""``python -m hepgen`` is the ``hepgen`` command."""

from hepgen.cli import main

raise SystemExit(main())
