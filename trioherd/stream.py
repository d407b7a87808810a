"""A lean TCP stream on ``trio.lowlevel``, for the herd's hot path.

:class:`trio.SocketStream` is general: each ``receive_some`` and
``send_all`` enters a conflict detector and a couple of context managers
around the system call, which on this workload costs about as much as
everything else the server does per message (profile and figures:
compare_asyncio.md). The herd needs far less: one reader and one writer per
connection, which our own structure already guarantees. :class:`LeanStream`
does just that with trio's public low-level API, keeping trio's semantics
that matter to us:

* every operation is a cancel point;
* ``receive_some`` is also a schedule point (it yields once even when data
  was ready at once), so a loop that reads cannot starve other tasks;
* ``send_all`` yields only when it has to wait for room, as asyncio's
  ``drain`` does. A trio schedule point is a trip round the run loop, and
  every loop the herd runs reads or parks between two writes, so the one
  after a write bought nothing;
* a closed or reset connection raises :class:`trio.BrokenResourceError`, as
  a ``SocketStream`` does, so callers handle both alike.

The listening side is as lean: a plain listening socket
(:func:`trioherd.serving.bind_herd`), and :func:`accept_batch` takes every
connection waiting on it, so a burst of connections costs one wake-up, not
one per connection
(``trio.serve_listeners`` makes a ``SocketStream`` per connection and closes
it with a cancelled scope, which we would only throw away).

A server takes its streams from a :class:`StreamFactory`; the product
uses :data:`LEAN_STREAMS`, and the bench passes one of plain
``trio.SocketStream`` to measure the difference (``bench/trio_socketstream.py``).
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable
from typing import Protocol

import trio

from trioherd.serving import limit_unacknowledged

#: The most bytes one ``receive_some`` asks for by default.
RECEIVE_SIZE = 65536
#: accept() errors that mean "out of descriptors or memory": wait, then retry.
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: accept() errors about the one connection being accepted, which is gone
#: (accept(2) says to treat Linux's network errors like EAGAIN): skip it.
CONNECTION_GONE = frozenset(
    {
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.EPERM,
        errno.ENETDOWN,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.ENONET,
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ENETUNREACH,
    }
)
#: How long to wait before accepting again when out of resources.
OUT_OF_RESOURCES_PAUSE = 0.1


def _ignore(exc: OSError) -> None:
    pass


async def accept_batch(
    listener: socket.socket, exhausted: Callable[[OSError], None] = _ignore
) -> list[tuple[socket.socket, tuple[str, int]]]:
    """Wait for connections on ``listener``; return every one waiting.

    A checkpoint. A connection aborted before it was accepted is skipped.

    Error handling:
        Out of descriptors or memory, it calls ``exhausted`` with the error,
        waits :data:`OUT_OF_RESOURCES_PAUSE` and tries again: the
        connections stay in the backlog until descriptors are free. Any
        other error is raised: it is the listener's, not a connection's.
    """
    while True:
        await trio.lowlevel.wait_readable(listener)
        accepted: list[tuple[socket.socket, tuple[str, int]]] = []
        while True:
            try:
                sock, (host, port, *_) = listener.accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in CONNECTION_GONE:
                    continue
                if exc.errno not in OUT_OF_RESOURCES:
                    raise
                exhausted(exc)
                if accepted:
                    # Serve these first; the next call waits and retries.
                    break
                await trio.sleep(OUT_OF_RESOURCES_PAUSE)
                continue
            accepted.append((sock, (host, port)))
        if accepted:
            return accepted


class HerdStream(Protocol):
    """What the herd needs of a connection; both stream classes have it."""

    async def receive_some(self, max_bytes: int | None = None) -> bytes: ...

    async def send_all(self, data: bytes | bytearray | memoryview) -> None: ...

    def send_nowait(self, data: bytes) -> int:
        """Send what the socket takes now, without waiting; how many bytes."""
        ...

    async def aclose(self) -> None: ...


class StreamFactory(Protocol):
    """Where a server's streams come from: accepted sockets and outbound links."""

    def accepted(self, sock: socket.socket) -> HerdStream:
        """A stream over an accepted connection's socket, which it now owns."""
        ...

    async def connect(self, host: str, port: int) -> HerdStream:
        """A stream connected to ``host:port``."""
        ...


class LeanStream:
    """A connected TCP socket, owned from now on by this stream.

    Args:
        sock: the connected socket; made non-blocking, with Nagle's
            algorithm off (as trio and asyncio both do for TCP).
    """

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    @classmethod
    def take(cls, stream: trio.SocketStream) -> LeanStream:
        """Take over the socket of ``stream``, which must not be used again."""
        # detach() hands over the descriptor: the trio socket object will
        # neither use nor close it.
        return cls(socket.socket(fileno=stream.socket.detach()))

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at EOF.

        Waits until the socket is readable, then reads. A herd connection
        mostly waits for its next message, so reading first (as
        ``SocketStream`` does) would usually cost a failed ``recv``; when data
        is there already, the wait returns at the run loop's next turn, the
        schedule point a checkpoint owes anyway.
        """
        size = max_bytes or RECEIVE_SIZE
        while True:
            await trio.lowlevel.wait_readable(self._sock)
            try:
                return self._sock.recv(size)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data``, waiting for the socket as often as needed.

        A cancel point; a schedule point only if the socket was full.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        view = memoryview(data)
        while view:
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._sock)
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            view = view[sent:]

    def send_nowait(self, data: bytes) -> int:
        """Send what the socket takes now; never waits, not a checkpoint.

        Raises:
            OSError: the connection is broken.
        """
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        """Close the socket now; tasks waiting on it get ``ClosedResourceError``."""
        if self._sock.fileno() >= 0:
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()

    async def aclose(self) -> None:
        """Close the socket, as :meth:`close`; a checkpoint."""
        self.close()
        await trio.lowlevel.checkpoint()


async def close_stream(stream: HerdStream) -> None:
    """Close ``stream``, even in a cancelled scope: no descriptor may leak."""
    if isinstance(stream, LeanStream):
        # Synchronous: no checkpoint, nothing a cancellation could interrupt.
        stream.close()
    else:
        with trio.CancelScope(shield=True):
            await stream.aclose()


class LeanStreams:
    """The product's streams: :class:`LeanStream` on both sides."""

    def accepted(self, sock: socket.socket) -> HerdStream:
        return LeanStream(sock)

    async def connect(self, host: str, port: int) -> HerdStream:
        # open_tcp_stream for its happy-eyeballs connect; then the lean stream.
        stream = await trio.open_tcp_stream(host, port)
        limit_unacknowledged(stream.socket)
        return LeanStream.take(stream)


#: The streams every server uses unless told otherwise.
LEAN_STREAMS: StreamFactory = LeanStreams()

#: How long closing a TLS stream may wait to send its close_notify: a peer
#: that reads nothing must not hold a connection open (the close is shielded).
TLS_CLOSE_TIMEOUT = 1.0


class TlsStream:
    """A :class:`trio.SSLStream` over a :class:`trio.SocketStream`.

    The lean stream's shortcuts do not apply: TLS records are encrypted and
    framed by ``SSLStream``, which wants the general stream under it. What
    this costs against :class:`LeanStream` is measured in
    bench/results/hardening/tls/.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self._stream = stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    def send_nowait(self, data: bytes) -> int:
        # SSLStream cannot send without waiting: a flood's first hop goes
        # through the link's sender task.
        return 0

    async def aclose(self) -> None:
        with trio.move_on_after(TLS_CLOSE_TIMEOUT) as scope:
            await self._stream.aclose()
        if scope.cancelled_caught:
            await trio.aclose_forcefully(self._stream.transport_stream)


class TlsStreams:
    """TLS where a context is given, ``plain``'s streams where not.

    Args:
        server: the context for accepted connections, or ``None``.
        links: the context for our links to neighbours, or ``None``; the
            neighbour's certificate must name the host we connect to.
        plain: the streams for the side without TLS.
    """

    def __init__(
        self,
        server: ssl.SSLContext | None,
        links: ssl.SSLContext | None,
        plain: StreamFactory = LEAN_STREAMS,
    ) -> None:
        self._server = server
        self._links = links
        self._plain = plain

    def accepted(self, sock: socket.socket) -> HerdStream:
        if self._server is None:
            return self._plain.accepted(sock)
        # The handshake happens at the first read, under the connection's
        # idle timeout; a client that does not speak TLS fails it there
        # (trio.BrokenResourceError, logged as a dropped connection).
        transport = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        # https_compatible: a client that closes without TLS's close_notify
        # has still ended its side, as at a plain TCP EOF.
        stream = trio.SSLStream(transport, self._server, server_side=True, https_compatible=True)
        return TlsStream(stream)

    async def connect(self, host: str, port: int) -> HerdStream:
        if self._links is None:
            return await self._plain.connect(host, port)
        transport = await trio.open_tcp_stream(host, port)
        limit_unacknowledged(transport.socket)
        stream = trio.SSLStream(transport, self._links, server_hostname=host, https_compatible=True)
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(stream.transport_stream)
            # An OSError, as any other failure to connect, for the link's
            # retry loop; the cause says what was wrong with the certificate.
            raise ConnectionError(f"TLS handshake failed: {exc.__cause__ or exc}") from exc
        except BaseException:
            await trio.aclose_forcefully(stream.transport_stream)
            raise
        return TlsStream(stream)
