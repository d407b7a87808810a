"""What ``pause_until_asked`` costs on a stream already paused (anyio 4.16, asyncio).

    flock /tmp/bench.lock env PYTHONPATH=. python bench/results/anyio/s24/pause_call.py

The price of pausing after every read instead of once at accept: the
best of 5 runs of 200,000 calls, in ns per call (CPU time).
"""

from __future__ import annotations

import socket
import time

import anyio
from anyio.abc import SocketListener

from bench.anyio_herd.stream import pause_until_asked

CALLS = 200_000


async def main() -> None:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    async with await SocketListener.from_socket(listening) as listener:
        with socket.create_connection(listening.getsockname()):
            async with await listener.accept() as stream:
                pause_until_asked(stream)
                best = float("inf")
                for _ in range(5):
                    start = time.process_time_ns()
                    for _ in range(CALLS):
                        pause_until_asked(stream)
                    best = min(best, (time.process_time_ns() - start) / CALLS)
    print(f"pause_until_asked on a paused stream: {best:.0f} ns per call (best of 5 x {CALLS:,})")


if __name__ == "__main__":
    anyio.run(main, backend="asyncio")
