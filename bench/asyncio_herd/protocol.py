"""The asyncio herd on ``asyncio.Protocol``: asyncio at its fastest.

``asyncio.start_server`` gives each connection a task, a ``StreamReader``
and a ``StreamWriter``. The fastest asyncio servers skip all three: the
event loop calls a :class:`asyncio.Protocol`'s ``data_received`` with each
read, and the protocol writes with ``transport.write``, which sends at once
when it can. :class:`ProtocolHerdServer` serves clients that way, on the
same core :class:`~trioherd.core.connection.Connection` as every other
layer; peer links and everything else stay as in :mod:`.server`.

Only a WHATSAT has to wait for Places, so only an exchange with queries
becomes a task; an IAMAT's reply waits for its first hop to be on the wire
through a callback on the link's future. Reading is paused until an
exchange is written, which keeps replies in order and the connection's
backpressure. A full transport buffer pauses
reading too (``pause_writing``), as ``drain`` would.

Run it as ``python -m bench.asyncio_herd.protocol NAME``, with the options
of ``python -m bench.asyncio_herd`` (the bench's ``asyncio-protocol``
implementation).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from functools import partial

from bench.asyncio_herd.cli import main
from bench.asyncio_herd.peers import PeerLink
from bench.asyncio_herd.server import CLOSE_TIMEOUT, HerdServer
from trioherd.core.connection import Connection, Exchange
from trioherd.core.limits import SEND_BUFFER
from trioherd.serving import LISTEN_BACKLOG, begin_exchange, finish_exchange


class ProtocolHerdServer(HerdServer):
    """A herd server whose client connections are :class:`HerdProtocol` objects."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._protocols: set[HerdProtocol] = set()

    async def _listen(self, sock: socket.socket) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: HerdProtocol(self), sock=sock, backlog=LISTEN_BACKLOG, ssl=self.tls.server
        )

    async def _close_connections(self, grace: float) -> None:
        busy = []
        for protocol in list(self._protocols):
            if protocol.answering is None:
                protocol.close()
            else:
                busy.append(protocol.answering)
        if busy:
            await asyncio.wait(busy, timeout=grace)

    async def _abort_connections(self) -> None:
        for protocol in list(self._protocols):
            protocol.abort()


class HerdProtocol(asyncio.Protocol):
    """One client connection, driven by the event loop's callbacks."""

    def __init__(self, server: ProtocolHerdServer) -> None:
        self._server = server
        self._connection = Connection(server.state, server.max_line, opened_ns=time.time_ns())
        self._transport: asyncio.Transport | None = None
        self._conn = ""
        self._host: str | None = None  # set once admitted
        self._writing_paused = False
        # The idle timeout or line deadline, while reading.
        self._timer: asyncio.TimerHandle | None = None
        #: What the exchange being answered waits for (Places, in a task; or
        #: its first hop, a link's future), while there is one.
        self.answering: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        server = self._server
        host, port, *_ = transport.get_extra_info("peername") or ("?", 0)
        refused = server.admission.admit(host)
        if refused is not None:
            # As trio: closed at once, and the listener goes on accepting.
            transport.abort()
            server._refuse(f"{host}:{port}", refused)
            return
        self._transport = transport
        self._host = host
        self._conn = f"conn {next(server._connection_ids)} {host}:{port}"
        server._protocols.add(self)
        server.state.counters.connections_opened += 1
        server.log.info("%s: accepted", self._conn)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._connection.receive(data, time.time_ns())
        self._pump()
        self._arm()

    def _arm(self) -> None:
        """Start the read deadline anew: idle timeout or the line's deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing() or not transport.is_reading():
            return
        timeout = self._connection.read_timeout(time.time_ns())
        if timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(
                timeout[0], self._timed_out, timeout[1]
            )

    def _timed_out(self, why: str) -> None:
        self._server.log.info("%s: %s, closing", self._conn, why)
        self.close()

    def eof_received(self) -> bool:
        self._connection.receive(b"", time.time_ns())
        self._pump()
        # Keep the transport open to write the last replies; _pump closes it.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        server = self._server
        if self._host is None:
            return  # refused: never counted in
        server.admission.release(self._host)
        if self._timer is not None:
            self._timer.cancel()
        server._protocols.discard(self)
        server.state.counters.connections_closed += 1
        if self.answering is not None:
            self.answering.cancel()
        peer = self._connection.peer
        if exc is not None:
            server.log.info("%s: dropped: %s", self._conn, exc)
        elif peer is not None:
            server.log.info("%s: link from %s closed", self._conn, peer)
        else:
            server.log.info("%s: closed", self._conn)

    def pause_writing(self) -> None:
        # The client is not reading: stop reading it until it catches up.
        self._writing_paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._transport is not None and self.answering is None:
            self._transport.resume_reading()
            self._pump()
            self._arm()

    def close(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()
            # close() waits to flush, which for a client that does not read
            # is never: it gets a bounded time, then the transport is aborted.
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.abort)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _pump(self) -> None:
        """Answer what has been read, up to the first exchange that must wait."""
        transport = self._transport
        if transport is None or transport.is_closing() or self.answering is not None:
            return
        server = self._server
        while not self._writing_paused:
            exchange = self._connection.next_exchange()
            if exchange is None:
                break
            first_hops = begin_exchange(
                server.log, server.lines, server.links, self._conn, exchange
            )
            if exchange.queries:
                transport.pause_reading()
                self.answering = asyncio.get_running_loop().create_task(
                    self._answer(exchange, first_hops)
                )
                return
            if self._wait_for(first_hops, exchange):
                return
            if exchange.replies:
                transport.write(finish_exchange(server.lines, self._conn, exchange))
        if self._connection.finished:
            self.close()

    def _wait_for(self, first_hops: list[tuple[PeerLink, int]], exchange: Exchange) -> bool:
        """Hold the reply (and reading) until the first hops are on the wire.

        A callback on the links' futures rather than a task: an IAMAT stays
        taskless, which is what makes this the fastest asyncio idiom.

        Returns:
            Whether the reply waits.
        """
        for link, mark in first_hops:
            waiter = link.flushed_soon(mark)
            if waiter is not None:
                assert self._transport is not None
                self._transport.pause_reading()
                self.answering = waiter
                waiter.add_done_callback(partial(self._first_hop_out, first_hops, exchange))
                return True
        return False

    def _first_hop_out(
        self,
        first_hops: list[tuple[PeerLink, int]],
        exchange: Exchange,
        waiter: asyncio.Future[None],
    ) -> None:
        self.answering = None
        transport = self._transport
        if waiter.cancelled() or transport is None or transport.is_closing():
            return
        # A link wakes every waiting reply; this one's mark may be further.
        if not self._wait_for(first_hops, exchange):
            self._reply(exchange)

    async def _answer(self, exchange: Exchange, first_hops: list[tuple[PeerLink, int]]) -> None:
        transport = self._transport
        assert transport is not None
        try:
            await self._server._ask_places(exchange)
            for link, mark in first_hops:
                await link.flushed(mark)
        except Exception:
            # A bug must cost one connection, never the server.
            self._server.log.exception("%s: internal error, connection closed", self._conn)
            transport.abort()
            return
        finally:
            self.answering = None
        if not transport.is_closing():
            self._reply(exchange)

    def _reply(self, exchange: Exchange) -> None:
        """Write an exchange that waited, and go on reading (unless stopping)."""
        transport = self._transport
        assert transport is not None
        transport.write(finish_exchange(self._server.lines, self._conn, exchange))
        if self._server.stopping:
            # Shutdown came while the exchange waited: answer, read no more.
            self.close()
            return
        if not self._writing_paused:
            transport.resume_reading()
        self._pump()
        self._arm()


if __name__ == "__main__":
    sys.exit(main(server_class=ProtocolHerdServer, prog="python -m bench.asyncio_herd.protocol"))
