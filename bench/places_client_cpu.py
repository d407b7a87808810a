"""The CPU one Places request costs the herd's HTTP client, per event loop and library.

    python -m bench.places_client_cpu [--requests 3000] [--concurrency 50] [--rounds 3] \
        [--clients trio-lean,asyncio-aiohttp,...] [--json OUT]

Starts our Places server (no added latency) in a process of its own, then,
in this process, asks it for ``--requests`` Nearby Searches through each
herd's Places source (``nearby()``, as a WHATSAT does: the request, the
response, the JSON decoded), ``--concurrency`` at a time, and divides this
process's CPU time by the requests. The clients take turns, round after
round, so each round's figures were measured seconds apart.

What it isolates: a WHATSAT on Hill costs this plus the herd's own work
(reading the client's line, shaping and writing the reply), which is the
same code on every event loop except for the reads and writes. CPU time of
this process alone is what the other processes on a shared machine disturb
least; the server's CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from bench.procs import places_url, start_places_server
from trioherd.core.places import PlacesQuery, decoded
from trioherd.options import PlacesOptions

#: The clients compared: name, event loop, --places-transport.
CLIENTS = (
    ("trio-lean", "trio", "lean"),
    ("asyncio-aiohttp", "asyncio", "aiohttp"),
    ("trio-httpx-stock", "trio", "httpx"),
    ("asyncio-httpx", "asyncio", "httpx"),
)
QUERY = PlacesQuery(b"AT", 34.068930, -118.445127, 10_000.0, 20)


def _options(transport: str, concurrency: int) -> PlacesOptions:
    return PlacesOptions(transport=transport, concurrency=concurrency)


async def _on_trio(url: str, transport: str, requests: int, concurrency: int) -> float:
    from trioherd.places import open_places

    async with open_places(_options(transport, concurrency), url) as places:
        await places.nearby(QUERY)  # connect once before the clock starts
        left = requests

        async def ask() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                # Decoded here, as a reply would be: the decoding is part
                # of what a Places request costs.
                response = decoded(await places.nearby(QUERY))
                assert response["status"] == "OK", response

        started = time.process_time()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(ask)
        return time.process_time() - started


async def _on_asyncio(url: str, transport: str, requests: int, concurrency: int) -> float:
    from bench.asyncio_herd.places import open_places

    async with open_places(_options(transport, concurrency), url) as places:
        await places.nearby(QUERY)
        left = requests

        async def ask() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                # Decoded here, as a reply would be: the decoding is part
                # of what a Places request costs.
                response = decoded(await places.nearby(QUERY))
                assert response["status"] == "OK", response

        started = time.process_time()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(ask())
        return time.process_time() - started


def measure(url: str, loop: str, transport: str, requests: int, concurrency: int) -> float:
    """Microseconds of this process's CPU per request."""
    run: Callable[[], float]
    if loop == "trio":
        run = lambda: trio.run(_on_trio, url, transport, requests, concurrency)  # noqa: E731
    else:
        run = lambda: asyncio.run(_on_asyncio(url, transport, requests, concurrency))  # noqa: E731
    return run() * 1e6 / requests


async def _with_server(work: Callable[[str], Any]) -> Any:
    with tempfile.TemporaryDirectory(prefix="trioherd-places-cpu-") as scratch:
        places, port = await start_places_server(Path(scratch), (0, 0))
        try:
            # The clients run their own event loops: in a thread of ours.
            return await asyncio.to_thread(work, places_url(port))
        finally:
            with contextlib.suppress(Exception):
                await places.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print a table, and write the rounds to ``--json`` if given."""
    parser = argparse.ArgumentParser(prog="python -m bench.places_client_cpu")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--clients", default=",".join(name for name, _, _ in CLIENTS),
        help="which, comma-separated (default: all; asyncio-aiohttp is the base of the ratios)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args(argv)
    wanted = args.clients.split(",")
    clients = tuple(client for client in CLIENTS if client[0] in wanted)
    if not any(name == "asyncio-aiohttp" for name, _, _ in clients):
        parser.error("--clients must include asyncio-aiohttp, the base of the ratios")

    def work(url: str) -> dict[str, list[float]]:
        rounds: dict[str, list[float]] = {name: [] for name, _, _ in clients}
        for number in range(args.rounds):
            # Rotate the order, so no client always runs first or last.
            order = clients[number % len(clients) :] + clients[: number % len(clients)]
            for name, loop, transport in order:
                cost = measure(url, loop, transport, args.requests, args.concurrency)
                rounds[name].append(cost)
                print(f"round {number + 1}: {name:17} {cost:7.0f} µs/request", file=sys.stderr)
        return rounds

    rounds: dict[str, list[float]] = asyncio.run(_with_server(work))
    base = rounds["asyncio-aiohttp"]
    print(f"{'client':17} {'µs/request min-max':>20}  {'/asyncio-aiohttp per round':>28}")
    for name, costs in rounds.items():
        ratio = " ".join(f"{c / b:.2f}" for c, b in zip(costs, base, strict=True))
        print(f"{name:17} {min(costs):9.0f}-{max(costs):<9.0f}  {ratio:>28}")
    if args.json is not None:
        command = "python -m bench.places_client_cpu " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        args.json.write_text(
            json.dumps({"command": command, "us_per_request": rounds}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
