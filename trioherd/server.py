"""One herd server on trio: a listener, its connections and its peer links.

The nursery tree is the picture of the server's lifetime::

    connections nursery           one task per accepted connection
    └── front nursery             what stops first on shutdown
        ├── _accept  × listeners  accepts, starts handlers in `connections`
        └── PeerLink.run  × N     one sender per neighbour

On shutdown the front nursery is cancelled (no new connections, links
closed), idle connections are closed at once, and connections in the middle
of an answer get a grace period to finish it.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Mapping, Sequence

import trio

from trioherd.core.connection import HEAVY_READ, Connection, Exchange
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.limits import DEFAULT_LIMITS, SEND_BUFFER, Limits
from trioherd.core.places import NearbyResponse, PlacesQuery, PlacesSource
from trioherd.core.state import ServerState
from trioherd.logs import LineLog
from trioherd.peers import PeerLink
from trioherd.server_base import ServerBase
from trioherd.serving import (
    HeldReply,
    begin_exchange,
    finish_exchange,
    hold_reply,
    places_problem,
)
from trioherd.stream import (
    LEAN_STREAMS,
    RECEIVE_SIZE,
    HerdStream,
    LeanStream,
    StreamFactory,
    accept_batch,
    close_stream,
)
from trioherd.turns import cpu_turn

#: How long an answer already being worked on may take after shutdown begins.
SHUTDOWN_GRACE = 1.0


class _Reader:
    """A connection's read scope, whether it waits for a read now, and its deadline.

    And the reply a link writes for it, if one is held (:class:`HeldReply`).
    """

    __slots__ = ("armed_ns", "held", "nudged", "reading", "scope", "settling")

    def __init__(self) -> None:
        self.reading = False
        self.scope = trio.CancelScope()
        #: The core's deadline the scope's stands for (POSIX ns); None: none.
        self.armed_ns: int | None = None
        #: The connection's reply held for its first hops, until written.
        self.held: HeldReply | None = None
        #: Set once the held reply settles, while the task waits for that.
        self.settling: trio.Event | None = None
        #: Whether the read was cut short to write what the link could not.
        self.nudged = False

    def settled(self, held: HeldReply) -> None:
        """The held reply settled (called from a link's task): wake the task if it must act."""
        if self.settling is not None:
            self.settling.set()
        elif held.rest and self.reading:
            # The socket did not take the whole reply, and the client may
            # wait for the rest before it says anything more: the read
            # stops, the task writes the rest (rare: a client that does not
            # read, or a broken socket).
            self.nudged = True
            self.scope.cancel()


class HerdServer(ServerBase[PeerLink]):
    """A herd server: the state, the connections and the peer links.

    The arguments are :class:`~trioherd.server_base.ServerBase`'s (it makes
    the links), and ``streams``: where connections' and links' streams come
    from.
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
        streams: StreamFactory = LEAN_STREAMS,
        limits: Limits = DEFAULT_LIMITS,
        secret: bytes | None = None,
    ) -> None:
        def new_link(state: ServerState, peer: str, address: tuple[str, int]) -> PeerLink:
            return PeerLink(state, peer, address, log, lines, streams=streams)

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
        self.streams = streams
        self._stop = trio.Event()
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
        listeners: Sequence[socket.socket],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve on ``listeners`` (bound, listening) until :meth:`stop` or cancellation.

        The listeners are ours from now on: closed when the server stops.
        """
        async with trio.open_nursery() as connections:
            try:
                async with trio.open_nursery() as front:
                    for listener in listeners:
                        front.start_soon(self._accept, listener, connections)
                    for link in self.links.values():
                        front.start_soon(link.run)
                    task_status.started()
                    await self._stop.wait()
                    self.log.info("shutting down")
                    front.cancel_scope.cancel()
            finally:
                # No accept task is left to wait on them: stop accepting now,
                # before the grace period, and on every way out.
                for listener in listeners:
                    listener.close()
            for reader in self._readers:
                if reader.reading:
                    reader.scope.cancel()
            connections.cancel_scope.deadline = trio.current_time() + SHUTDOWN_GRACE
        self.log.info("stopped")

    async def _accept(self, listener: socket.socket, connections: trio.Nursery) -> None:
        while True:
            for sock, address in await accept_batch(listener, self._cannot_accept):
                refused = self.admission.admit(address[0])
                if refused is None:
                    connections.start_soon(self._serve_connection, sock, address)
                else:
                    # Closed at once, and accepting goes on: a cap must
                    # never stall the listener for everyone else.
                    sock.close()
                    self._refuse(f"{address[0]}:{address[1]}", refused)

    async def _serve_connection(self, sock: socket.socket, address: tuple[str, int]) -> None:
        conn = self._connection_name(f"{address[0]}:{address[1]}")
        self.state.counters.connections_opened += 1
        self.log.info("%s: accepted", conn)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        stream = self.streams.accepted(sock)
        try:
            try:
                await self._converse(stream, conn)
            finally:
                self.state.counters.connections_closed += 1
                await close_stream(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.log.info("%s: dropped: %s", conn, exc.__cause__ or exc)
        except Exception:
            # A bug must cost one connection, never the server.
            self.log.exception("%s: internal error, connection closed", conn)
        finally:
            self.admission.release(address[0])

    async def _converse(self, stream: HerdStream, conn: str) -> None:
        connection = Connection(self.state, self.max_line, opened_ns=time.time_ns())
        reader = _Reader()
        self._readers.add(reader)
        try:
            why = await self._read_and_answer(stream, conn, connection, reader)
            # The last reply goes before the connection closes.
            await self._settle(stream, reader)
        finally:
            self._readers.discard(reader)
            if reader.held is not None:
                reader.held.abandon()
        if why is not None:
            self.log.info("%s: %s, closing", conn, why)
        if connection.peer is not None:
            self.log.info("%s: link from %s closed", conn, connection.peer)
        else:
            self.log.info("%s: closed", conn)

    async def _read_and_answer(
        self, stream: HerdStream, conn: str, connection: Connection, reader: _Reader
    ) -> str | None:
        """Read and answer until the connection ends; what timed out, if that is why.

        Shutdown cancels the reader's scope only while the task waits for a
        read (:attr:`_Reader.reading`), never in the middle of an answer. The
        scope's deadline is the core's read deadline (the idle timeout, or
        the deadline to finish a line), kept lazily: moving a trio deadline
        costs a heap push and a scope recalculation, and the idle deadline
        moves at every line. So the scope keeps an earlier deadline while
        the core's moves later; it is moved only when the core's comes
        sooner (a line begun) or the armed one is less than half a timeout
        away. When the scope fires early, a new one takes over and reading
        goes on. An answer thus always has half a timeout (150 s by
        default) before the scope could cut it; one that waits longer on a
        client that does not read its replies ends the connection as idle.
        One scope per stretch, not one per read: entering a trio cancel
        scope costs about as much as a schedule point.
        """
        data: bytes | None = None
        answering = False
        while not self._stop.is_set():
            with trio.CancelScope() as idle:
                reader.scope = idle
                reader.armed_ns = None
                while not self._stop.is_set():
                    if data is None:
                        if reader.held is not None and reader.held.settled:
                            await self._settle(stream, reader)
                        self._arm(reader, connection)
                        reader.reading = True
                        try:
                            data = await stream.receive_some(RECEIVE_SIZE)
                        finally:
                            reader.reading = False
                        if idle.cancel_called:
                            # The scope fired as the read completed: decided
                            # below, out of it, with what was read kept.
                            break
                    if len(data) > HEAVY_READ:
                        async with cpu_turn():
                            connection.receive(data, time.time_ns())
                    else:
                        connection.receive(data, time.time_ns())
                    data = None
                    exchange = connection.next_exchange()
                    if exchange is not None:
                        self._arm(reader, connection)
                        answering = True
                        while exchange is not None:
                            await self._answer(stream, conn, exchange, reader)
                            exchange = connection.next_exchange()
                        answering = False
                    if connection.finished:
                        return None
            if self._stop.is_set():
                # Shutdown: what a read brought as it came arrived too late,
                # as if a moment later.
                return None
            if reader.nudged:
                # Cut short by a held reply's rest (_Reader.settled), not
                # by a deadline: a new scope takes over.
                reader.nudged = False
                continue
            why = connection.timed_out(answering, time.time_ns())
            if why is not None:
                # What a read brought as the deadline came is too late.
                return why
            # Fired early (the core's deadline had moved on): a new scope
            # takes over, and what the read brought is answered in it.
        return None

    @staticmethod
    def _arm(reader: _Reader, connection: Connection) -> None:
        """Bring the scope's deadline no later than the core's, and not too near.

        Compared in the core's clock (POSIX nanoseconds), so that the usual
        case, a deadline that stays, reads no trio clock.
        """
        armed_ns = reader.armed_ns
        now_ns = time.time_ns()
        at_ns = connection.deadline_to_arm(armed_ns, now_ns)
        if at_ns == armed_ns:
            return
        if at_ns is None:
            reader.scope.deadline = math.inf
        else:
            reader.scope.deadline = trio.current_time() + (at_ns - now_ns) / 1e9
        reader.armed_ns = at_ns

    async def _answer(
        self, stream: HerdStream, conn: str, exchange: Exchange, reader: _Reader
    ) -> None:
        """Carry out one exchange: floods, Places, the first hops out, then one write.

        A reply that waits for first hops on a lean stream is held for the
        links to write (:class:`~trioherd.serving.HeldReply`), and the task
        goes on reading; on any other stream (TLS cannot write without
        waiting) the task waits for the links, then writes.
        """
        first_hops = begin_exchange(self.log, self.lines, self.links, conn, exchange)
        if exchange.queries:
            await self._ask_places(exchange)
        # The reply held before this one goes first.
        await self._settle(stream, reader)
        if not exchange.replies:
            return
        if first_hops and isinstance(stream, LeanStream):
            reader.held = hold_reply(
                first_hops, self.lines, conn, exchange, stream.send_nowait, reader.settled
            )
            if reader.held is not None:
                return
        else:
            for link, mark in first_hops:
                await link.flushed(mark)
        await stream.send_all(finish_exchange(self.lines, conn, exchange))

    @staticmethod
    async def _settle(stream: HerdStream, reader: _Reader) -> None:
        """Wait until the held reply, if any, is written; write what the link could not."""
        held = reader.held
        if held is None:
            return
        while not held.settled:
            reader.settling = trio.Event()
            try:
                await reader.settling.wait()
            finally:
                reader.settling = None
        reader.held = None
        if held.rest:
            await stream.send_all(held.rest)

    async def _ask_places(self, exchange: Exchange) -> None:
        """Answer the exchange's WHATSATs, each in a turn at the CPU (trioherd.turns).

        A source that waits for I/O is asked about them all at once, so the
        waits overlap; one that computes here is asked one at a time, so
        connections full of WHATSATs take turns in rotation.
        """
        if self.places.computed_here:
            for slot, query in exchange.queries:
                async with cpu_turn():
                    self._answer_one(exchange, slot, await self.places.nearby(query))
            return
        if len(exchange.queries) == 1:
            # The usual case, one WHATSAT: asked in this task. A nursery
            # and a child task for it cost two more trips round the run
            # loop and a cancel scope (bench/results/http/README.md,
            # "Run 3 and 4").
            await self._ask_one(exchange, *exchange.queries[0])
            return
        async with trio.open_nursery() as nursery:
            for slot, query in exchange.queries:
                nursery.start_soon(self._ask_one, exchange, slot, query)

    async def _ask_one(self, exchange: Exchange, slot: int, query: PlacesQuery) -> None:
        response = await self.places.nearby(query)
        async with cpu_turn():
            self._answer_one(exchange, slot, response)

    def _answer_one(self, exchange: Exchange, slot: int, response: NearbyResponse) -> None:
        places_problem(self.log, exchange.answer(slot, response))
