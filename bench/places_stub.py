"""A cheap stand-in for our Places server: the same answer and latency, little CPU.

    python -m bench.places_stub --port P --latency 50-150 --seed 1

Our Places server (``python -m trioherd.places_server``) searches the
GeoNames index and writes the JSON for every request; on a two-core machine
that caps it at a few hundred requests a second, far below what 500
concurrent WHATSATs at 100 ms would need (5,000/s). With ``python -m bench
--places stub`` the herd talks to this server instead: it computes the real
server's answer for the benchmark's one query (every benchmark client is at
UCLA and asks for 10 km) once, at start-up, and then answers every request
with those bytes after the same uniformly drawn latency, from uvloop
callbacks. What WHATSAT then measures is the herd: its HTTP client, its
reply shaping, and how well it overlaps Places latency.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Sequence
from typing import cast

from bench.loadgen import new_event_loop
from bench.places_faults import parse_latency
from trioherd.core.places import google_json
from trioherd.offline.cache import load_index
from trioherd.offline.nearby import nearby_search

#: The one query the benchmark's WHATSATs make (see bench.loadgen).
QUERY = {"location": "34.06893,-118.445127", "radius": "10000"}


def canned_response() -> bytes:
    """The whole HTTP response our Places server gives for :data:`QUERY`."""
    body = google_json(nearby_search(load_index(), QUERY)).encode()
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: application/json; charset=UTF-8\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


class _Connection(asyncio.Protocol):
    """Answers each request (a GET: no body) after a drawn delay."""

    def __init__(self, stub: PlacesStub) -> None:
        self.stub = stub
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but are one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        loop = asyncio.get_running_loop()
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            self.buffer = self.buffer[end + 4 :]
            # Every answer is the same bytes, so answers to requests
            # pipelined on one connection may not go out of order.
            loop.call_later(self.stub.delay(), self._answer)

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.stub.response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class PlacesStub:
    """The stub's state: the canned response and the latency draw."""

    def __init__(self, latency: tuple[float, float], seed: int | None) -> None:
        self.response = canned_response()
        self.low, self.high = latency
        self.rng = random.Random(seed)

    def delay(self) -> float:
        """One request's latency, in seconds."""
        return self.rng.uniform(self.low, self.high)

    async def serve(self, port: int) -> None:
        """Listen on ``127.0.0.1:port`` and serve until cancelled."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(self), "127.0.0.1", port, backlog=4096
        )
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.places_stub", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any)")
    parser.add_argument(
        "--latency",
        default="50-150",
        metavar="MS|LOW-HIGH",
        help="latency in ms before each answer: fixed or uniform (default 50-150)",
    )
    parser.add_argument("--seed", type=int, help="seed for the latency draws")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.places_stub``."""
    args = build_parser().parse_args(argv)
    stub = PlacesStub(parse_latency(args.latency), args.seed)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        try:
            runner.run(stub.serve(args.port))
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
