"""Peer links on anyio: one long-lived sender task per neighbour.

Mirrors ``trioherd/peers.py``: the core's
:class:`~trioherd.core.link.LinkProtocol` decides, this module moves bytes
and keeps time::

    PeerLink.run                  connect, back off, reconnect, for ever
    └── link task group           while connected
        ├── _send                 drains what the link owes, batch by batch
        └── _watch                reads the neighbour's replies until EOF

The first hop of a flood goes on the wire before the client's reply: the
connection task calls :meth:`PeerLink.push`, which wakes ``_send``, and
waits in :meth:`PeerLink.flushed` until ``_send`` has written the batch
holding its record. ``_send`` writes each batch straight to the link's raw
socket first (anyio's streams have no non-blocking send) and gives the
stream only what the socket did not take; it may, because it is the link's
only writer and an anyio ``send`` returns only once all of it is written.
"""

from __future__ import annotations

import contextlib
import logging
import socket

import anyio
import anyio.lowlevel
from anyio.abc import SocketAttribute, SocketStream

from bench.anyio_herd.stream import cause, close, receive, send_nowait
from trioherd.core.link import (
    CONNECT_TIMEOUT,
    HANDSHAKE_TIMEOUT,
    LinkClosed,
    LinkProtocol,
    LinkRejected,
)
from trioherd.core.state import ServerState
from trioherd.logs import LineLog
from trioherd.serving import LinkBase, limit_unacknowledged


class PeerLink(LinkBase[anyio.Event]):
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
        self._ready = anyio.Event()
        self._retry = anyio.Event()
        # What a write at once (_send_now) left for the sender to finish.
        self._unsent = b""
        # Set when a batch is on the wire: replies waiting for a first hop look again.
        self._out = anyio.Event()

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        return self._socket is not None

    async def flushed(self, mark: int) -> None:
        """Wait until what was queued up to ``mark`` is on the wire (or given up)."""
        while self.protocol.on_wire < mark:
            await self._out.wait()

    def _wake_waiting(self) -> None:
        self._out.set()
        self._out = anyio.Event()

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
                    await self._handshake(stream)
                    self._unsent = b""
                    self._socket = stream.extra(SocketAttribute.raw_socket)
                    async with anyio.create_task_group() as link:
                        link.start_soon(self._watch, stream)
                        await self._send(stream)
                finally:
                    self._socket = None
                    self._release()
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
            stream = await anyio.connect_tcp(host, port)
            limit_unacknowledged(stream.extra(SocketAttribute.raw_socket))
            return stream
        raise TimeoutError(f"no answer from {host}:{port} in {CONNECT_TIMEOUT:g} s")

    async def _handshake(self, stream: SocketStream) -> None:
        """Wait for the neighbour to prove it knows the herd secret, if there is one."""
        with anyio.move_on_after(HANDSHAKE_TIMEOUT):
            while self.protocol.handshaking:
                for message in self.protocol.receive(await receive(stream)):
                    self.log.warning("%s", message)
            return
        raise LinkRejected(f"no answer to the handshake in {HANDSHAKE_TIMEOUT:g} s")

    async def _send(self, stream: SocketStream) -> None:
        sock = stream.extra(SocketAttribute.raw_socket)
        while True:
            if self._unsent:
                # What a write at once left goes before anything else.
                unsent, self._unsent = self._unsent, b""
                await stream.send(unsent)
            if not self.protocol.owes():
                self._go_idle(anyio.Event())
                try:
                    await self._ready.wait()
                finally:
                    self._idle = False
                continue
            batch = self.protocol.take()
            taken = self.protocol.taken
            self.lines.link_sent(self.peer, batch)
            sent = send_nowait(sock, batch)
            if sent < len(batch):
                # The neighbour is slow: replies stop waiting for this link.
                self._release()
                await stream.send(batch[sent:])
            self._written(taken)
            if self.protocol.owes():
                # A resync is many batches: let the other tasks run between them.
                await anyio.lowlevel.checkpoint()

    def _send_now(self, batch: bytes) -> bool:
        sent = 0
        if self._socket is not None:
            # A broken link is the sender's to find (and resync).
            with contextlib.suppress(OSError):
                sent = send_nowait(self._socket, batch)
        if sent < len(batch):
            self._unsent = batch[sent:]
            return False
        return True

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
