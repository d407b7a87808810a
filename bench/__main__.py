"""``python -m bench``: benchmark the herd implementations side by side."""

import sys

from bench.cli import main

sys.exit(main())
