"""``python -m bench.batched trio|anyio ARGS``: a herd whose links never write at once.

The same server and command line as ``python -m trioherd`` (``trio``) or
``python -m bench.anyio_herd`` (``anyio``), except that an idle link does
not write a record from the task that queued it
(:meth:`trioherd.serving.LinkBase._write_now`): every record waits for the
link's sender, which writes what has gathered in one batch, and a reply
waits for its first hop as it did before the write at once. Measured by the
bench as ``trio-batched`` and ``anyio-trio-batched`` (IAMAT, on demand):
what the write at once costs or saves each herd per IAMAT.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from trioherd.serving import LinkBase

#: Each herd's links module (where ``PeerLink`` is) and command line.
_HERDS = {
    "trio": ("trioherd.peers", "trioherd.cli"),
    "anyio": ("bench.anyio_herd.peers", "bench.anyio_herd.cli"),
}


def _never(self: LinkBase[Any]) -> bool:
    # The sender writes every record: the link's caller wakes it instead.
    return False


def main() -> int:
    """Patch the named herd's links, then run that herd's command line."""
    herd = sys.argv.pop(1) if len(sys.argv) > 1 else ""
    if herd not in _HERDS:
        raise SystemExit(f"usage: python -m bench.batched trio|anyio ARGS (not {herd!r})")
    peers, cli = _HERDS[herd]
    link: type[LinkBase[Any]] = importlib.import_module(peers).PeerLink
    link._write_now = _never  # type: ignore[method-assign]
    run: Callable[[], int] = importlib.import_module(cli).main
    return run()


if __name__ == "__main__":
    sys.exit(main())
