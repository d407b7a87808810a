"""What every I/O layer does around an exchange, the same on every event loop.

Not protocol, so not in the core: these log, and call the layer's links.
But nothing here waits or knows an event loop, so the trio server and the
asyncio contrast (and any other layer) call the same two functions, before
and after the part that is theirs (asking Places, writing).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from trioherd.core.config import BindError, HerdConfig
from trioherd.core.connection import Exchange
from trioherd.core.link import UNACKNOWLEDGED_LIMIT, LinkProtocol
from trioherd.logs import LineLog

#: The listen backlog, as large as the kernel allows (trio's default too), so
#: every herd takes a burst of connections alike.
LISTEN_BACKLOG = socket.SOMAXCONN

Addresses = dict[str, tuple[str, int]]


def bind_herd(
    herd: HerdConfig, names: Sequence[str]
) -> tuple[dict[str, list[socket.socket]], Addresses]:
    """Listen for every server of ``names`` before any of them starts.

    Servers configured with port 0 (the OS picks) can still be linked to
    each other that way: a link uses the port a listener really got.

    Returns:
        Each server's listening sockets (non-blocking), and the address of
        every server of the herd with the real ports of those bound here.

    Raises:
        BindError: a server's address cannot be listened on (nothing is
            left bound).
    """
    listeners: dict[str, list[socket.socket]] = {}
    addresses = {s.name: (s.host, s.port) for s in herd.servers}
    try:
        for name in names:
            host, port = addresses[name]
            try:
                listener = socket.create_server((host, port), backlog=LISTEN_BACKLOG)
            except OSError as exc:
                raise BindError.from_os_error(host, port, exc) from None
            listener.setblocking(False)
            listeners[name] = [listener]
            addresses[name] = (host, listener.getsockname()[1])
    except BaseException:
        for bound in listeners.values():
            for listener in bound:
                listener.close()
        raise
    return listeners, addresses


class Server(Protocol):
    """What a herd runner needs of a layer's server."""

    log: logging.Logger
    lines: LineLog

    def stop(self) -> None:
        """Begin a graceful shutdown."""


ServerT = TypeVar("ServerT", bound=Server)


@dataclass(frozen=True)
class RunningHerd(Generic[ServerT]):
    """The servers a runner started, once every one is listening."""

    servers: dict[str, ServerT]
    addresses: Addresses

    def stop(self) -> None:
        """Begin a graceful stop of every server."""
        for server in self.servers.values():
            server.stop()

    def signalled(self, signum: int) -> None:
        """Say in every server's log which signal came, and stop them all."""
        for server in self.servers.values():
            server.lines.notice(f"received {signal.Signals(signum).name}: stopping")
        self.stop()

    def reopened_logs(self) -> None:
        """Say in every server's (new) log that SIGHUP reopened it."""
        for server in self.servers.values():
            server.lines.notice("received SIGHUP: log reopened")


def announce(
    lines: LineLog, name: str, address: tuple[str, int], peers: Sequence[str], places: str
) -> None:
    """The server's first log line: where it listens, its neighbours, its Places source.

    Written at every level: a log always shows when its server ran.
    """
    host, port = address
    lines.notice(
        f"{name} listening on {host}:{port}; peers {', '.join(peers) or 'none'}; places: {places}"
    )


class _Options(Protocol):
    """A socket, stdlib or trio: what setting an option needs."""

    def setsockopt(self, level: int, optname: int, value: int, /) -> None: ...


def limit_unacknowledged(sock: _Options) -> None:
    """Have the OS drop an outbound link whose bytes stay unacknowledged.

    After :data:`~trioherd.core.link.UNACKNOWLEDGED_LIMIT` seconds
    (``TCP_USER_TIMEOUT``; where the OS lacks it, the link waits on TCP's
    own retransmissions, as before).
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, int(UNACKNOWLEDGED_LIMIT * 1000))


class Link(Protocol):
    """What an exchange needs of a layer's outbound link."""

    def push(self) -> int | None:
        """A first hop was queued: have the sender send it now.

        Returns:
            The mark the client's reply waits for (the layer's link says
            when it is reached), or ``None`` if the reply need not wait.
        """

    def wake(self) -> None:
        """Have the link's sender send what is owed when it next runs."""

    def retry_now(self) -> None:
        """Cut the link's backoff short: the neighbour is evidently up."""


LinkT = TypeVar("LinkT", bound=Link)


class _Flag(Protocol):
    """What a link's wake-up events are on every loop: something to set."""

    def set(self) -> None: ...


FlagT = TypeVar("FlagT", bound=_Flag)


class LinkBase(Generic[FlagT]):
    """What every layer's outbound link does the same: wake, retry, hand over, release.

    A layer's link sets :attr:`protocol`, its events ``_ready`` (the sender's
    wake-up) and ``_retry`` (the backoff's), and says whether it is
    :attr:`connected` and how it wakes the replies waiting for their first
    hop (:meth:`_wake_waiting`).
    """

    protocol: LinkProtocol
    _ready: FlagT
    _retry: FlagT

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        raise NotImplementedError

    def retry_now(self) -> None:
        """Cut the current backoff short: the neighbour is evidently up."""
        self._retry.set()

    def wake(self) -> None:
        """Have the sender send what the link owes when it next runs (if the link is up)."""
        if self.connected:
            self._ready.set()

    def push(self) -> int | None:
        """A first hop was queued: wake the sender; the mark the reply waits for.

        ``None`` when the reply need not wait (the link is down or not ready).
        """
        if not self.connected:
            return None
        mark = self.protocol.hand_over()
        if mark is not None:
            self._ready.set()
        return mark

    def _written(self, taken: int) -> None:
        """The sender wrote the batches taken up to ``taken``."""
        self.protocol.written(taken)
        self._wake_waiting()

    def _release(self) -> None:
        """Replies stop waiting for this link: it backed up, dropped or owes nothing."""
        self.protocol.release()
        self._wake_waiting()

    def _wake_waiting(self) -> None:
        """Let the replies waiting for a first hop look at ``protocol.on_wire`` again."""
        raise NotImplementedError


def begin_exchange(
    log: logging.Logger,
    lines: LineLog,
    links: Mapping[str, LinkT],
    conn: str,
    exchange: Exchange,
) -> list[tuple[LinkT, int]]:
    """Before any reply: log the lines, hand the floods to the links.

    Returns:
        The links whose sender must have written the exchange's first hops
        before its reply is written, each with the mark to wait for.
    """
    lines.received(conn, exchange.received)
    first_hops: list[tuple[LinkT, int]] = []
    for peer in exchange.flooded:
        link = links[peer]
        if exchange.first_hop:
            mark = link.push()
            if mark is not None:
                first_hops.append((link, mark))
        else:
            # A later hop: no reply waits for it.
            link.wake()
    if exchange.joined is not None:
        log.info("%s: link from %s accepted", conn, exchange.joined)
        # The neighbour is up: if our link to it is waiting, go now.
        links[exchange.joined].retry_now()
    if exchange.too_long is not None:
        log.warning("%s: line over %d bytes, closing", conn, exchange.too_long)
    if exchange.refused is not None:
        log.error("%s: peer handshake refused: %s", conn, exchange.refused)
    return first_hops


def finish_exchange(lines: LineLog, conn: str, exchange: Exchange) -> bytes:
    """The exchange's replies, logged, as the one buffer to write."""
    lines.sent(conn, exchange.replies)
    return exchange.output()


def places_problem(log: logging.Logger, problem: str | None) -> None:
    """Log what went wrong with the Places source for one WHATSAT, if anything."""
    if problem is not None:
        log.warning("places: %s", problem)
