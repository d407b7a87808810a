"""Peer links on asyncio: one long-lived sender task per neighbour.

Mirrors ``trioherd/peers.py``; the protocol is docs/peer-protocol.md. The
loop is the same (connect, handshake, resync, stream the outbox; on failure
log, back off, reconnect). What differs is how the watcher stops the sender
when the neighbour closes: trio cancels the link's cancel scope, asyncio
cancels the sender task by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from bench.asyncio_herd.stream import send_all
from trioherd.core.messages import format_hello
from trioherd.core.state import ServerState
from trioherd.logs import show

BACKOFF_FIRST = 0.05
BACKOFF_CAP = 2.0
CONNECT_TIMEOUT = 5.0


class LinkRejected(Exception):
    """The neighbour answered our handshake with ``?``."""


class PeerLink:
    """The sender of location updates to one neighbour.

    Args:
        state: our server's state; the link drains ``state.outboxes[peer]``.
        peer: the neighbour's name.
        address: where the neighbour listens, ``(host, port)``.
        log: our server's logger.
    """

    def __init__(
        self, state: ServerState, peer: str, address: tuple[str, int], log: logging.Logger
    ) -> None:
        self.state = state
        self.peer = peer
        self.address = address
        self.log = log
        self.connected = False
        self._outbox = state.outboxes[peer]
        self._ready = asyncio.Event()
        self._outbox.wake = self._ready.set
        self._retry = asyncio.Event()
        self._hello = format_hello(state.name.encode())

    def retry_now(self) -> None:
        """Cut the current backoff short: the neighbour is evidently up."""
        self._retry.set()

    async def run(self) -> None:
        """Keep the link up until cancelled."""
        failures = 0
        while True:
            host, port = self.address
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(host, port)
            except (OSError, TimeoutError) as exc:
                failures += 1
                level = logging.INFO if failures == 1 else logging.DEBUG
                self.log.log(level, "link to %s: cannot connect: %s", self.peer, _reason(exc))
                await self._backoff(failures)
                continue
            failures = 0
            self._retry.clear()
            self.log.info("link to %s: connected to %s:%d", self.peer, host, port)
            try:
                await self._stream(reader, writer)
            except* OSError as group:
                self.log.warning("link to %s: dropped: %s", self.peer, _reason(group.exceptions[0]))
            except* LinkRejected as group:
                self.log.error("link to %s: rejected: %s", self.peer, group.exceptions[0])
            finally:
                self.connected = False
                writer.close()
                # The transport is closed either way; waiting for it must not
                # raise (the peer may have reset) nor hang a cancellation.
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            await self._backoff(1)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await send_all(writer, self._hello)
        self.connected = True
        self.state.resync(self.peer)
        async with asyncio.TaskGroup() as link:
            sender = link.create_task(self._send(writer))
            link.create_task(self._watch(reader, sender))

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        while True:
            while not self._outbox:
                self._ready.clear()
                await self._ready.wait()
            batch = self._outbox.take(self.state.table)
            if batch:
                await send_all(writer, batch)
                if self.log.isEnabledFor(logging.INFO):
                    for line in batch.splitlines():
                        self.log.info("link to %s > %s", self.peer, show(line))

    async def _watch(self, reader: asyncio.StreamReader, sender: asyncio.Task[None]) -> None:
        """Read the link until EOF, then stop the sender."""
        pending = b""
        while data := await reader.read(4096):
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                if line.startswith(b"? PEER"):
                    raise LinkRejected(show(line))
                self.log.warning("link to %s < %s", self.peer, show(line))
            pending = pending[-4096:]
        self.log.warning("link to %s: closed by %s", self.peer, self.peer)
        # The TaskGroup would wait for the sender forever: stop it by hand.
        sender.cancel()

    async def _backoff(self, failures: int) -> None:
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(failures - 1, 16))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay * random.uniform(0.5, 1.0)):
                await self._retry.wait()
        self._retry.clear()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
