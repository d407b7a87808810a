"""One herd server on anyio: a listener, its connections and its peer links.

Mirrors ``trioherd/server.py`` line for line where anyio allows; the task
groups form the same tree as trio's nurseries::

    connections task group        one task per accepted connection
    └── front task group          what stops first on shutdown
        ├── _accept  × listeners  accepts, starts handlers in `connections`
        └── PeerLink.run  × N     one sender per neighbour

The listener is anyio's, one ``accept`` per connection: anyio has no way
to wait for a listening socket and take every connection waiting on it,
as trio's lean ``accept_batch`` does, short of dropping to raw sockets.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping, Sequence

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskGroup, TaskStatus

from bench.anyio_herd.peers import PeerLink
from bench.anyio_herd.stream import accept, cause, close, receive
from trioherd.core.connection import Connection, Exchange
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.places import PlacesSource
from trioherd.core.state import ServerState
from trioherd.logs import LineLog
from trioherd.server_base import ServerBase
from trioherd.serving import begin_exchange, finish_exchange

#: How long an answer already being worked on may take after shutdown begins.
SHUTDOWN_GRACE = 1.0


class HerdServer(ServerBase[PeerLink]):
    """A herd server: the state, the connections and the peer links.

    The limits and the herd secret are the defaults: this layer takes no
    options for them (and does not yet enforce issue 12's limits).

    The arguments are :class:`~trioherd.server_base.ServerBase`'s (it makes
    the links).
    """

    def __init__(
        self,
        name: str,
        peers: Mapping[str, tuple[str, int]],
        places: PlacesSource,
        log: logging.Logger,
        lines: LineLog,
        *,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        def new_link(state: ServerState, peer: str, address: tuple[str, int]) -> PeerLink:
            return PeerLink(state, peer, address, log, lines)

        super().__init__(name, peers, places, log, lines, new_link, max_line=max_line)
        self._stop = anyio.Event()
        self._idle_reads: set[anyio.CancelScope] = set()

    def stop(self) -> None:
        """Begin a graceful shutdown; :meth:`run` returns when it is done."""
        self._stop.set()

    async def run(
        self,
        sockets: Sequence[socket.socket],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve on ``sockets`` (bound, listening) until :meth:`stop` or cancellation.

        The sockets are ours from now on: closed when the server stops.
        """
        listeners = [await SocketListener.from_socket(sock) for sock in sockets]
        async with anyio.create_task_group() as connections:
            try:
                async with anyio.create_task_group() as front:
                    for listener in listeners:
                        front.start_soon(self._accept, listener, connections)
                    for link in self.links.values():
                        front.start_soon(link.run)
                    task_status.started()
                    await self._stop.wait()
                    self.log.info("shutting down")
                    front.cancel_scope.cancel()
            finally:
                # anyio's aclose is async: shielded, so a cancelled server
                # still closes its listeners.
                with anyio.CancelScope(shield=True):
                    for listener in listeners:
                        await listener.aclose()
            for scope in self._idle_reads:
                scope.cancel()
            connections.cancel_scope.deadline = anyio.current_time() + SHUTDOWN_GRACE
        self.log.info("stopped")

    async def _accept(self, listener: SocketListener, connections: TaskGroup) -> None:
        while True:
            stream = await accept(listener, self._cannot_accept)
            connections.start_soon(self._serve_connection, stream)

    async def _serve_connection(self, stream: SocketStream) -> None:
        conn = self._connection_name(_address(stream))
        self.log.info("%s: accepted", conn)
        try:
            try:
                await self._converse(stream, conn)
            finally:
                await close(stream)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.log.info("%s: dropped: %s", conn, cause(exc))
        except Exception:
            # A bug must cost one connection, never the server.
            self.log.exception("%s: internal error, connection closed", conn)

    async def _converse(self, stream: SocketStream, conn: str) -> None:
        connection = Connection(self.state, self.max_line)
        # As in trio: shutdown cancels this scope only while the task waits
        # for a read, never in the middle of an answer.
        with anyio.CancelScope() as idle:
            while not self._stop.is_set():
                self._idle_reads.add(idle)
                try:
                    data = await receive(stream)
                finally:
                    self._idle_reads.discard(idle)
                if idle.cancel_called:
                    # Shutdown came as the read completed: too late for it.
                    break
                connection.receive(data, time.time_ns())
                while (exchange := connection.next_exchange()) is not None:
                    await self._answer(stream, conn, exchange)
                if connection.finished:
                    break
        if connection.peer is not None:
            self.log.info("%s: link from %s closed", conn, connection.peer)
        else:
            self.log.info("%s: closed", conn)

    async def _answer(self, stream: SocketStream, conn: str, exchange: Exchange) -> None:
        """Carry out one exchange: floods, Places, the first hops out, then one write."""
        first_hops = begin_exchange(self.log, self.lines, self.links, conn, exchange)
        if exchange.queries:
            await self._ask_places(exchange)
        for link, mark in first_hops:
            await link.flushed(mark)
        if exchange.replies:
            await stream.send(finish_exchange(self.lines, conn, exchange))

    async def _ask_places(self, exchange: Exchange) -> None:
        """Ask Places for all of the exchange's WHATSATs at once."""
        async with anyio.create_task_group() as group:
            for slot, query in exchange.queries:
                group.start_soon(self._ask_one, exchange, slot, query)


def _address(stream: SocketStream) -> str:
    # anyio hands over a stream, not the address accept() returned: ask again.
    try:
        host, port, *_ = stream.extra(SocketAttribute.raw_socket).getpeername()
    except OSError:
        return "?"
    return f"{host}:{port}"
