"""``python -m bench.noturn trio|asyncio NAME ...``: a herd that answers WHATSATs with no CPU turn.

The same server and command line as ``python -m trioherd`` (``trio``) or
``python -m bench.asyncio_herd`` (``asyncio``), except that the shaping of
a Places answer does not wait for a turn at the CPU (``trioherd/turns.py``,
``bench/asyncio_herd/turns.py``): it runs as soon as the answer arrives.
Measured by the bench as ``trio-noturn`` and ``asyncio-noturn`` (WHATSAT
only, on demand): what the turn costs each herd per WHATSAT. It is not a
way to run a herd: without turns, a burst of answers starves new clients
(``bench/results/hardening/fairness.md``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import TracebackType

#: Each herd's server module (where ``cpu_turn`` is looked up) and command line.
_HERDS = {
    "trio": ("trioherd.server", "trioherd.cli"),
    "asyncio": ("bench.asyncio_herd.server", "bench.asyncio_herd.cli"),
}


class _NoTurn:
    __slots__ = ()

    async def __aenter__(self) -> None:
        pass

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass


def _no_turn() -> _NoTurn:
    return _NoTurn()


def main() -> int:
    """Patch the named herd's server module, then run that herd's command line."""
    loop = sys.argv.pop(1) if len(sys.argv) > 1 else ""
    if loop not in _HERDS:
        raise SystemExit(f"usage: python -m bench.noturn trio|asyncio ARGS (not {loop!r})")
    server, cli = _HERDS[loop]
    # The servers import cpu_turn by name: replace it where they look it up.
    setattr(importlib.import_module(server), "cpu_turn", _no_turn)  # noqa: B010
    run: Callable[[], int] = importlib.import_module(cli).main
    return run()


if __name__ == "__main__":
    sys.exit(main())
