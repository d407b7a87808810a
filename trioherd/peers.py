"""Peer links on trio: one long-lived sender task per neighbour.

A :class:`PeerLink` is this server's outbound connection to one neighbour.
It carries location updates one way, from us to them; the neighbour's own
link carries updates back. Its life is a plain loop (docs/peer-protocol.md):

1. connect, and send the handshake ``PEER <our name> 1``;
2. owe the neighbour our whole table (so a neighbour that restarted, or a
   link that was down, catches up), then stream whatever lands in the outbox,
   draining it in batches, one ``send_all`` per batch;
3. on any failure, log the drop, sleep a capped, jittered backoff, go to 1.

While connected, a second task reads the link: the neighbour sends nothing
but ``? ...`` for a line it rejected, and EOF when it goes away, which we
notice at once rather than at the next write. The backoff sleep ends early
when the neighbour links to us (:meth:`PeerLink.retry_now`), so a neighbour
that comes back is linked within moments.
"""

from __future__ import annotations

import logging
import random

import trio

from trioherd.core.messages import format_hello
from trioherd.core.state import ServerState
from trioherd.logs import show
from trioherd.stream import HerdStream, LeanStream, close_stream

#: Backoff between attempts: doubles from FIRST up to CAP, each sleep a
#: random 50-100% of that ("equal jitter"), so a herd restarting together does
#: not retry in lockstep.
BACKOFF_FIRST = 0.05
BACKOFF_CAP = 2.0
#: A connection attempt that neither succeeds nor fails by then is given up.
CONNECT_TIMEOUT = 5.0


class LinkRejected(Exception):
    """The neighbour answered our handshake with ``?``."""


class PeerLink:
    """The sender of location updates to one neighbour.

    Args:
        state: our server's state; the link drains ``state.outboxes[peer]``.
        peer: the neighbour's name.
        address: where the neighbour listens, ``(host, port)``.
        log: our server's logger.
        socket_streams: use :class:`trio.SocketStream` rather than
            :class:`~trioherd.stream.LeanStream` (for measurements).
    """

    def __init__(
        self,
        state: ServerState,
        peer: str,
        address: tuple[str, int],
        log: logging.Logger,
        *,
        socket_streams: bool = False,
    ) -> None:
        self.state = state
        self.socket_streams = socket_streams
        self.peer = peer
        self.address = address
        self.log = log
        self.connected = False
        self._outbox = state.outboxes[peer]
        self._outbox.wake = self._wake
        self._ready = trio.Event()
        self._retry = trio.Event()
        self._hello = format_hello(state.name.encode())

    def _wake(self) -> None:
        self._ready.set()

    def retry_now(self) -> None:
        """Cut the current backoff short: the neighbour is evidently up."""
        self._retry.set()

    async def run(self) -> None:
        """Keep the link up for as long as the server runs."""
        failures = 0
        while True:
            try:
                stream = await self._connect()
            except OSError as exc:
                failures += 1
                # Said once per outage, not at every attempt.
                level = logging.INFO if failures == 1 else logging.DEBUG
                self.log.log(level, "link to %s: cannot connect: %s", self.peer, _reason(exc))
                await self._backoff(failures)
                continue
            failures = 0
            # A retry asked for before this connection is stale now.
            self._retry = trio.Event()
            self.log.info("link to %s: connected to %s:%d", self.peer, *self.address)
            try:
                try:
                    await self._stream(stream)
                finally:
                    await close_stream(stream)
            except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
                self.log.warning("link to %s: dropped: %s", self.peer, _reason(group.exceptions[0]))
            except* LinkRejected as group:
                self.log.error("link to %s: rejected: %s", self.peer, group.exceptions[0])
            finally:
                self.connected = False
            await self._backoff(1)

    async def _connect(self) -> HerdStream:
        host, port = self.address
        with trio.move_on_after(CONNECT_TIMEOUT):
            stream = await trio.open_tcp_stream(host, port)
            return stream if self.socket_streams else LeanStream.take(stream)
        raise TimeoutError(f"no answer from {host}:{port} in {CONNECT_TIMEOUT:g} s")

    async def _stream(self, stream: HerdStream) -> None:
        await stream.send_all(self._hello)
        self.connected = True
        self.state.resync(self.peer)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch, stream, nursery.cancel_scope)
            while True:
                while not self._outbox:
                    self._ready = trio.Event()
                    await self._ready.wait()
                batch = self._outbox.take(self.state.table)
                if batch:
                    await stream.send_all(batch)
                    if self.log.isEnabledFor(logging.INFO):
                        for line in batch.splitlines():
                            self.log.info("link to %s > %s", self.peer, show(line))

    async def _watch(self, stream: HerdStream, link: trio.CancelScope) -> None:
        """Read the link until EOF: log what the neighbour rejected."""
        pending = b""
        while data := await stream.receive_some(4096):
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                if line.startswith(b"? PEER"):
                    raise LinkRejected(show(line))
                self.log.warning("link to %s < %s", self.peer, show(line))
            pending = pending[-4096:]
        self.log.warning("link to %s: closed by %s", self.peer, self.peer)
        link.cancel()

    async def _backoff(self, failures: int) -> None:
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(failures - 1, 16))
        with trio.move_on_after(delay * random.uniform(0.5, 1.0)):
            await self._retry.wait()
        self._retry = trio.Event()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
