"""``python -m ground``: the same as the ``ground`` command."""

import sys

from ground.cli import main

sys.exit(main())
