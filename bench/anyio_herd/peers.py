"""Peer links on anyio: one long-lived sender task per neighbour.

Mirrors ``trioherd/peers.py``: the core's
:class:`~trioherd.core.link.LinkProtocol` decides, this module moves bytes
and keeps time::

    PeerLink.run                  connect, back off, reconnect, for ever
    └── link task group           while connected
        ├── _send                 drains what the link owes, batch by batch
        └── _watch                reads the neighbour's replies until EOF

The first hop of a flood does not wait for ``_send``: :meth:`PeerLink.push`
writes the batch straight to the link's raw socket when the link is idle.
anyio's streams have no non-blocking send, so ``push`` goes under them; it
may, because an anyio ``send`` returns only once the socket took all of it
(on asyncio: the transport's buffer limit is 0), so when no ``send`` is
under way nothing is queued that the raw write could overtake.
"""

from __future__ import annotations

import logging
import socket

import anyio
from anyio.abc import SocketAttribute, SocketStream

from bench.anyio_herd.stream import cause, close, receive, send_nowait
from trioherd.core.link import CONNECT_TIMEOUT, LinkClosed, LinkProtocol, LinkRejected
from trioherd.core.state import ServerState
from trioherd.logs import LineLog


class PeerLink:
    """The sender of location updates to one neighbour.

    Args:
        state: our server's state.
        peer: the neighbour's name.
        address: where the neighbour listens, ``(host, port)``.
        log: our server's logger.
        lines: where our server logs every line sent.
    """

    def __init__(
        self,
        state: ServerState,
        peer: str,
        address: tuple[str, int],
        log: logging.Logger,
        lines: LineLog,
    ) -> None:
        self.protocol = LinkProtocol(state, peer)
        self.peer = peer
        self.address = address
        self.log = log
        self.lines = lines
        # The link's socket under its stream, for push(); None while down.
        self._socket: socket.socket | None = None
        # Set while _send is inside send: nobody else may write then.
        self._sending = False
        # What push() could not write at once; _send writes it first.
        self._leftover = b""
        self._ready = anyio.Event()
        self._retry = anyio.Event()

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        return self._socket is not None

    def retry_now(self) -> None:
        """Cut the current backoff short: the neighbour is evidently up."""
        self._retry.set()

    def wake(self) -> None:
        """Have the sender send what the link owes when it next runs (if the link is up)."""
        if self.connected:
            self._ready.set()

    def push(self) -> None:
        """Send what the link owes now, if it can without waiting; else wake ``_send``.

        Never blocks and never raises: a failure is left for ``_send`` to
        meet, and the resync after reconnecting makes up for the loss.
        """
        sock = self._socket
        if sock is None:
            return
        if self._sending or self._leftover:
            self._ready.set()
            return
        batch = self.protocol.take()
        if not batch:
            return
        try:
            sent = send_nowait(sock, batch)
        except OSError:
            sent = 0
        self.lines.link_sent(self.peer, batch)
        if sent < len(batch):
            self._leftover = batch[sent:]
            self._ready.set()

    async def run(self) -> None:
        """Keep the link up for as long as the server runs."""
        protocol = self.protocol
        while True:
            try:
                stream = await self._connect()
            except OSError as exc:
                message, loud = protocol.cannot_connect(cause(exc))
                self.log.log(logging.INFO if loud else logging.DEBUG, "%s", message)
                await self._backoff()
                continue
            # A retry asked for before this connection is stale now.
            self._retry = anyio.Event()
            self.log.info("%s", protocol.connected_message(*self.address))
            try:
                try:
                    await stream.send(protocol.connected())
                    self._leftover = b""
                    self._socket = stream.extra(SocketAttribute.raw_socket)
                    async with anyio.create_task_group() as link:
                        link.start_soon(self._watch, stream)
                        await self._send(stream)
                finally:
                    self._socket = None
                    await close(stream)
            except* (
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                OSError,
                LinkRejected,
                LinkClosed,
            ) as group:
                message, error = protocol.dropped(cause(group.exceptions[0]))
                self.log.log(logging.ERROR if error else logging.WARNING, "%s", message)
            await self._backoff()

    async def _connect(self) -> SocketStream:
        host, port = self.address
        with anyio.move_on_after(CONNECT_TIMEOUT):
            return await anyio.connect_tcp(host, port)
        raise TimeoutError(f"no answer from {host}:{port} in {CONNECT_TIMEOUT:g} s")

    async def _send(self, stream: SocketStream) -> None:
        while True:
            while not self._leftover and not self.protocol.owes():
                self._ready = anyio.Event()
                await self._ready.wait()
            self._sending = True
            try:
                if self._leftover:
                    data, self._leftover = self._leftover, b""
                    await stream.send(data)
                else:
                    batch = self.protocol.take()
                    self.lines.link_sent(self.peer, batch)
                    await stream.send(batch)
            finally:
                self._sending = False

    async def _watch(self, stream: SocketStream) -> None:
        """Read the link until the neighbour closes it or rejects us (which raises)."""
        while True:
            for message in self.protocol.receive(await receive(stream)):
                self.log.warning("%s", message)
            # The neighbour's RESUME answer makes the catch-up owed.
            if self.protocol.owes():
                self._ready.set()

    async def _backoff(self) -> None:
        with anyio.move_on_after(self.protocol.backoff()):
            await self._retry.wait()
        self._retry = anyio.Event()
