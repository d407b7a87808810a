"""The first hop of a flood is on the wire before the client's reply.

A client that tells Hill where it is, and asks Hill's neighbour Jaquez about
itself the moment Hill's reply arrives, must find its new location there
(docs/peer-protocol.md, "Updates"). Hill hands the AT line to its link
before it writes the reply, so the line reaches Jaquez's socket first; a
server that wrote the reply first would lose this race now and then.
"""

from __future__ import annotations

from functools import partial

import trio

from bench.procs import Herd
from trioherd.core.config import CS131_HERD

from support import WAIT, eventually, holds

ROUNDS = 200
OTHER = {
    "trioherd": "bench.asyncio_herd",
    "bench.asyncio_herd": "trioherd",
    "bench.asyncio_herd.protocol": "trioherd",
    "bench.anyio_herd --backend trio": "bench.asyncio_herd",
    "bench.anyio_herd --backend asyncio": "trioherd",
}


async def _first_line(stream: trio.abc.Stream) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


async def _race(herd: Herd) -> list[int]:
    """Run the rounds; the rounds whose WHATSAT missed the new location."""
    hill, jaquez = herd.address("Hill"), herd.address("Jaquez")
    # The links are up once an update has gone from Hill to Jaquez.
    with trio.fail_after(WAIT):
        warm = await _ask(hill, b"IAMAT racer +1+1 1\n")
    await eventually(partial(holds, jaquez, b"racer", warm), "Hill's link to Jaquez")
    misses = []
    with trio.fail_after(WAIT * 4):
        for i in range(ROUNDS):
            location = b"+%d.5-%d.25" % (i % 80, i % 170)
            at_line = await _ask(hill, b"IAMAT racer %s %d\n" % (location, i + 2))
            answer = await _ask(jaquez, b"WHATSAT racer 10 1\n")
            if answer != at_line:
                misses.append(i)
    return misses


async def _ask(address: tuple[str, int], line: bytes) -> bytes:
    stream = await trio.open_tcp_stream(*address)
    async with stream:
        await stream.send_all(line)
        return await _first_line(stream)


async def test_the_first_hop_beats_the_reply(herd: Herd) -> None:
    assert await _race(herd) == []


async def test_the_first_hop_beats_the_reply_in_a_mixed_herd(
    implementation: str, processes: Herd
) -> None:
    # Hill runs one implementation and its neighbour Jaquez the other.
    for name in CS131_HERD.names:
        other = name in ("Jaquez", "Smith", "Campbell")
        await processes.start(name, command=["-m", OTHER[implementation]] if other else None)
    assert await _race(processes) == []
