"""What pausing an accepted stream costs a connection, anyio on asyncio.

    flock /tmp/bench.lock env PYTHONPATH=. python bench/results/anyio/s24/accept_cost.py

A server on anyio's ``accept`` (anyio 4.16, asyncio backend)
answers one line per connection, as churn's clients ask: read a line,
write a reply, read to EOF, close. A client process connects, sends a
line, reads the reply and closes, one connection at a time. The server's
CPU per connection (``time.process_time``, the server process alone) is
measured in rotating blocks of :data:`CONNECTIONS`, three ways: paused as
it is accepted (``pause_until_asked`` as the herd's ``accept`` calls it),
never paused (anyio 4.16 as it is), and paused once the first read has
returned (an alternative: the transport reads on until then). Prints each
block, and the median and range of each way.
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import sys
import time

import anyio
from anyio.abc import SocketListener, SocketStream

from bench.anyio_herd import stream as herd_stream

CONNECTIONS = 2000
BLOCKS = 6
LINE = b"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n"


def client(port: int, count: int) -> None:
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(LINE)
            reply = b""
            while not reply.endswith(b"\n"):
                reply += sock.recv(4096)


WAYS = ("at accept", "never", "after the first read")
way = WAYS[0]


async def answer(stream: SocketStream) -> None:
    async with stream:
        line = await herd_stream.receive(stream)
        if way == "after the first read":
            herd_stream.pause_until_asked(stream)
        while not line.endswith(b"\n"):
            line += await herd_stream.receive(stream)
        await stream.send(b"AT Hill +0.1 " + line[6:])
        while await herd_stream.receive(stream):
            pass


async def block(listener: SocketListener, port: int) -> float:
    """Server CPU per connection (us) over one block of connections."""
    peer = multiprocessing.Process(target=client, args=(port, CONNECTIONS))
    start = time.process_time()
    peer.start()
    async with anyio.create_task_group() as tg:
        for _ in range(CONNECTIONS):
            stream = await listener.accept()
            if way == "at accept":
                # As the herd's accept does.
                herd_stream.pause_until_asked(stream)
            tg.start_soon(answer, stream)
    await anyio.to_thread.run_sync(peer.join)
    return (time.process_time() - start) / CONNECTIONS * 1e6


async def main() -> None:
    global way
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(128)
    port = listening.getsockname()[1]
    listener = await SocketListener.from_socket(listening)
    figures: dict[str, list[float]] = {w: [] for w in WAYS}
    async with listener:
        await block(listener, port)  # warm-up
        for i in range(BLOCKS * len(WAYS)):
            way = WAYS[i % len(WAYS)]
            us = await block(listener, port)
            figures[way].append(us)
            print(f"block {i + 1}: {way}: {us:.1f} us/connection")
    for name, values in figures.items():
        print(
            f"{name}: median {statistics.median(values):.1f} us/connection "
            f"({min(values):.1f}-{max(values):.1f}), {BLOCKS} blocks of {CONNECTIONS}"
        )


if __name__ == "__main__":
    anyio.run(main, backend="asyncio")
    sys.exit(0)
