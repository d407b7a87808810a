"""Peer links on asyncio: one long-lived sender task per neighbour.

Mirrors ``trioherd/peers.py``: the core's
:class:`~trioherd.core.link.LinkProtocol` decides, this module moves bytes
and keeps time. What differs is how the watcher stops the sender when the
neighbour closes: trio cancels the link's nursery by raising, here the
TaskGroup does the same, and how :meth:`PeerLink.push` writes without
waiting: a transport's ``write`` sends at once when its buffer is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

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
        self._writer: asyncio.StreamWriter | None = None
        self._sending = False
        self._ready = asyncio.Event()
        self._retry = asyncio.Event()

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        return self._writer is not None

    def retry_now(self) -> None:
        """Cut the current backoff short: the neighbour is evidently up."""
        self._retry.set()

    def wake(self) -> None:
        """Have the sender send what the link owes when it next runs (if the link is up)."""
        if self.connected:
            self._ready.set()

    def push(self) -> None:
        """Send what the link owes now if its socket is idle; else wake the sender."""
        writer = self._writer
        if writer is None:
            return
        if self._sending or writer.is_closing() or writer.transport.get_write_buffer_size():
            self._ready.set()
            return
        batch = self.protocol.take()
        if batch:
            # An idle transport sends at once and buffers only the rest.
            writer.write(batch)
            self.lines.link_sent(self.peer, batch)

    async def run(self) -> None:
        """Keep the link up until cancelled."""
        protocol = self.protocol
        while True:
            host, port = self.address
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(host, port)
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
        while True:
            while not self.protocol.owes():
                self._ready.clear()
                await self._ready.wait()
            self._sending = True
            try:
                batch = self.protocol.take()
                self.lines.link_sent(self.peer, batch)
                # What push() wrote is ahead of this in the transport's buffer.
                await send_all(writer, batch)
            finally:
                self._sending = False

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
