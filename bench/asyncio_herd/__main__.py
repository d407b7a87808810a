"""``python -m bench.asyncio_herd NAME``: run a herd server on asyncio (see ``--help``)."""

import sys

try:
    from bench.asyncio_herd.cli import main
except ModuleNotFoundError as exc:
    # aiohttp comes with the bench extra, not with trioherd itself.
    if exc.name != "aiohttp":
        raise
    print(
        "python -m bench.asyncio_herd: needs aiohttp, from the bench extra: "
        "pip install -e '.[bench]'",
        file=sys.stderr,
    )
    sys.exit(1)

sys.exit(main(prog="python -m bench.asyncio_herd"))
