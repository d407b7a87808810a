"""``python -m bench.trio_nowake NAME``: trioherd whose writes at once never wake the sender.

The same server and command line as ``python -m trioherd``, except that
:meth:`trioherd.serving.LinkBase._write_now` writes whenever the link's
sender is idle and does not wake the sender afterwards: no "once per
moment" rule, so no sender step in the pass after a hop. What that step
costs an unloaded flood (``python -m bench.flood_hops --impl
bench.trio_nowake``, ``bench/results/flood/s23/README.md``). Not a way to run
a herd: under load every record would be a write of its own, where the rule
batches them.
"""

from __future__ import annotations

import sys

from trioherd import serving


def _write_whenever_idle(self: serving.LinkBase[serving.FlagT]) -> bool:
    unsent: bytes = getattr(self, "_unsent", b"")
    if not self._idle or unsent:
        # Busy, or a write at once left bytes the sender has not written yet.
        return False
    batch = self.protocol.take()
    taken = self.protocol.taken
    if batch:
        self.lines.link_sent(self.peer, batch)
        if not self._send_now(batch):
            self._release()
            # The sender writes the rest: it must run for that.
            self._ready.set()
            return True
    self._written(taken)
    return True


if __name__ == "__main__":
    serving.LinkBase._write_now = _write_whenever_idle  # type: ignore[method-assign]
    from trioherd.cli import main

    sys.exit(main())
