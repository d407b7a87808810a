"""``python -m bench.trio_nopush NAME``: trioherd without the first hop before the reply.

The same server and command line as ``python -m trioherd``, except that
:meth:`trioherd.peers.PeerLink.push` only wakes the link's sender and lets
the client's reply go at once, instead of holding the reply until the link
has written the flood's first hop (docs/protocol.md: the first hop goes on
the wire first, so that a client asking a neighbour right after its reply
finds its new location there).
Measured by the bench as ``trio-nopush``: what that guarantee costs. It is
not a way to run a herd: it loses the race that
``tests/conformance/test_first_hop.py`` checks.
"""

from __future__ import annotations

import sys

from trioherd import peers


def _wake_only(self: peers.PeerLink) -> None:
    self.wake()
    # No mark: the reply does not wait.


if __name__ == "__main__":
    peers.PeerLink.push = _wake_only  # type: ignore[method-assign,assignment]
    from trioherd.cli import main

    sys.exit(main())
