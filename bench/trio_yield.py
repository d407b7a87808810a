"""``python -m bench.trio_yield NAME``: trioherd with one more loop pass per request.

The same server and command line as ``python -m trioherd``, but every
connection's read yields to the run loop once before the request is handled
(as asyncio's streams do: a read callback wakes the task, which runs in the
next pass). A request then crosses three passes (read, handled, its held
reply written by the link) instead of two. Bench-only, on demand
(``trio-yield``): does the third pass give trio asyncio's steadier service
at many connections? (``bench/results/hotpath/s24/README.md``.)

``python -m bench.trio_yield --strict NAME`` also keeps trio's run loop in
strict order, as ``bench.trio_noreverse`` does (``trio-yield-noreverse``):
asyncio's order of passes and of tasks within a pass, on trio.
"""

from __future__ import annotations

import socket
import sys

import trio

from trioherd.cli import main
from trioherd.stream import HerdStream, LeanStream, LeanStreams


class _YieldingStream(LeanStream):
    """A lean stream whose every read ends with a trip round the run loop."""

    __slots__ = ()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await super().receive_some(max_bytes)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return data


class YieldingStreams(LeanStreams):
    """Lean streams; accepted connections yield after each read."""

    def accepted(self, sock: socket.socket) -> HerdStream:
        return _YieldingStream(sock)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["--strict"]:
        import trio._core._run as trio_run

        from bench.trio_noreverse import _NeverReverse

        # unrolled_run reverses the batch when _r.random() < 0.5.
        trio_run._r = _NeverReverse()
        argv = argv[1:]
    sys.exit(main(argv, prog="python -m bench.trio_yield", streams=YieldingStreams()))
