"""``python -m li_core``: the ``li`` command line."""

import sys

from .cli import main

sys.exit(main())
