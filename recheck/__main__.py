"""``python -m recheck``: the same command line as the ``recheck`` script."""

import sys

from recheck.cli.main import main

sys.exit(main())
