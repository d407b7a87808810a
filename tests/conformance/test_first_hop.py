"""The first hop of a flood is on the wire before the client's reply.

A client that tells Hill where it is, and asks Hill's neighbour Jaquez about
itself the moment Hill's reply arrives, must find its new location there
(docs/peer-protocol.md, "Updates"). Hill hands the AT line to its link
before it writes the reply, so the line reaches Jaquez's socket first; a
server that wrote the reply first would lose this race now and then.
"""

from __future__ import annotations

import struct
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


async def _race(herd: Herd, rounds: int = ROUNDS, client: bytes = b"racer") -> list[int]:
    """Run the rounds; the rounds whose WHATSAT missed the new location."""
    hill, jaquez = herd.address("Hill"), herd.address("Jaquez")
    # The links are up once an update has gone from Hill to Jaquez.
    with trio.fail_after(WAIT):
        warm = await _ask(hill, b"IAMAT %s +1+1 1\n" % client)
    await eventually(partial(holds, jaquez, client, warm), "Hill's link to Jaquez")
    misses = []
    with trio.fail_after(WAIT * 4):
        for i in range(rounds):
            location = b"+%d.5-%d.25" % (i % 80, i % 170)
            at_line = await _ask(hill, b"IAMAT %s %s %d\n" % (client, location, i + 2))
            answer = await _ask(jaquez, b"WHATSAT %s 10 1\n" % client)
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


async def test_a_burst_read_late_comes_back_whole_and_in_order(herd: Herd) -> None:
    # Every IAMAT is a first hop, so under a burst the links write the
    # replies (serving.HeldReply). A client that sends them all before it
    # reads, through a small receive buffer, fills the server's socket: the
    # links' writes fall short and the connection must finish each reply
    # itself, in order, before anything else goes.
    count = 3000
    payload = b"".join(b"IAMAT burst +1+1 %d\n" % (i + 1) for i in range(count))
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect(herd.address("Hill"))
    stream = trio.SocketStream(sock)
    chunks = []
    with trio.fail_after(WAIT):
        async with stream:
            await stream.send_all(payload)
            await stream.send_eof()
            while chunk := await stream.receive_some(65536):
                chunks.append(chunk)
    lines = b"".join(chunks).split(b"\n")
    assert lines.pop() == b""
    assert [line.split(b" ")[3:] for line in lines] == [
        [b"burst", b"+1+1", b"%d" % (i + 1)] for i in range(count)
    ]


async def test_clients_that_reset_mid_burst_do_not_hurt_the_links(herd: Herd) -> None:
    # Replies held for the links to write, to sockets reset meanwhile: the
    # links write nothing there and go on carrying floods.
    for c in range(20):
        sock = trio.socket.socket()
        await sock.connect(herd.address("Hill"))
        await sock.send(b"".join(b"IAMAT reset%d +1+1 %d\n" % (c, i + 1) for i in range(200)))
        # Closing with unread data resets the connection.
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert await _race(herd, rounds=20, client=b"after-resets") == []


async def test_a_client_that_never_reads_its_held_replies_is_no_longer_read(herd: Herd) -> None:
    # Replies held for the links are written by the links, not by the
    # connection's task, and the task reads on meanwhile. A client that
    # sends IAMATs and reads nothing must still be stopped by the replies
    # piling up, as one whose replies its own task writes: once the
    # server's socket and its buffer for the client are full, the server
    # stops reading, so what the client can send stops growing.
    payload = b"".join(b"IAMAT silent +1+1 %d\n" % (i + 1) for i in range(400_000))
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_SNDBUF, 8192)
    await sock.connect(herd.address("Hill"))
    sent = 0
    try:
        with trio.move_on_after(WAIT * 2) as patience:
            while sent < len(payload):
                # Stalled: nothing more taken for a second.
                with trio.move_on_after(1.0) as stall:
                    sent += await sock.send(payload[sent : sent + 4096])
                if stall.cancelled_caught:
                    break
        assert not patience.cancelled_caught, f"still read after {sent} bytes"
        # The anyio herd on asyncio read all of it until its accept paused
        # the stream (bench/anyio_herd/NOTES.md).
        assert sent < len(payload), "every line was read"
    finally:
        sock.close()
    # The others are still served.
    assert await _race(herd, rounds=5, client=b"after-silence") == []
