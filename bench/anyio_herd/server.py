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
import math
import socket
import time
from collections.abc import Mapping, Sequence

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskGroup, TaskStatus

from bench.anyio_herd.peers import PeerLink
from bench.anyio_herd.stream import accept, cause, close, receive
from trioherd.core.connection import Connection, Exchange
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.limits import DEFAULT_LIMITS, SEND_BUFFER, Limits
from trioherd.core.places import PlacesSource
from trioherd.core.state import ServerState
from trioherd.logs import LineLog
from trioherd.server_base import ServerBase
from trioherd.serving import begin_exchange, finish_exchange

#: How long an answer already being worked on may take after shutdown begins.
SHUTDOWN_GRACE = 1.0


class _Reader:
    """A connection's read scope, whether it waits for a read now, and its deadline."""

    __slots__ = ("armed_ns", "reading", "scope")

    def __init__(self) -> None:
        self.reading = False
        self.scope = anyio.CancelScope()
        #: The core's deadline the scope's stands for (POSIX ns); None: none.
        self.armed_ns: int | None = None

    def arm(self, connection: Connection) -> None:
        """Move the scope's deadline if the core's rule says so.

        Compared in the core's clock (POSIX nanoseconds), so that the usual
        case, a deadline that stays, reads no anyio clock.
        """
        now_ns = time.time_ns()
        at_ns = connection.deadline_to_arm(self.armed_ns, now_ns)
        if at_ns == self.armed_ns:
            return
        if at_ns is None:
            self.scope.deadline = math.inf
        else:
            self.scope.deadline = anyio.current_time() + (at_ns - now_ns) / 1e9
        self.armed_ns = at_ns


class HerdServer(ServerBase[PeerLink]):
    """A herd server: the state, the connections and the peer links.

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
        limits: Limits = DEFAULT_LIMITS,
        secret: bytes | None = None,
    ) -> None:
        def new_link(state: ServerState, peer: str, address: tuple[str, int]) -> PeerLink:
            return PeerLink(state, peer, address, log, lines)

        super().__init__(
            name,
            peers,
            places,
            log,
            lines,
            new_link,
            max_line=max_line,
            limits=limits,
            secret=secret,
        )
        self._stop = anyio.Event()
        self._readers: set[_Reader] = set()

    def stop(self) -> None:
        """Begin a graceful shutdown; :meth:`run` returns when it is done."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a shutdown has begun (no new connections are accepted)."""
        return self._stop.is_set()

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
            for reader in self._readers:
                if reader.reading:
                    reader.scope.cancel()
            connections.cancel_scope.deadline = anyio.current_time() + SHUTDOWN_GRACE
        self.log.info("stopped")

    async def _accept(self, listener: SocketListener, connections: TaskGroup) -> None:
        while True:
            stream = await accept(listener, self._cannot_accept)
            address = _address(stream)
            refused = self.admission.admit(address[0])
            if refused is None:
                connections.start_soon(self._serve_connection, stream, address)
            else:
                # Closed at once, and accepting goes on: a cap must
                # never stall the listener for everyone else.
                await close(stream)
                self._refuse(f"{address[0]}:{address[1]}", refused)

    async def _serve_connection(self, stream: SocketStream, address: tuple[str, int]) -> None:
        conn = self._connection_name(f"{address[0]}:{address[1]}")
        self.state.counters.connections_opened += 1
        self.log.info("%s: accepted", conn)
        try:
            try:
                # Through anyio's attribute: on asyncio the transport's socket.
                sock = stream.extra(SocketAttribute.raw_socket)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
                await self._converse(stream, conn)
            finally:
                self.state.counters.connections_closed += 1
                await close(stream)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.log.info("%s: dropped: %s", conn, cause(exc))
        except Exception:
            # A bug must cost one connection, never the server.
            self.log.exception("%s: internal error, connection closed", conn)
        finally:
            self.admission.release(address[0])

    async def _converse(self, stream: SocketStream, conn: str) -> None:
        connection = Connection(self.state, self.max_line, opened_ns=time.time_ns())
        reader = _Reader()
        self._readers.add(reader)
        try:
            why = await self._read_and_answer(stream, conn, connection, reader)
        finally:
            self._readers.discard(reader)
        if why is not None:
            self.log.info("%s: %s, closing", conn, why)
        if connection.peer is not None:
            self.log.info("%s: link from %s closed", conn, connection.peer)
        else:
            self.log.info("%s: closed", conn)

    async def _read_and_answer(
        self, stream: SocketStream, conn: str, connection: Connection, reader: _Reader
    ) -> str | None:
        """Read and answer until the connection ends; what timed out, if that is why.

        Shutdown cancels the reader's scope only while the task waits for a
        read (:attr:`_Reader.reading`), never in the middle of an answer.
        The scope's deadline is the core's read deadline (the idle timeout,
        or the deadline to finish a line), kept lazily
        (:meth:`~trioherd.core.connection.Connection.deadline_to_arm`):
        moving an anyio scope's deadline costs about 2 us on trio (a heap
        push under anyio's wrapper), and the idle deadline moves at every
        line. When the scope fires early, a new one takes over and reading
        goes on, with what the read brought kept. One scope per stretch,
        not one per read: entering and leaving an anyio scope costs more
        than moving its deadline twice.
        """
        data: bytes | None = None
        answering = False
        while not self._stop.is_set():
            with anyio.CancelScope() as idle:
                reader.scope = idle
                reader.armed_ns = None
                while not self._stop.is_set():
                    if data is None:
                        reader.arm(connection)
                        reader.reading = True
                        try:
                            data = await receive(stream)
                        finally:
                            reader.reading = False
                        if idle.cancel_called:
                            # The scope fired as the read completed: decided
                            # below, out of it, with what was read kept.
                            break
                    connection.receive(data, time.time_ns())
                    data = None
                    exchange = connection.next_exchange()
                    if exchange is not None:
                        reader.arm(connection)
                        answering = True
                        while exchange is not None:
                            await self._answer(stream, conn, exchange)
                            exchange = connection.next_exchange()
                        answering = False
                    if connection.finished:
                        return None
            if self._stop.is_set():
                # Shutdown: what a read brought as it came arrived too late.
                return None
            why = connection.timed_out(answering, time.time_ns())
            if why is not None:
                # What a read brought as the deadline came is too late.
                return why
            # Fired early (the core's deadline had moved on): a new scope
            # takes over, and what the read brought is answered in it.
        return None

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


def _address(stream: SocketStream) -> tuple[str, int]:
    # anyio hands over a stream, not the address accept() returned: ask again.
    try:
        host, port, *_ = stream.extra(SocketAttribute.raw_socket).getpeername()
    except OSError:
        return ("?", 0)
    return host, port
