"""``python -m bench.trio_noreverse NAME``: trioherd with trio's run loop in strict order.

The same server and command line as ``python -m trioherd``, except that
trio's run loop never reverses a batch of runnable tasks. Trio reverses
each batch with a chance of one half (so that no code comes to rely on
the order tasks were woken in); asyncio runs its ready callbacks first
come, first served. Measured by the bench as ``trio-noreverse`` (IAMAT
only, on demand): how much of trio's wider latency spread at many
connections is that policy (bench/results/hotpath/README.md, session 23).
Not a way to run a herd: it patches a private part of trio.
"""

from __future__ import annotations

import random
import sys


class _NeverReverse(random.Random):
    """A random source whose ``random()`` is never below one half."""

    def random(self) -> float:
        return 1.0


if __name__ == "__main__":
    import trio._core._run as trio_run

    # unrolled_run reverses the batch when _r.random() < 0.5.
    trio_run._r = _NeverReverse()
    from trioherd.cli import main

    sys.exit(main())
