"""The herd's streams on anyio: accept, read, write without waiting, close.

Mirrors ``trioherd/stream.py`` in role. The connections are anyio's own
:class:`~anyio.abc.SocketStream` on both backends; this module holds the few
things the herd needs that anyio's streams do not say the same way on both:

* EOF is :class:`anyio.EndOfStream`, not ``b""``; :func:`receive` turns it
  back into the ``b""`` the core expects.
* an accept that fails for want of descriptors raises :class:`OSError` on
  asyncio but :class:`anyio.BrokenResourceError` (the ``OSError`` as its
  cause) on trio; :func:`accept` looks at both.
* there is no "send what fits now": :func:`send_nowait` writes to the
  socket's descriptor, which is safe only while no ``send`` is under way
  (see ``PeerLink.push``).
* on asyncio an accepted stream reads before it is asked, without bound
  while its task waits in ``send``: :func:`accept` pauses it
  (:func:`pause_until_asked`, the one use of anyio's private attributes).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from importlib.metadata import version

import anyio
from anyio.abc import SocketListener, SocketStream

#: The most bytes one read asks for.
RECEIVE_SIZE = 65536
#: accept() errors that mean "out of descriptors or memory": wait, then retry.
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: accept() errors about the one connection being accepted, which is gone.
CONNECTION_GONE = frozenset(
    {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN, errno.ENOPROTOOPT}
    | {errno.EHOSTDOWN, errno.ENONET, errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETUNREACH}
)
#: How long to wait before accepting again when out of resources.
OUT_OF_RESOURCES_PAUSE = 0.1
#: Whether this anyio's asyncio streams are the ones :func:`pause_until_asked`
#: was written against (read in 4.16; the attributes are 4.x's throughout).
PRIVATE_TRANSPORT_KNOWN = version("anyio").split(".")[0] == "4"


def cause(exc: BaseException) -> BaseException:
    """The OS error behind an anyio error, where there is one, for the log.

    anyio wraps them: a broken stream's in :class:`anyio.BrokenResourceError`,
    a refused connection's in ``OSError("All connection attempts failed")``.
    """
    wrapped = isinstance(exc, anyio.BrokenResourceError) or (
        isinstance(exc, OSError) and exc.errno is None
    )
    if wrapped and isinstance(exc.__cause__, OSError):
        return exc.__cause__
    return exc


async def accept(listener: SocketListener, exhausted: Callable[[OSError], None]) -> SocketStream:
    """The next connection on ``listener``.

    Error handling:
        Out of descriptors or memory, it calls ``exhausted`` with the error,
        waits :data:`OUT_OF_RESOURCES_PAUSE` and tries again. A connection
        aborted before it was accepted is skipped. Anything else is raised.
    """
    while True:
        try:
            stream = await listener.accept()
        except (OSError, anyio.BrokenResourceError) as exc:
            error = cause(exc)
            if not isinstance(error, OSError) or error.errno not in OUT_OF_RESOURCES:
                if isinstance(error, OSError) and error.errno in CONNECTION_GONE:
                    continue
                raise
            exhausted(error)
        else:
            pause_until_asked(stream)
            return stream
        await anyio.sleep(OUT_OF_RESOURCES_PAUSE)


def pause_until_asked(stream: SocketStream) -> bool:
    """Stop an accepted asyncio stream reading until a ``receive`` waits for data.

    anyio's asyncio :class:`~anyio.abc.SocketStream` is an
    ``asyncio.Protocol``: its transport reads into a queue whenever it is
    not paused. ``receive`` resumes it only to wait for data and pauses it
    again when the wait ends, and ``anyio.connect_tcp`` pauses a new stream
    at once; ``SocketListener.accept`` (4.16) does not. So until a
    connection's first ``receive`` has had to wait, everything the client
    sends is read into memory, and a task stuck in ``send`` (a client that
    never reads its replies, with more lines queued) never gets there.
    Pausing here puts the accepted stream where ``connect_tcp`` puts its
    own (``bench/anyio_herd/NOTES.md``).

    anyio offers no public way to reach the transport: this uses the
    stream's private ``_transport``, on anyio 4 only, and does nothing to
    a stream without one (the trio backend's) or anything unexpected.
    Pausing twice is harmless, so an anyio whose accept pauses too needs
    nothing undone. Returns whether it paused the stream.
    """
    if not PRIVATE_TRANSPORT_KNOWN:
        return False
    transport = getattr(stream, "_transport", None)
    pause = getattr(transport, "pause_reading", None)
    if not callable(pause):
        return False
    pause()
    return True


async def receive(stream: SocketStream) -> bytes:
    """Up to :data:`RECEIVE_SIZE` bytes; ``b""`` at EOF."""
    try:
        return await stream.receive(RECEIVE_SIZE)
    except anyio.EndOfStream:
        return b""


def send_nowait(sock: socket.socket, data: bytes) -> int:
    """Send what the socket takes now; never waits. How many bytes.

    Raises:
        OSError: the connection is broken.
    """
    # On asyncio the "raw socket" anyio hands out is the transport's
    # TransportSocket, which has no send(): write to the descriptor, which
    # both backends keep non-blocking.
    try:
        return os.write(sock.fileno(), data)
    except BlockingIOError:
        return 0


async def close(stream: SocketStream) -> None:
    """Close ``stream``, even in a cancelled scope: no descriptor may leak."""
    with anyio.CancelScope(shield=True):
        await stream.aclose()
