"""One herd server on asyncio: a listener, its connections and its peer links.

Mirrors ``trioherd/server.py``. The trio server's nursery tree gives it the
connection tasks' lifetimes for free; here ``asyncio.start_server`` starts a
task per connection that no TaskGroup owns, so this module keeps the set of
connection tasks itself, to close idle ones at shutdown, give busy ones a
grace period, and cancel the rest when the server is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence

from bench.asyncio_herd.peers import PeerLink
from bench.asyncio_herd.stream import RECEIVE_SIZE, send_all
from bench.asyncio_herd.turns import cpu_turn
from trioherd.core.connection import HEAVY_READ, Connection, Exchange
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.limits import DEFAULT_LIMITS, SEND_BUFFER, Limits
from trioherd.core.places import NearbyResponse, PlacesQuery, PlacesSource
from trioherd.core.state import ServerState
from trioherd.core.tls import PLAIN, TlsContexts
from trioherd.logs import LineLog
from trioherd.server_base import ServerBase
from trioherd.serving import (
    LISTEN_BACKLOG,
    HeldReply,
    begin_exchange,
    finish_exchange,
    hold_reply,
    places_problem,
)

SHUTDOWN_GRACE = 1.0
#: How long a closed connection may take to flush its last replies before
#: it is aborted: a client that never reads must not hold it for ever.
CLOSE_TIMEOUT = 5.0


class _Held:
    """A connection's reply held for its links to write (HeldReply), as the trio server's."""

    __slots__ = ("reply", "settling", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.reply: HeldReply | None = None
        #: Done once the reply settles, while the task waits for that.
        self.settling: asyncio.Future[None] | None = None

    def send(self, data: bytes) -> int:
        """Hand ``data`` to the transport, which sends at once and buffers the rest."""
        if self.writer.is_closing():
            # The task's own write meets the closed connection.
            return 0
        self.writer.write(data)
        return len(data)

    def settled(self, reply: HeldReply) -> None:
        """The held reply settled (from a link's task): wake the task if it waits.

        The transport takes a whole reply, so nothing is left for the task
        unless the connection is closing, and then its read ends anyway; the
        task drains the transport before its next answer (:meth:`settle`).
        """
        if self.settling is not None and not self.settling.done():
            self.settling.set_result(None)

    async def settle(self) -> None:
        """Wait until the held reply, if any, is written; write what the link could not."""
        reply = self.reply
        if reply is None:
            return
        while not reply.settled:
            self.settling = asyncio.get_running_loop().create_future()
            try:
                await self.settling
            finally:
                self.settling = None
        self.reply = None
        # Also when the link wrote it all: the transport took it whatever
        # its buffer held, and the drain is what stops a client that never
        # reads from being read on (a reply the task writes itself drains
        # the same way).
        await send_all(self.writer, reply.rest)


class HerdServer(ServerBase[PeerLink]):
    """A herd server: the state, the connections and the peer links.

    The arguments are :class:`~trioherd.server_base.ServerBase`'s (it makes
    the links), and ``tls``: TLS for accepted connections and for our links
    (core/tls.py).
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
        tls: TlsContexts = PLAIN,
    ) -> None:
        def new_link(state: ServerState, peer: str, address: tuple[str, int]) -> PeerLink:
            return PeerLink(state, peer, address, log, lines, ssl=tls.links)

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
        self.tls = tls
        self._stop = asyncio.Event()
        # What a nursery would track for us: every connection task, and
        # which of them are waiting for a client that may never speak.
        self._connections: set[asyncio.Task[None]] = set()
        self._idle_reads: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        """Begin a graceful shutdown; :meth:`run` returns when it is done."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a shutdown has begun."""
        return self._stop.is_set()

    async def run(
        self, sockets: Sequence[socket.socket], started: Callable[[], None] = lambda: None
    ) -> None:
        """Serve on ``sockets`` (already bound) until :meth:`stop` or cancellation."""
        listeners = [await self._listen(sock) for sock in sockets]
        try:
            async with asyncio.TaskGroup() as front:
                links = [front.create_task(link.run()) for link in self.links.values()]
                started()
                await self._stop.wait()
                self.log.info("shutting down")
                for listener in listeners:
                    listener.close()
                for task in links:
                    task.cancel()
            await self._close_connections(SHUTDOWN_GRACE)
        finally:
            for listener in listeners:
                listener.close()
            await self._abort_connections()
        self.log.info("stopped")

    async def _listen(self, sock: socket.socket) -> asyncio.Server:
        # start_server listens again, with a backlog of 100 unless told.
        return await asyncio.start_server(
            self._serve_connection, sock=sock, backlog=LISTEN_BACKLOG, ssl=self.tls.server
        )

    async def _close_connections(self, grace: float) -> None:
        """Close idle connections now; give busy ones ``grace`` seconds."""
        for task in self._idle_reads:
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=grace)

    async def _abort_connections(self) -> None:
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        host = _host(writer)
        refused = self.admission.admit(host)
        if refused is not None:
            # As trio: closed at once, and the listener goes on accepting.
            writer.transport.abort()
            self._refuse(_address(writer), refused)
            return
        self._connections.add(task)
        self.state.counters.connections_opened += 1
        conn = self._connection_name(_address(writer))
        self.log.info("%s: accepted", conn)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        try:
            await self._converse(reader, writer, conn, task)
        except (ConnectionError, OSError) as exc:
            self.log.info("%s: dropped: %s", conn, exc)
        except Exception:
            self.log.exception("%s: internal error, connection closed", conn)
        finally:
            self._connections.discard(task)
            self.state.counters.connections_closed += 1
            self.admission.release(host)
            await self._close(writer)

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        # wait_closed waits until the transport has flushed what it holds,
        # which for a client that does not read is never: it gets a bounded
        # time (none once the server is stopping), then the transport is
        # aborted. Trio's close is synchronous and has no such wait.
        writer.close()
        try:
            async with asyncio.timeout(0 if self._stop.is_set() else CLOSE_TIMEOUT):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            writer.transport.abort()
        except BaseException:
            writer.transport.abort()
            raise

    async def _converse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: str,
        task: asyncio.Task[None],
    ) -> None:
        connection = Connection(self.state, self.max_line, opened_ns=time.time_ns())
        held = _Held(writer)
        try:
            await self._read_and_answer(reader, writer, conn, task, connection, held)
            # The last reply goes before the connection closes.
            await held.settle()
        finally:
            if held.reply is not None:
                held.reply.abandon()
        if connection.peer is not None:
            self.log.info("%s: link from %s closed", conn, connection.peer)
        else:
            self.log.info("%s: closed", conn)

    async def _read_and_answer(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: str,
        task: asyncio.Task[None],
        connection: Connection,
        held: _Held,
    ) -> None:
        while not self._stop.is_set():
            if held.reply is not None and held.reply.settled:
                await held.settle()
            timeout = connection.read_timeout(time.time_ns())
            self._idle_reads.add(task)
            try:
                # The idle timeout, or the deadline to finish a line.
                async with asyncio.timeout(None if timeout is None else timeout[0]):
                    data = await reader.read(RECEIVE_SIZE)
            except asyncio.CancelledError:
                # Cancelled while idle by a shutdown: a normal end. Any other
                # cancellation (the server itself cancelled) goes on up.
                if not self._stop.is_set():
                    raise
                break
            except TimeoutError:
                assert timeout is not None
                self.log.info("%s: %s, closing", conn, timeout[1])
                break
            finally:
                self._idle_reads.discard(task)
            if len(data) > HEAVY_READ:
                async with cpu_turn():
                    connection.receive(data, time.time_ns())
            else:
                connection.receive(data, time.time_ns())
            while (exchange := connection.next_exchange()) is not None:
                await self._answer(writer, conn, exchange, held)
            if connection.finished:
                break

    async def _answer(
        self, writer: asyncio.StreamWriter, conn: str, exchange: Exchange, held: _Held
    ) -> None:
        """Carry out one exchange: floods, Places, the first hops out, then one write.

        A reply that waits for first hops is held for the links to write
        (trioherd.serving.HeldReply), and the task goes on reading.
        """
        first_hops = begin_exchange(self.log, self.lines, self.links, conn, exchange)
        if exchange.queries:
            await self._ask_places(exchange)
        # The reply held before this one goes first.
        await held.settle()
        if not exchange.replies:
            return
        if first_hops:
            held.reply = hold_reply(first_hops, self.lines, conn, exchange, held.send, held.settled)
            if held.reply is not None:
                return
        await send_all(writer, finish_exchange(self.lines, conn, exchange))

    async def _ask_places(self, exchange: Exchange) -> None:
        """Answer the exchange's WHATSATs, each in a turn at the CPU, as trio does."""
        if self.places.computed_here:
            for slot, query in exchange.queries:
                async with cpu_turn():
                    self._answer_one(exchange, slot, await self.places.nearby(query))
            return
        if len(exchange.queries) == 1:
            # One WHATSAT is asked in this task, as trio does.
            await self._ask_one(exchange, *exchange.queries[0])
            return
        async with asyncio.TaskGroup() as group:
            for slot, query in exchange.queries:
                group.create_task(self._ask_one(exchange, slot, query))

    async def _ask_one(self, exchange: Exchange, slot: int, query: PlacesQuery) -> None:
        response = await self.places.nearby(query)
        async with cpu_turn():
            self._answer_one(exchange, slot, response)

    def _answer_one(self, exchange: Exchange, slot: int, response: NearbyResponse) -> None:
        places_problem(self.log, exchange.answer(slot, response))


def _host(writer: asyncio.StreamWriter) -> str:
    peername = writer.get_extra_info("peername")
    return str(peername[0]) if peername else "?"


def _address(writer: asyncio.StreamWriter) -> str:
    peername = writer.get_extra_info("peername")
    if not peername:
        return "?"
    host, port, *_ = peername
    return f"{host}:{port}"
