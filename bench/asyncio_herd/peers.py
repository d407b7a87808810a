"""Peer links on asyncio: one long-lived sender task per neighbour.

Mirrors ``trioherd/peers.py``: the core's
:class:`~trioherd.core.link.LinkProtocol` decides, this module moves bytes
and keeps time. What differs is how the watcher stops the sender when the
neighbour closes: trio cancels the link's nursery by raising, here the
TaskGroup does the same, and how a reply waits for its first hop: with a
future per waiting reply, since asyncio has no parking lot and a future
shared by several tasks would be cancelled with the first of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from ssl import SSLContext

from bench.asyncio_herd.stream import send_all
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


class PeerLink(LinkBase[asyncio.Event]):
    """The sender of location updates to one neighbour.

    Args:
        state: our server's state.
        peer: the neighbour's name.
        address: where the neighbour listens, ``(host, port)``.
        log: our server's logger.
        lines: where our server logs every line sent.
        ssl: TLS for the link, verifying the neighbour's certificate; ``None``: plain text.
    """

    def __init__(
        self,
        state: ServerState,
        peer: str,
        address: tuple[str, int],
        log: logging.Logger,
        lines: LineLog,
        *,
        ssl: SSLContext | None = None,
    ) -> None:
        self.protocol = LinkProtocol(state, peer)
        self._ssl = ssl
        self.peer = peer
        self.address = address
        self.log = log
        self.lines = lines
        self._writer: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._retry = asyncio.Event()
        # Replies held back until their first hop is on the wire.
        self._waiting: list[asyncio.Future[None]] = []

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        return self._writer is not None

    def flushed_soon(self, mark: int) -> asyncio.Future[None] | None:
        """A future done once what was queued up to ``mark`` is on the wire.

        ``None`` if it already is. Done early if the link backs up or drops.
        """
        if self.protocol.on_wire >= mark:
            return None
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        return waiter

    async def flushed(self, mark: int) -> None:
        """Wait until what was queued up to ``mark`` is on the wire (or given up)."""
        while (waiter := self.flushed_soon(mark)) is not None:
            await waiter

    def _wake_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(None)

    async def run(self) -> None:
        """Keep the link up until cancelled."""
        protocol = self.protocol
        while True:
            host, port = self.address
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(host, port, ssl=self._ssl)
                limit_unacknowledged(writer.get_extra_info("socket"))
            except (OSError, TimeoutError) as exc:
                message, loud = protocol.cannot_connect(exc)
                self.log.log(logging.INFO if loud else logging.DEBUG, "%s", message)
                await self._backoff()
                continue
            self._retry.clear()
            self.log.info("%s", protocol.connected_message(host, port))
            try:
                await send_all(writer, protocol.connected())
                await self._handshake(reader)
                self._writer = writer
                async with asyncio.TaskGroup() as link:
                    link.create_task(self._send(writer))
                    link.create_task(self._watch(reader))
            except* (OSError, LinkRejected, LinkClosed) as group:
                message, error = protocol.dropped(group.exceptions[0])
                self.log.log(logging.ERROR if error else logging.WARNING, "%s", message)
            finally:
                self._writer = None
                self._release()
                writer.close()
                # The transport is closed either way; waiting for it must not
                # raise (the peer may have reset) nor hang a cancellation.
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            await self._backoff()

    async def _handshake(self, reader: asyncio.StreamReader) -> None:
        """Wait for the neighbour to prove it knows the herd secret, if there is one."""
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                while self.protocol.handshaking:
                    for message in self.protocol.receive(await reader.read(4096)):
                        self.log.warning("%s", message)
        except TimeoutError:
            raise LinkRejected(f"no answer to the handshake in {HANDSHAKE_TIMEOUT:g} s") from None

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        while True:
            while not self.protocol.owes():
                self._ready.clear()
                self._go_idle(self._ready)
                try:
                    await self._ready.wait()
                finally:
                    self._idle = False
                if transport.get_write_buffer_size():
                    # A write at once backed up: finish it first.
                    await writer.drain()
            batch = self.protocol.take()
            taken = self.protocol.taken
            self.lines.link_sent(self.peer, batch)
            if writer.is_closing():
                raise ConnectionResetError("link closed")
            # An idle transport sends at once and buffers only the rest.
            writer.write(batch)
            if transport.get_write_buffer_size():
                # The neighbour is slow: replies stop waiting for this link.
                self._release()
                await writer.drain()
            self._written(taken)
            if self.protocol.owes():
                # A resync is many batches: let the other tasks run between them.
                await asyncio.sleep(0)

    def _send_now(self, batch: bytes) -> bool:
        writer = self._writer
        if writer is None or writer.is_closing():
            return False
        # An idle transport sends at once and keeps the rest in order; a
        # broken link is the sender's to find (and resync).
        with contextlib.suppress(OSError):
            writer.write(batch)
        return not writer.transport.get_write_buffer_size()

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        """Read the link until the neighbour closes it or rejects us (which raises)."""
        while True:
            for message in self.protocol.receive(await reader.read(4096)):
                self.log.warning("%s", message)
            # The neighbour's RESUME answer makes the catch-up owed.
            if self.protocol.owes():
                self._ready.set()

    async def _backoff(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.protocol.backoff()):
                await self._retry.wait()
        self._retry.clear()
