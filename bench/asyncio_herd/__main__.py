"""``python -m bench.asyncio_herd NAME``: run a herd server on asyncio (see ``--help``)."""

import sys

from bench.asyncio_herd.cli import main

sys.exit(main())
