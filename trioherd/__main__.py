"""``python -m trioherd NAME``: run a herd server (see ``--help``)."""

import sys

from trioherd.cli import main

sys.exit(main(prog="python -m trioherd"))
