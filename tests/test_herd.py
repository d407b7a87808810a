"""The trio herd over real loopback sockets, servers in this process."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import trio
import trio.lowlevel

from bench.trio_socketstream import SocketStreams
from trioherd.core.config import CS131_HERD, build_herd
from trioherd.herd import RunningHerd, run_herd
from trioherd.logs import HerdLogs
from trioherd.places import OfflinePlaces
from trioherd.server import HerdServer

from support import (
    WAIT,
    cs131_herd_on,
    eventually,
    free_ports,
    herd_running,
    holds,
    talk,
    whatsat_line,
)

KIWI = b"kiwi.cs.ucla.edu"
UCLA = b"+34.068930-118.445127"


def now() -> bytes:
    seconds, nanos = divmod(time.time_ns(), 10**9)
    return b"%d.%09d" % (seconds, nanos)


async def test_iamat_at_hill_is_answered_and_reaches_campbell(herd: RunningHerd) -> None:
    hill, campbell = herd.addresses["Hill"], herd.addresses["Campbell"]
    sent = now()
    reply = await talk(hill, b"IAMAT %s %s %s\n" % (KIWI, UCLA, sent))
    fields = reply.split()
    assert reply.endswith(b"\n")
    assert reply.count(b"\n") == 1
    assert fields[:2] == [b"AT", b"Hill"]
    assert fields[3:] == [KIWI, UCLA, sent]
    assert fields[2].startswith(b"+")
    at_line = reply.rstrip(b"\n")
    # Campbell is two hops from Hill; every server ends up with the record.
    for name in CS131_HERD.names:
        await eventually(partial(holds, herd.addresses[name], KIWI, at_line), f"{name}: kiwi")
    whatsat = await talk(campbell, b"WHATSAT %s 10 3\n" % KIWI)
    first, _, body = whatsat.partition(b"\n")
    assert first == at_line  # Hill's name and Hill's time difference, not Campbell's
    assert whatsat.endswith(b"\n\n")
    assert not whatsat.endswith(b"\n\n\n")
    places = json.loads(body)
    assert places["status"] == "OK"
    assert 1 <= len(places["results"]) <= 3
    assert b"\n\n" not in body.rstrip(b"\n")


async def test_a_neighbour_asked_right_after_the_reply_already_knows(
    herd: RunningHerd,
) -> None:
    # docs/protocol.md: the first hop of a flood is handed to the peer links before
    # the client's reply is written, so a client that asks a neighbour at once
    # is not racing the flood.
    hill = herd.servers["Hill"]
    await eventually(partial(_links_up, hill), "Hill's links")
    for i in range(20):
        client = b"hasty%d" % i
        reply = await talk(herd.addresses["Hill"], b"IAMAT %s +1+1 %s\n" % (client, now()))
        for name in ("Jaquez", "Smith"):
            assert await whatsat_line(herd.addresses[name], client) == reply.rstrip(b"\n")


async def _links_up(server: HerdServer) -> bool:
    return all(link.connected for link in server.links.values())


async def test_pipelined_messages_are_answered_in_order(herd: RunningHerd) -> None:
    hill = herd.addresses["Hill"]
    payload = (
        b"IAMAT a +10+10 100\n"
        b"WHATSAT a 50 2\n"
        b"bogus line\n"
        b"IAMAT b +20+20 200\n"
        b"WHATSAT b 1 1\n"
        b"WHATSAT nobody 1 1\n"
    )
    reply = await talk(hill, payload)
    chunks = reply.split(b"\n\n")
    lines = chunks[0].split(b"\n")
    assert lines[0].startswith(b"AT Hill ")
    assert lines[0].endswith(b" a +10+10 100")
    assert lines[1] == lines[0]  # the WHATSAT reply's AT line
    json.loads(b"\n".join(lines[2:]))
    rest = chunks[1].split(b"\n")
    assert rest[0] == b"? bogus line"
    assert rest[1].endswith(b" b +20+20 200")
    assert rest[2] == rest[1]
    json.loads(b"\n".join(rest[3:]))
    assert chunks[2] == b"? WHATSAT nobody 1 1\n"


async def test_a_message_split_across_many_reads(herd: RunningHerd) -> None:
    message = b"IAMAT split +1.5-2.5 1621464827.959498503\r\n"
    async with await trio.open_tcp_stream(*herd.addresses["Jaquez"]) as stream:
        for byte in message:
            await stream.send_all(bytes([byte]))
            await trio.lowlevel.checkpoint()
        with trio.fail_after(WAIT):
            reply = await stream.receive_some(1000)
    assert reply.startswith(b"AT Jaquez +")
    assert reply.endswith(b" split +1.5-2.5 1621464827.959498503\n")


async def test_last_line_without_newline_before_eof_is_answered(herd: RunningHerd) -> None:
    reply = await talk(herd.addresses["Smith"], b"IAMAT eof +1+1 5\nIAMAT eof2 +1+1 6")
    lines = reply.splitlines()
    assert len(lines) == 2
    assert lines[1].endswith(b" eof2 +1+1 6")


async def test_stale_and_tied_iamats_are_answered_but_not_stored_or_flooded(
    herd: RunningHerd,
) -> None:
    hill, campbell = herd.addresses["Hill"], herd.addresses["Campbell"]
    first = (await talk(hill, b"IAMAT c +1+1 1000.5\n")).rstrip(b"\n")
    await eventually(partial(holds, campbell, b"c", first), "the first record at Campbell")
    stale = await talk(campbell, b"IAMAT c +2+2 999\n")
    tied = await talk(campbell, b"IAMAT c +3+3 1000.500000000\n")
    assert stale.split()[1:] == [b"Campbell", stale.split()[2], b"c", b"+2+2", b"999"]
    assert tied.split()[4:] == [b"+3+3", b"1000.500000000"]
    # A newer one (at a third server) is the only thing that moves the record.
    newer = (await talk(herd.addresses["Singleton"], b"IAMAT c +4+4 1001\n")).rstrip(b"\n")
    for name in CS131_HERD.names:
        await eventually(partial(holds, herd.addresses[name], b"c", newer), name)
    assert await whatsat_line(hill, b"c") == newer


async def test_an_overlong_line_is_refused_and_the_connection_closed(
    tmp_path: Path, offline_places: OfflinePlaces
) -> None:
    herd = build_herd({"Solo": ("127.0.0.1", 0, [])})
    async with herd_running(herd, ["Solo"], tmp_path, offline_places, max_line=100) as running:
        solo = running.addresses["Solo"]
        reply = await talk(solo, b"IAMAT ok +1+1 5\n" + b"x" * 500 + b"\nIAMAT late +1+1 5\n")
        lines = reply.split(b"\n")
        assert lines[0].startswith(b"AT Solo")
        assert lines[1] == b"? " + b"x" * 100
        assert lines[2:] == [b""]  # closed: the line after it was never read
        # The server itself is fine.
        assert (await talk(solo, b"IAMAT after +1+1 5\n")).startswith(b"AT Solo")


async def test_an_at_line_from_a_client_is_invalid(herd: RunningHerd) -> None:
    line = b"AT Hill +0.100000000 sneaky +1+1 5"
    assert await talk(herd.addresses["Smith"], line + b"\n") == b"? " + line + b"\n"
    assert await whatsat_line(herd.addresses["Smith"], b"sneaky") == b"? WHATSAT sneaky 10 1"


async def test_a_stranger_cannot_join_as_a_peer(herd: RunningHerd) -> None:
    reply = await talk(herd.addresses["Hill"], b"PEER Campbell 1\nAT X +0.000000000 z +1+1 5\n")
    assert reply == b"? PEER Campbell 1\n? AT X +0.000000000 z +1+1 5\n"


async def test_a_restarted_neighbour_catches_up_on_what_it_missed(
    tmp_path: Path, offline_places: OfflinePlaces
) -> None:
    herd = cs131_herd_on(free_ports(5))
    others = [n for n in CS131_HERD.names if n != "Smith"]
    smith = herd["Smith"]
    async with herd_running(herd, others, tmp_path / "others", offline_places) as running:
        hill = running.addresses["Hill"]
        async with herd_running(herd, ["Smith"], tmp_path / "smith1", offline_places):
            before = (await talk(hill, b"IAMAT early +1+1 10\n")).rstrip(b"\n")
            await eventually(partial(holds, (smith.host, smith.port), b"early", before), "Smith")
        # Smith is down (its process would have died: all its state is gone).
        # Updates made meanwhile at Hill, Smith's neighbour, and at Campbell,
        # whose only other route is through Singleton.
        during = (await talk(hill, b"IAMAT during +2+2 20\n")).rstrip(b"\n")
        far = (await talk(running.addresses["Campbell"], b"IAMAT far +3+3 30\n")).rstrip(b"\n")
        async with herd_running(herd, ["Smith"], tmp_path / "smith2", offline_places):
            address = (smith.host, smith.port)
            for client, line in [(b"early", before), (b"during", during), (b"far", far)]:
                await eventually(partial(holds, address, client, line), f"Smith: {client!r}")

        # The log is written at most 100 ms after the fact: wait for it.
        async def hill_logged_the_drop() -> bool:
            log = (tmp_path / "others" / "Hill.log").read_text()
            return "dropped" in log or "closed by" in log

        await eventually(hill_logged_the_drop, "Hill to log the dropped link")


async def test_graceful_stop_closes_idle_connections_and_returns(
    tmp_path: Path, offline_places: OfflinePlaces
) -> None:
    herd = build_herd({"Solo": ("127.0.0.1", 0, [])})
    with HerdLogs(tmp_path, ["Solo"], echo_errors=False) as logs:
        with trio.fail_after(WAIT):
            async with trio.open_nursery() as nursery:
                running: RunningHerd = await nursery.start(
                    partial(run_herd, herd, ["Solo"], offline_places, logs, handle_signals=False)
                )
                async with await trio.open_tcp_stream(*running.addresses["Solo"]) as idle:
                    await idle.send_all(b"IAMAT x +1+1 5\n")
                    assert (await idle.receive_some(100)).startswith(b"AT Solo")
                    running.stop()
                    # The idle connection is closed at once, not after the grace.
                    assert await idle.receive_some(100) == b""
            # ...and run_herd returned by itself: the nursery was not cancelled.
            assert not nursery.cancel_scope.cancelled_caught
    log = (tmp_path / "Solo.log").read_text()
    assert "shutting down" in log
    assert "stopped" in log


async def test_the_herd_on_plain_socket_streams(
    tmp_path: Path, offline_places: OfflinePlaces
) -> None:
    # The bench's factory swaps LeanStream for trio.SocketStream: same behaviour.
    herd = cs131_herd_on([0] * 5)
    with HerdLogs(tmp_path, CS131_HERD.names, echo_errors=False) as logs:
        async with trio.open_nursery() as nursery:
            running: RunningHerd = await nursery.start(
                partial(
                    run_herd, herd, CS131_HERD.names, offline_places, logs,
                    streams=SocketStreams(), handle_signals=False,
                )
            )  # fmt: skip
            reply = await talk(running.addresses["Hill"], b"IAMAT s +1+1 5\nIAMAT t +1+1 5")
            at_line = reply.split(b"\n")[0]
            campbell = running.addresses["Campbell"]
            await eventually(partial(holds, campbell, b"s", at_line), "Campbell")
            nursery.cancel_scope.cancel()
