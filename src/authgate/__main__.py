"""``python -m authgate``: the command line (see :mod:`authgate.cli`)."""

import sys

from .cli import main

sys.exit(main())
