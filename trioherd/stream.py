"""A lean TCP stream on ``trio.lowlevel``, for the herd's hot path.

:class:`trio.SocketStream` is general: each ``receive_some`` and
``send_all`` enters a conflict detector and a couple of context managers
around the system call, which on this workload costs about as much as
everything else the server does per message (profile and figures:
compare_asyncio.md). The herd needs far less: one reader and one writer per
connection, which our own structure already guarantees. :class:`LeanStream`
does just that with trio's public low-level API, keeping trio's semantics
that matter to us:

* every operation is a checkpoint (cancellable, and it yields once even
  when the socket was ready at once, so a busy peer cannot starve others);
* a closed or reset connection raises :class:`trio.BrokenResourceError`, as
  a ``SocketStream`` does, so callers handle both alike.

``python -m trioherd --socket-streams`` runs the herd on plain
``trio.SocketStream`` instead, to measure the difference.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Protocol

import trio

#: The most bytes one ``receive_some`` asks for by default.
RECEIVE_SIZE = 65536


class HerdStream(Protocol):
    """What the herd needs of a connection; both stream classes have it."""

    async def receive_some(self, max_bytes: int | None = None) -> bytes: ...

    async def send_all(self, data: bytes | bytearray | memoryview) -> None: ...

    async def aclose(self) -> None: ...


class LeanStream:
    """A connected TCP socket taken over from a :class:`trio.SocketStream`.

    Args:
        stream: the stream to take the socket from; it must not be used again.
    """

    __slots__ = ("_sock",)

    def __init__(self, stream: trio.SocketStream) -> None:
        # detach() hands over the descriptor: the trio socket object will
        # neither use nor close it.
        self._sock = socket.socket(fileno=stream.socket.detach())
        self._sock.setblocking(False)

    def getpeername(self) -> tuple[str, int]:
        """The remote address."""
        host, port, *_ = self._sock.getpeername()
        return host, port

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at EOF."""
        size = max_bytes or RECEIVE_SIZE
        try:
            data = self._sock.recv(size)
        except BlockingIOError:
            pass
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        else:
            await trio.lowlevel.checkpoint()
            return data
        while True:
            await trio.lowlevel.wait_readable(self._sock)
            try:
                return self._sock.recv(size)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data``, waiting for the socket as often as needed."""
        view = memoryview(data)
        waited = False
        while view:
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._sock)
                waited = True
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            view = view[sent:]
        if not waited:
            await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        """Shut down the sending side."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Close the socket; tasks waiting on it get ``ClosedResourceError``."""
        if self._sock.fileno() >= 0:
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> LeanStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Close even while being cancelled: the descriptor must not leak.
        with trio.CancelScope(shield=True):
            await self.aclose()
