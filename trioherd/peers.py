"""Peer links on trio: one long-lived sender task per neighbour.

A :class:`PeerLink` is this server's outbound connection to one neighbour.
It carries location updates one way, from us to them; the neighbour's own
link carries updates back. What the link says and when is decided by the
core's :class:`~trioherd.core.link.LinkProtocol`; this module moves its
bytes and keeps its time::

    PeerLink.run                  connect, back off, reconnect, for ever
    └── link nursery              while connected
        ├── _send                 drains what the link owes, batch by batch
        └── _watch                reads the neighbour's replies until EOF

The first hop of a flood goes on the wire before the client's reply: the
connection task that took the IAMAT calls :meth:`PeerLink.push`. If the
sender is idle, the record is written at once, from that task
(``LinkBase._write_now``); otherwise ``push`` wakes ``_send``, and the reply
is held (``serving.HeldReply``): once ``_send`` has written the batch
holding its record, it writes the reply too, and the connection's task
reads on meanwhile (on a TLS stream, which cannot write without waiting,
the task waits in :meth:`PeerLink.flushed` instead, then writes). Every
connection answering at the same moment waits for the same batch, so a
busy server sends about two writes per link per scheduler pass (the first
record at once, then one batch) instead of one send per record per link.
"""

from __future__ import annotations

import contextlib
import logging

import trio

from trioherd.core.link import (
    CONNECT_TIMEOUT,
    HANDSHAKE_TIMEOUT,
    LinkClosed,
    LinkProtocol,
    LinkRejected,
)
from trioherd.core.state import ServerState
from trioherd.logs import LineLog
from trioherd.serving import LinkBase
from trioherd.stream import LEAN_STREAMS, HerdStream, StreamFactory, close_stream


class PeerLink(LinkBase[trio.Event]):
    """The sender of location updates to one neighbour.

    Args:
        state: our server's state.
        peer: the neighbour's name.
        address: where the neighbour listens, ``(host, port)``.
        log: our server's logger.
        lines: where our server logs every line sent.
        streams: how to connect.
    """

    def __init__(
        self,
        state: ServerState,
        peer: str,
        address: tuple[str, int],
        log: logging.Logger,
        lines: LineLog,
        *,
        streams: StreamFactory = LEAN_STREAMS,
    ) -> None:
        self.protocol = LinkProtocol(state, peer)
        self.peer = peer
        self.address = address
        self.log = log
        self.lines = lines
        self._streams = streams
        self._stream: HerdStream | None = None
        self._ready = trio.Event()
        self._retry = trio.Event()
        # What a write at once (_send_now) left for the sender to finish.
        self._unsent = b""
        # Replies held back until their first hop is on the wire.
        self._waiting = trio.lowlevel.ParkingLot()

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        return self._stream is not None

    async def flushed(self, mark: int) -> None:
        """Wait until what was queued up to ``mark`` is on the wire (or given up)."""
        while self.protocol.on_wire < mark:
            await self._waiting.park()

    def _wake_waiting(self) -> None:
        if self._waiting:
            self._waiting.unpark_all()

    async def run(self) -> None:
        """Keep the link up for as long as the server runs."""
        protocol = self.protocol
        while True:
            try:
                stream = await self._connect()
            except OSError as exc:
                message, loud = protocol.cannot_connect(exc)
                self.log.log(logging.INFO if loud else logging.DEBUG, "%s", message)
                await self._backoff()
                continue
            # A retry asked for before this connection is stale now.
            self._retry = trio.Event()
            self.log.info("%s", protocol.connected_message(*self.address))
            try:
                try:
                    await stream.send_all(protocol.connected())
                    await self._handshake(stream)
                    self._unsent = b""
                    self._stream = stream
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._watch, stream)
                        await self._send(stream)
                finally:
                    self._stream = None
                    self._release()
                    await close_stream(stream)
            except* (
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                OSError,
                LinkRejected,
                LinkClosed,
            ) as group:
                message, error = protocol.dropped(group.exceptions[0])
                self.log.log(logging.ERROR if error else logging.WARNING, "%s", message)
            await self._backoff()

    async def _connect(self) -> HerdStream:
        host, port = self.address
        with trio.move_on_after(CONNECT_TIMEOUT):
            return await self._streams.connect(host, port)
        raise TimeoutError(f"no answer from {host}:{port} in {CONNECT_TIMEOUT:g} s")

    async def _handshake(self, stream: HerdStream) -> None:
        """Wait for the neighbour to prove it knows the herd secret, if there is one."""
        with trio.move_on_after(HANDSHAKE_TIMEOUT):
            while self.protocol.handshaking:
                for message in self.protocol.receive(await stream.receive_some(4096)):
                    self.log.warning("%s", message)
            return
        raise LinkRejected(f"no answer to the handshake in {HANDSHAKE_TIMEOUT:g} s")

    async def _send(self, stream: HerdStream) -> None:
        while True:
            if self._unsent:
                # What a write at once left goes before anything else.
                unsent, self._unsent = self._unsent, b""
                await stream.send_all(unsent)
            if not self.protocol.owes():
                self._go_idle(trio.Event())
                try:
                    await self._ready.wait()
                finally:
                    self._idle = False
                continue
            batch = self.protocol.take()
            taken = self.protocol.taken
            self.lines.link_sent(self.peer, batch)
            sent = stream.send_nowait(batch)
            if sent < len(batch):
                # The neighbour is slow: replies stop waiting for this link.
                self._release()
                await stream.send_all(memoryview(batch)[sent:])
            self._written(taken)
            if self.protocol.owes():
                # A resync is many batches: let the herd's other tasks run
                # between them (send_nowait is not a checkpoint).
                await trio.lowlevel.checkpoint()

    def _send_now(self, batch: bytes) -> bool:
        stream = self._stream
        sent = 0
        if stream is not None:
            # A broken link is the sender's to find (and resync).
            with contextlib.suppress(OSError):
                sent = stream.send_nowait(batch)
        if sent < len(batch):
            self._unsent = batch[sent:]
            return False
        return True

    async def _watch(self, stream: HerdStream) -> None:
        """Read the link until the neighbour closes it or rejects us (which raises)."""
        while True:
            for message in self.protocol.receive(await stream.receive_some(4096)):
                self.log.warning("%s", message)
            # The neighbour's RESUME answer makes the catch-up owed.
            if self.protocol.owes():
                self._ready.set()

    async def _backoff(self) -> None:
        with trio.move_on_after(self.protocol.backoff()):
            await self._retry.wait()
        self._retry = trio.Event()
