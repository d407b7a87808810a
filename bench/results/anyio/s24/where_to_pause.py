"""Where in anyio 4.16 a pause keeps an accepted stream from reading, on asyncio and uvloop.

    python bench/results/anyio/s24/where_to_pause.py   (no lock needed: not timed)

For the fix suggested in ``bench/anyio_herd/UPSTREAM-accept-pause.md``: a
client sends 5,000 bytes before the accept and 5,000 after, the loop runs
ten passes, and the bytes still in the kernel (``FIONREAD``) say how much
the transport read meanwhile. Each case patches anyio's private asyncio
classes in a process of its own.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import subprocess
import sys
import termios
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import SocketAttribute, SocketListener

PLACES = ("nowhere", "SocketStream.__init__", "StreamProtocol.connection_made")
LOOPS = ("asyncio", "uvloop")


def patch(place: str) -> None:
    from anyio._backends import _asyncio as backend

    if place == "SocketStream.__init__":
        init = backend.SocketStream.__init__

        def paused_init(self: Any, transport: Any, protocol: Any) -> None:
            init(self, transport, protocol)
            transport.pause_reading()

        backend.SocketStream.__init__ = paused_init  # type: ignore[method-assign]
    elif place == "StreamProtocol.connection_made":
        made = backend.StreamProtocol.connection_made

        def paused_made(self: Any, transport: Any) -> None:
            made(self, transport)
            transport.pause_reading()

        backend.StreamProtocol.connection_made = paused_made  # type: ignore[method-assign]


async def left_in_kernel() -> int:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    listener = await SocketListener.from_socket(listening)
    with socket.socket() as client:
        client.connect(listening.getsockname())
        client.sendall(b"x" * 5000)
        async with listener:
            stream = await listener.accept()
            client.sendall(b"y" * 5000)
            async with stream:
                for _ in range(10):
                    await anyio.lowlevel.checkpoint()
                fd = stream.extra(SocketAttribute.raw_socket).fileno()
                (count,) = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))
                return int(count)


def main() -> None:
    if len(sys.argv) == 3:
        place, loop = sys.argv[1:]
        patch(place)
        options = {"use_uvloop": loop == "uvloop"}
        print(anyio.run(left_in_kernel, backend="asyncio", backend_options=options))
        return
    print("pause in | " + " | ".join(f"{loop}: left in the kernel" for loop in LOOPS))
    for place in PLACES:
        counts = [
            subprocess.run(
                [sys.executable, __file__, place, loop], capture_output=True, text=True, check=True
            ).stdout.strip()
            for loop in LOOPS
        ]
        print(f"{place} | " + " | ".join(counts))


if __name__ == "__main__":
    main()
