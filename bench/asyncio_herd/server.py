"""One herd server on asyncio: a listener, its connections and its peer links.

Mirrors ``trioherd/server.py``. The trio server's nursery tree gives it the
connection tasks' lifetimes for free; here ``asyncio.start_server`` starts a
task per connection that no TaskGroup owns, so this module keeps the set of
connection tasks itself, to close idle ones at shutdown, give busy ones a
grace period, and cancel the rest when the server is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence

from bench.asyncio_herd.peers import PeerLink
from bench.asyncio_herd.stream import LISTEN_BACKLOG, RECEIVE_SIZE, send_all
from trioherd.core.framing import DEFAULT_MAX_LINE, LineBuffer, LineTooLong
from trioherd.core.messages import invalid
from trioherd.core.places import PlacesQuery, PlacesSource, whatsat_reply
from trioherd.core.state import ServerState
from trioherd.logs import show, summary

SHUTDOWN_GRACE = 1.0


class HerdServer:
    """A herd server: the state, the connections and the peer links.

    Args:
        name: the server's name.
        peers: its neighbours' addresses, ``{name: (host, port)}``.
        places: where WHATSAT gets places.
        log: the server's logger.
        max_line: the longest line accepted from a connection.
    """

    def __init__(
        self,
        name: str,
        peers: Mapping[str, tuple[str, int]],
        places: PlacesSource,
        log: logging.Logger,
        *,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        self.name = name
        self.state = ServerState(name, peers)
        self.places = places
        self.log = log
        self.max_line = max_line
        self.links = {
            peer: PeerLink(self.state, peer, address, log) for peer, address in peers.items()
        }
        self._connection_ids = itertools.count(1)
        self._stop = asyncio.Event()
        # What a nursery would track for us: every connection task, and
        # which of them are waiting for a client that may never speak.
        self._connections: set[asyncio.Task[None]] = set()
        self._idle_reads: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        """Begin a graceful shutdown; :meth:`run` returns when it is done."""
        self._stop.set()

    async def run(
        self, sockets: Sequence[socket.socket], started: Callable[[], None] = lambda: None
    ) -> None:
        """Serve on ``sockets`` (already bound) until :meth:`stop` or cancellation."""
        listeners = [
            # start_server listens again, with a backlog of 100 unless told.
            await asyncio.start_server(self._serve_connection, sock=sock, backlog=LISTEN_BACKLOG)
            for sock in sockets
        ]
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
            for task in self._idle_reads:
                task.cancel()
            if self._connections:
                await asyncio.wait(self._connections, timeout=SHUTDOWN_GRACE)
        finally:
            for listener in listeners:
                listener.close()
            await self._cancel_connections()
        self.log.info("stopped")

    async def _cancel_connections(self) -> None:
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = f"conn {next(self._connection_ids)} {_address(writer)}"
        self.log.info("%s: accepted", conn)
        try:
            await self._converse(reader, writer, conn, task)
        except (ConnectionError, OSError) as exc:
            self.log.info("%s: dropped: %s", conn, exc)
        except Exception:
            self.log.exception("%s: internal error, connection closed", conn)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _converse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: str,
        task: asyncio.Task[None],
    ) -> None:
        buffer = LineBuffer(self.max_line)
        peer: str | None = None
        while not self._stop.is_set():
            self._idle_reads.add(task)
            try:
                data = await reader.read(RECEIVE_SIZE)
            except asyncio.CancelledError:
                # Cancelled while idle by a shutdown: a normal end. Any other
                # cancellation (the server itself cancelled) goes on up.
                if not self._stop.is_set():
                    raise
                break
            finally:
                self._idle_reads.discard(task)
            received_ns = time.time_ns()
            lines, too_long = buffer.receive(data)
            peer = await self._answer(writer, conn, lines, received_ns, peer, too_long)
            if not data or too_long:
                break
        if peer is not None:
            self.log.info("%s: link from %s closed", conn, peer)
        else:
            self.log.info("%s: closed", conn)

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        conn: str,
        lines: list[bytes],
        received_ns: int,
        peer: str | None,
        too_long: LineTooLong | None,
    ) -> str | None:
        """Answer one read's lines with one write; return who the connection is."""
        logging_lines = self.log.isEnabledFor(logging.INFO)
        if logging_lines:
            for line in lines:
                self.log.info("%s < %s", conn, show(line))
        answers = self.state.handle_lines(lines, received_ns, peer)
        replies = answers.replies
        if answers.joined is not None:
            self.log.info("%s: link from %s accepted", conn, answers.joined)
            # The neighbour is up: if our link to it is waiting, go now.
            self.links[answers.joined].retry_now()
        if too_long is not None:
            replies.append(invalid(too_long.prefix))
            self.log.warning("%s: line over %d bytes, closing", conn, self.max_line)
        if answers.queries:
            # As trio: all of a read's WHATSATs at once, replies in order.
            async with asyncio.TaskGroup() as group:
                for slot, query in answers.queries:
                    group.create_task(self._fill_places_reply(replies, slot, query))
        if replies:
            if logging_lines:
                for reply in replies:
                    self.log.info("%s > %s", conn, summary(reply))
            await send_all(writer, b"".join(replies))
        return answers.peer

    async def _fill_places_reply(self, replies: list[bytes], slot: int, query: PlacesQuery) -> None:
        response = await self.places.nearby(query)
        status = response.get("status")
        if status not in ("OK", "ZERO_RESULTS"):
            self.log.warning("places: %s: %s", status, response.get("error_message", ""))
        replies[slot] = whatsat_reply(query.at_line, response, query.bound)


def _address(writer: asyncio.StreamWriter) -> str:
    peername = writer.get_extra_info("peername")
    if not peername:
        return "?"
    host, port, *_ = peername
    return f"{host}:{port}"
