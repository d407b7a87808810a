"""What every I/O layer does around an exchange, the same on every event loop.

Not protocol, so not in the core: these log, and call the layer's links.
But nothing here waits or knows an event loop, so the trio server and the
asyncio contrast (and any other layer) call the same two functions, before
and after the part that is theirs (asking Places, writing).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from trioherd.core.config import BindError, HerdConfig
from trioherd.core.connection import Exchange
from trioherd.core.limits import Limits
from trioherd.core.link import UNACKNOWLEDGED_LIMIT, LinkProtocol
from trioherd.logs import HerdLogs, LineLog
from trioherd.watchdog import exit_after, open_door_warning

#: The listen backlog, as large as the kernel allows (trio's default too), so
#: every herd takes a burst of connections alike.
LISTEN_BACKLOG = socket.SOMAXCONN

Addresses = dict[str, tuple[str, int]]

#: Tracked allocations per connection allowed to outrun deallocations
#: before CPython collects its youngest generation (see
#: :func:`size_young_generation`): twice what an event loop holds per
#: connection woken at once, with as much again to spare.
YOUNG_PER_CONNECTION = 4
#: CPython's own young-generation threshold, the least a server keeps.
CPYTHON_YOUNG_THRESHOLD = 700
#: The most the young generation's threshold is raised to: cyclic garbage
#: (a dropped connection's exception and its frames) waits for at most this
#: many net allocations, a few megabytes.
YOUNG_THRESHOLD_CAP = 100_000


def size_young_generation(limits: Limits) -> int:
    """Size CPython's youngest generation to the connections a server may hold.

    CPython collects its youngest generation each time tracked allocations
    outrun deallocations by 700. A pass of an event loop that wakes many
    connections at once gets there by itself: trio holds two tracked objects
    per woken task until the task runs, so a pass that wakes 350 collects.
    And at that moment the young generation holds the suspended state of
    every connection that waited since the last collection (its coroutines,
    closures and waiters, about 26 objects each), none of it garbage: at
    1,000 connections 10,000-26,000 objects, 7-20 ms per collection, 15-17%
    of a busy server's time, and every such pause stretches a pass for every
    connection in it (``python -m bench.pass_trace``, README in
    ``bench/results/hotpath/s24/``). A threshold above what a pass waking
    every connection holds leaves collections to garbage that really
    accumulates, which a server rarely makes.

    Every herd's command line calls this before its loop starts, so the
    comparison between loops stays like for like.

    Returns:
        The young generation's new threshold.
    """
    wanted = YOUNG_PER_CONNECTION * limits.max_connections or YOUNG_THRESHOLD_CAP
    threshold = max(CPYTHON_YOUNG_THRESHOLD, min(wanted, YOUNG_THRESHOLD_CAP))
    gc.set_threshold(threshold, *gc.get_threshold()[1:])
    return threshold


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

    def say_listening(self, logs: HerdLogs) -> None:
        """Tell the operator, on standard error, where each server listens and logs."""
        for name, (host, port) in self.addresses.items():
            print(
                f"{name} listening on {host}:{port}, log {logs.log_dir / name}.log",
                file=sys.stderr,
                flush=True,
            )

    def on_signal(self, signum: int, logs: HerdLogs, grace: float) -> bool:
        """What a caught signal does, on every loop; whether the herd now stops.

        SIGHUP reopens the log files (logrotate has moved them). Any other
        signal stops every server gracefully, and ends the process soon
        after ``grace`` whatever clients do.
        """
        if signum == signal.SIGHUP:
            logs.reopen()
            self.reopened_logs()
            return False
        exit_after(grace + 0.5)
        self.signalled(signum)
        return True


def announce(
    server: Server,
    name: str,
    address: tuple[str, int],
    peers: Sequence[str],
    places: str,
    *,
    open_door: bool,
) -> None:
    """The server's first log line: where it listens, its neighbours, its Places source.

    Written at every level: a log always shows when its server ran. With
    ``open_door`` (no herd secret), a warning follows that anyone who can
    reach the port may join the herd.
    """
    host, port = address
    server.lines.notice(
        f"{name} listening on {host}:{port}; peers {', '.join(peers) or 'none'}; places: {places}"
    )
    if open_door:
        server.log.warning("%s", open_door_warning(host, port))


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

    A layer's link sets :attr:`protocol`, :attr:`peer`, :attr:`lines`, its
    events ``_ready`` (the sender's wake-up) and ``_retry`` (the
    backoff's), and says whether it is :attr:`connected` and how it wakes
    the replies waiting for their first hop (:meth:`_wake_waiting`).

    A link whose sender is idle writes what it owes at once, from the task
    that queued it (:meth:`_write_now`), once between two runs of its
    sender: on a quiet server a first hop is on the wire before the reply
    without a trip round the event loop, and every later hop goes on at
    once; on a busy one, the first record of a moment goes at once and
    the rest wait for the sender, which writes them in one batch. A layer
    opts in by calling :meth:`_go_idle` when its sender, owing nothing,
    starts to wait for work (and clearing :attr:`_idle` when it wakes), by
    giving :meth:`_send_now`, and by writing what that left unsent before
    anything else.
    """

    protocol: LinkProtocol
    peer: str
    lines: LineLog
    _ready: FlagT
    _retry: FlagT
    #: Whether the sender waits for work (nothing taken and unwritten).
    _idle = False
    #: Replies held for a first hop on this link (:meth:`hold`), with their marks.
    _held: list[tuple[int, HeldReply]] | None = None
    #: Whether a record was written at once since the sender last went idle.
    _wrote_now = False

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        raise NotImplementedError

    def retry_now(self) -> None:
        """Cut the current backoff short: the neighbour is evidently up."""
        self._retry.set()

    def wake(self) -> None:
        """Have the sender send what the link owes when it next runs (if the link is up).

        Written at once instead when the sender is idle (:meth:`_write_now`).
        """
        if self.connected and not self._write_now():
            self._ready.set()

    def push(self) -> int | None:
        """A first hop was queued: wake the sender; the mark the reply waits for.

        ``None`` when the reply need not wait: the link is down or not
        ready, or the record went on the wire at once (:meth:`_write_now`).
        """
        if not self.connected:
            return None
        mark = self.protocol.hand_over()
        if mark is None or self._write_now():
            return None
        self._ready.set()
        return mark

    def _write_now(self) -> bool:
        """Write what the link owes from the caller's task, if the sender is idle.

        Only once until the sender has run again (it is woken to mark that),
        so that a burst of records goes in one batch rather than one write
        each. The sender being idle, nothing of the link's is half written:
        the link's bytes keep their order.

        Returns:
            Whether what was owed is written or given up waiting for (the
            socket took part of it: the sender writes the rest, replies do
            not wait for it, as when the sender's own write backs up).
        """
        if not self._idle or self._wrote_now:
            return False
        self._wrote_now = True
        # The sender runs once more, to say when the next may go at once.
        self._ready.set()
        batch = self.protocol.take()
        taken = self.protocol.taken
        if batch:
            self.lines.link_sent(self.peer, batch)
            if not self._send_now(batch):
                self._release()
                return True
        self._written(taken)
        return True

    def _send_now(self, batch: bytes) -> bool:
        """Write ``batch`` without waiting; whether the socket took all of it.

        What it did not take, the layer keeps, and its sender writes that
        before anything else. Never raises: a broken link is the sender's to
        find.
        """
        raise NotImplementedError

    def hold(self, mark: int, reply: HeldReply) -> None:
        """Have ``reply`` told when what was queued up to ``mark`` is on the wire.

        Told from the task that writes it (or gives up waiting for it), the
        link's sender as a rule: see :class:`HeldReply`.
        """
        if self._held is None:
            self._held = []
        self._held.append((mark, reply))

    def _written(self, taken: int) -> None:
        """The sender wrote the batches taken up to ``taken``."""
        self.protocol.written(taken)
        self._write_held()
        self._wake_waiting()

    def _write_held(self) -> None:
        """Tell the held replies whose first hop is on the wire (or given up)."""
        held = self._held
        if not held:
            return
        on_wire = self.protocol.on_wire
        self._held = []
        for mark, reply in held:
            if mark <= on_wire:
                reply.first_hop_out()
            else:
                self._held.append((mark, reply))

    def _go_idle(self, ready: FlagT) -> None:
        """The sender owes nothing and waits on ``ready`` (its new wake-up).

        No reply may wait for this link now, and the next record may go at
        once (:meth:`_write_now`). The layer then waits on :attr:`_ready`
        and clears :attr:`_idle` when it wakes.
        """
        self._release()
        self._wrote_now = False
        self._ready = ready
        self._idle = True

    def _release(self) -> None:
        """Replies stop waiting for this link: it backed up, dropped or owes nothing."""
        self.protocol.release()
        self._write_held()
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


class HeldReply:
    """A client's reply held until its first hops are on the wire, then written by a link.

    Under load a link's sender writes one batch per loop pass with the
    first hops of every connection answering at that moment. Rather than
    wake each of those connections' tasks to write its own reply (a task
    step and one more loop pass per reply), the link that writes the last
    of a reply's first hops writes the reply too, without waiting, and the
    connection's task goes on reading meanwhile.

    A connection keeps its bytes in order by holding one reply at a time
    and writing nothing else while it is held: before anything else is
    written on the connection, and before it is closed, its task waits
    until the reply is :attr:`settled` and writes the :attr:`rest` the
    socket did not take at once (a client that does not read, or a broken
    socket, whose error the task then meets as with any write). A link
    never waits for a client's socket and never sees its errors.

    Args:
        lines: where the server logs the reply as sent.
        conn: the connection's name in the log.
        exchange: the exchange the reply is made of, when it is written.
        send: writes what the client's socket takes now; how many bytes.
            Never waits; may raise :class:`OSError` (the connection is broken).
        settled: called (from the link's task) once the reply is settled.
        hops: how many links' first hops the reply waits for.
    """

    __slots__ = ("_conn", "_exchange", "_hops", "_lines", "_send", "_settled", "rest", "settled")

    def __init__(
        self,
        lines: LineLog,
        conn: str,
        exchange: Exchange,
        send: Callable[[bytes], int],
        settled: Callable[[HeldReply], None],
        hops: int,
    ) -> None:
        self._lines = lines
        self._conn = conn
        self._exchange = exchange
        self._send = send
        self._settled = settled
        self._hops = hops
        #: Whether the reply was written, given to :attr:`rest`, or abandoned.
        self.settled = False
        #: What the connection's task must still write, in order, once settled.
        self.rest = b""

    def first_hop_out(self) -> None:
        """One link wrote the reply's first hop (or gave up waiting for it)."""
        self._hops -= 1
        if self._hops > 0 or self.settled:
            return
        self.settled = True
        data = finish_exchange(self._lines, self._conn, self._exchange)
        try:
            sent = self._send(data)
        except OSError:
            # The connection's task meets the error when it writes the rest.
            sent = 0
        self.rest = data[sent:]
        self._settled(self)

    def abandon(self) -> None:
        """The connection is gone: its links no longer write the reply."""
        self.settled = True


def hold_reply(
    first_hops: Sequence[tuple[LinkBase[Any], int]],
    lines: LineLog,
    conn: str,
    exchange: Exchange,
    send: Callable[[bytes], int],
    settled: Callable[[HeldReply], None],
) -> HeldReply | None:
    """Hold the exchange's reply for its links to write (:class:`HeldReply`).

    Returns:
        The held reply, or ``None`` if every first hop is on the wire
        already: then the caller writes the reply now.
    """
    waiting = [(link, mark) for link, mark in first_hops if link.protocol.on_wire < mark]
    if not waiting:
        return None
    reply = HeldReply(lines, conn, exchange, send, settled, len(waiting))
    for link, mark in waiting:
        link.hold(mark, reply)
    return reply


def places_problem(log: logging.Logger, problem: str | None) -> None:
    """Log what went wrong with the Places source for one WHATSAT, if anything."""
    if problem is not None:
        log.warning("places: %s", problem)
