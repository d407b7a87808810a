"""anyio on asyncio reads everything a client sends into an accepted stream.

A standalone reproduction for anyio's issue tracker (plain anyio, no
trioherd): ``python upstream_accept_pause.py``. It takes a few seconds.

An echo handler answers a peer that sends 10 MiB and never reads the
echoes. The handler soon waits in ``send`` for the peer to read, so the
peer's sending must stall once the sockets' buffers are full. It does when
the handler's stream came from ``anyio.connect_tcp``, or from a listener on
the trio backend. When the stream came from ``SocketListener.accept`` on the
asyncio backend, the peer sends all 10 MiB: the stream's transport keeps
reading it into the stream's buffer while the handler waits in ``send``.

Prints one line per case; exits with status 1 if an accepted stream was
read without bound (the bug), 0 if every case stalled.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import SocketAttribute, SocketStream

#: What the peer tries to send without reading anything back.
FLOOD = 10 * 1024 * 1024
#: What the peer has sent before its connection is accepted.
FIRST = 32 * 1024
#: The peer gives up once a send has taken nothing for this long (s).
STALL = 1.0


def flood(sock: socket.socket) -> int:
    """Send :data:`FLOOD` bytes on ``sock``, reading nothing; how many were taken."""
    sock.settimeout(STALL)
    block = b"x" * 65536
    sent = 0
    try:
        while sent < FLOOD:
            sent += sock.send(block[: FLOOD - sent])
    except TimeoutError:
        pass
    return sent


def small_buffers(sock: socket.socket) -> None:
    # A small receive buffer on the peer's side: the echoes soon fill it;
    # a fixed send buffer, where the kernel's would grow to megabytes.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)


async def echo(stream: SocketStream) -> None:
    """Send back what arrives until the peer goes away."""
    # A small send buffer on the handler's side too, where the kernel's
    # would grow to megabytes.
    stream.extra(SocketAttribute.raw_socket).setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    async with stream:
        try:
            while True:
                await stream.send(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass


async def accepted() -> int:
    """The peer connects to an anyio listener; the handler runs on the accepted stream."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    with socket.socket() as sock:
        small_buffers(sock)
        # The peer is quick: its first bytes are there before the listener
        # accepts it (the kernel completes the connection meanwhile), more
        # than the first echo can get through the buffers, so the handler's
        # first receive finds them and its first send waits.
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"x" * FIRST)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, echo)
            sent = await anyio.to_thread.run_sync(flood, sock)
            tg.cancel_scope.cancel()
    return sent


async def connected() -> int:
    """The handler's stream comes from ``anyio.connect_tcp`` to a listening peer."""
    with socket.socket() as server:
        small_buffers(server)  # inherited by the accepted socket
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def peer() -> int:
            sock, _ = server.accept()
            with sock:
                return flood(sock)

        async with anyio.create_task_group() as tg:
            tg.start_soon(echo, await anyio.connect_tcp("127.0.0.1", port))
            sent = await anyio.to_thread.run_sync(peer)
            tg.cancel_scope.cancel()
    return sent


def main() -> int:
    unbounded = False
    cases: list[tuple[str, Callable[[], Awaitable[int]], str]] = [
        ("listener.accept, asyncio", accepted, "asyncio"),
        ("connect_tcp,     asyncio", connected, "asyncio"),
        ("listener.accept, trio   ", accepted, "trio"),
    ]
    for name, case, backend in cases:
        try:
            sent = anyio.run(case, backend=backend)
        except LookupError:
            print(f"{name}: skipped ({backend} is not installed)")
            continue
        read_all = sent >= FLOOD
        unbounded |= read_all and case is accepted
        verdict = "read ALL of it, unbounded" if read_all else "stalled, bounded"
        print(f"{name}: the peer sent {sent:>10,} of {FLOOD:,} bytes: {verdict}")
    return 1 if unbounded else 0


if __name__ == "__main__":
    sys.exit(main())
