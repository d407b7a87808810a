"""``python -m bench.trio_socketstream NAME``: trioherd on plain ``trio.SocketStream``.

The same server and command line as ``python -m trioherd``, with every
connection and link on :class:`trio.SocketStream` instead of trioherd's
:class:`~trioherd.stream.LeanStream`: what the lean stream gains, measured
by the bench as the ``trio-socketstream`` implementation. The product has
no flag for this; the bench passes the stream factory in.
"""

from __future__ import annotations

import socket
import sys

import trio

from trioherd.cli import main
from trioherd.serving import limit_unacknowledged
from trioherd.stream import HerdStream


class _SocketStream:
    """A :class:`trio.SocketStream` (final, so wrapped, not subclassed)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    def send_nowait(self, data: bytes) -> int:
        # SocketStream cannot send without waiting, so a flood's first hop
        # always goes through the link's sender task.
        return 0

    async def aclose(self) -> None:
        await self._stream.aclose()


class SocketStreams:
    """Streams of plain :class:`trio.SocketStream`."""

    def accepted(self, sock: socket.socket) -> HerdStream:
        return _SocketStream(trio.SocketStream(trio.socket.from_stdlib_socket(sock)))

    async def connect(self, host: str, port: int) -> HerdStream:
        stream = await trio.open_tcp_stream(host, port)
        limit_unacknowledged(stream.socket)
        return _SocketStream(stream)


if __name__ == "__main__":
    sys.exit(main(prog="python -m bench.trio_socketstream", streams=SocketStreams()))
