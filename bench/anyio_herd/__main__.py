"""``python -m bench.anyio_herd NAME``: run a herd server on anyio (see ``--help``)."""

import sys

from bench.anyio_herd.cli import main

sys.exit(main())
