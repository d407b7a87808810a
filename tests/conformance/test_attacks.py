"""Issue 12's attacks, against running servers of each implementation, on loopback.

Every attack is bounded in count and time and stops by itself; each ends
with SIGTERM, which must end the server with status 0 within the grace
period (1 s) plus a second, whatever the attackers are doing.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from bench.procs import Herd
from trioherd.core.link import LinkProtocol
from trioherd.core.state import ServerState

from processes import PER_LOOP, with_anyio_on
from support import WAIT, eventually, talk, whatsat_line

UCLA = b"+34.068930-118.445127"
SECRET = b"a herd secret for the attack tests"
#: SIGTERM must end a server soon after its grace period (SHUTDOWN_GRACE,
#: 1 s), whatever its clients do: a server that waited on a client would
#: take WAIT. Two seconds of margin, not one: on a loaded CI machine a
#: process's exit alone has taken over a second (a stop measured at 2.12 s
#: once, at load 6); the timing is not what these tests measure.
STOP_WITHIN = 3.0


def now() -> bytes:
    return b"%d" % time.time()


def rss_bytes(pid: int) -> int:
    """A process's resident set, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


ATTACKED = [*PER_LOOP, "bench.asyncio_herd.protocol"]


@pytest.fixture(params=ATTACKED)
def implementation(request: pytest.FixtureRequest) -> str:
    """One implementation per event loop, and the asyncio herd on protocols.

    The protocol variant keeps its own backpressure, timers and refusals
    (bench/asyncio_herd/protocol.py), so it is attacked too; tests that
    take the anyio herd as well name it with :func:`with_anyio_on`.
    """
    return str(request.param)


async def stops_in_time(processes: Herd, name: str) -> float:
    """SIGTERM server ``name``; assert it exits 0 in time; return how long it took."""
    process = processes.servers.pop(name)
    process.signal(signal.SIGTERM)
    started = time.monotonic()
    with trio.fail_after(WAIT):
        assert await process.exited() == 0
    took = time.monotonic() - started
    assert took < STOP_WITHIN, f"SIGTERM took {took:.2f} s"
    return took


async def connect(address: tuple[str, int], source: str = "127.0.0.1") -> trio.socket.SocketType:
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect(address)
    return sock


async def send_what_fits(sock: trio.socket.SocketType, data: bytes) -> int:
    """Send as much of ``data`` as the connection takes within a moment, without reading."""
    sent = 0
    with trio.move_on_after(0.5):
        while sent < len(data):
            sent += await sock.send(data[sent : sent + 65536])
    return sent


async def closed_by_server(sock: trio.socket.SocketType) -> bool:
    """Whether the server has closed ``sock`` (EOF or reset), waiting boundedly."""
    with trio.move_on_after(WAIT):
        try:
            while await sock.recv(65536):
                pass
        except OSError:
            pass
        return True
    return False


@asynccontextmanager
async def sockets() -> AsyncIterator[list[trio.socket.SocketType]]:
    held: list[trio.socket.SocketType] = []
    try:
        yield held
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("implementation", with_anyio_on("asyncio", ATTACKED))
async def test_pipelined_whatsats_never_read_cost_little_and_block_nobody(
    processes: Herd,
) -> None:
    await processes.start("Hill", "--log-level", "warning")
    hill = processes.address("Hill")
    pid = processes.servers["Hill"].pid
    await talk(hill, b"IAMAT w " + UCLA + b" " + now() + b"\n")
    # Warm: the offline Places index loaded and one WHATSAT answered.
    assert (await talk(hill, b"WHATSAT w 50 20\n")).startswith(b"AT Hill")
    before = rss_bytes(pid)
    cpu_before = cpu_ticks(pid)
    flood = b"WHATSAT w 50 20\n" * (65536 // 16)
    async with sockets() as attackers:
        for _ in range(50):
            attackers.append(await connect(hill))
        async with trio.open_nursery() as nursery:
            for sock in attackers:
                nursery.start_soon(send_what_fits, sock, flood)
        # Each attacker costs the server one exchange of WHATSATs and what
        # the socket buffers take before its writes block: bounded work,
        # one or two seconds of CPU for all fifty. The heavy pieces of it
        # (a full read, a WHATSAT's answer) take turns, one per pass of the
        # event loop (trioherd/turns.py), so a fresh client is answered
        # early in the burst, not after it. Measured in the server's CPU
        # time, not in seconds: the machine may be shared.
        started = time.monotonic()
        assert (await talk(hill, b"IAMAT fresh %s %s\n" % (UCLA, now()))).startswith(b"AT Hill")
        during = time.monotonic() - started
        cpu_answered = cpu_ticks(pid) - cpu_before
        await at_rest(pid)
        cpu_burst = cpu_ticks(pid) - cpu_before
        if "anyio" not in processes.label:
            # The anyio herd has no CPU turns (bench/anyio_herd/NOTES.md):
            # its fresh client waits for the burst, as the others did.
            assert cpu_answered < cpu_burst / 2, (cpu_answered, cpu_burst, during)
        waits = []
        for n in range(5):
            started = time.monotonic()
            reply = await talk(hill, b"IAMAT fresh%d %s %s\n" % (n, UCLA, now()))
            waits.append(time.monotonic() - started)
            assert reply.startswith(b"AT Hill ")
        grown = rss_bytes(pid) - before
        # 100 ms is the target; the machine is shared, so the median of
        # five must meet it and every one must be within a second.
        assert sorted(waits)[2] < 0.1, (during, waits)
        assert max(waits) < 1.0, (during, waits)
        assert grown < 100 * 2**20, f"{grown / 2**20:.0f} MB"
        await stops_in_time(processes, "Hill")


async def pipeline(address: tuple[str, int], payload: bytes) -> bytes:
    """Send ``payload`` while reading the replies, as a client must; return them.

    A client that sent it all before reading would stall: past a few
    hundred kilobytes of unread replies the server stops reading it.
    """
    stream = await trio.open_tcp_stream(*address)
    chunks = []
    async with stream:

        async def send() -> None:
            await stream.send_all(payload)
            await stream.send_eof()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            while chunk := await stream.receive_some(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def cpu_ticks(pid: int) -> int:
    """The CPU time process ``pid`` has used, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def at_rest(pid: int) -> None:
    """Wait (bounded) until process ``pid`` uses no CPU for a while."""

    async def resting() -> bool:
        # Not a tick of CPU in half a second: on a loaded machine a busy
        # process still gets a few.
        before = cpu_ticks(pid)
        await trio.sleep(0.5)
        return cpu_ticks(pid) == before

    await eventually(resting, f"process {pid} to finish its work")


@pytest.mark.parametrize("implementation", with_anyio_on("trio", ATTACKED))
async def test_forged_and_replayed_peers_are_refused_with_a_secret(
    processes: Herd, tmp_path: Path
) -> None:
    if processes.label == "bench.asyncio_herd.protocol":
        pytest.skip("its peer links and handshake are those of bench.asyncio_herd")
    secret_file = tmp_path / "herd.secret"
    secret_file.write_bytes(SECRET + b"\n")
    for name in ("Hill", "Smith"):
        await processes.start(name, "--herd-secret-file", str(secret_file))
    smith = processes.address("Smith")
    # The real links prove themselves: an update floods from Hill to Smith.
    reply = await talk(processes.address("Hill"), b"IAMAT real " + UCLA + b" " + now() + b"\n")

    async def flooded() -> bool:
        return await whatsat_line(smith, b"real") == reply.rstrip(b"\n")

    await eventually(flooded, "Hill's update at Smith")
    forged_at = b"AT Hill +0.000000001 victim +89.999999+000.000001 %s\n" % now()
    hellos = [b"PEER Hill 1\n", b"PEER Hill 1 auth=anything\n"]
    hellos += [b"PEER Hill 1 nonce=%032x\nPROOF %064x\n" % (n, n) for n in range(98)]
    async with trio.open_nursery() as nursery:
        for hello in hellos:
            nursery.start_soon(talk, smith, hello + forged_at)
    # A handshake recorded from a real initiator (we know the secret here)
    # and replayed on a new connection.
    initiator = LinkProtocol(ServerState("Hill", ["Smith"], secret=SECRET), "Smith")
    hello = initiator.connected()
    async with sockets() as held:
        held.append(await connect(smith))
        await held[0].send(hello)
        with trio.fail_after(WAIT):
            answer = await held[0].recv(4096)
        initiator.receive(answer)
        proof = initiator.take()
        assert proof.startswith(b"PROOF ")
    replayed = await talk(smith, hello + proof + forged_at)
    assert replayed.endswith(b"? " + proof.split(b"\n")[0] + b"\n")
    assert (await whatsat_line(smith, b"victim")).startswith(b"? WHATSAT")

    # The log reaches its file within 100 ms of the line (trioherd/logs.py).
    async def all_refusals_logged() -> bool:
        log = (processes.log_dir / "Smith.log").read_text()
        return log.count("peer handshake refused") >= len(hellos) + 1

    await eventually(all_refusals_logged, "every refused handshake in Smith's log")
    log = (processes.log_dir / "Smith.log").read_text()
    assert log.count("peer handshake refused") == len(hellos) + 1
    assert "no herd secret" not in log


async def test_the_table_stays_within_its_cap(processes: Herd) -> None:
    if processes.label != "trioherd":
        pytest.skip("the table and its cap are the core's: one implementation proves them")
    # 10,000 clients at about 400 bytes each: 4 MB that would grow to 16 MB
    # if the cap did not hold.
    cap = 10_000
    await processes.start("Hill", "--log-level", "warning", "--max-clients", str(cap))
    hill = processes.address("Hill")
    pid = processes.servers["Hill"].pid
    stamp = now()

    async def store(first: int, count: int) -> None:
        lines = b"".join(
            b"IAMAT c%d %s %s\n" % (n, UCLA, stamp) for n in range(first, first + count)
        )
        with trio.fail_after(3 * WAIT):  # a shared, loaded machine
            reply = await pipeline(hill, lines)
        assert reply.count(b"\n") == count

    await store(0, cap)
    full = rss_bytes(pid)
    for first in range(cap, 4 * cap, cap):
        await store(first, cap)
    # Three times the cap in new IDs later, the table costs what it did full.
    grown = rss_bytes(pid) - full
    assert grown < 5 * 2**20, f"{grown / 2**20:.1f} MB"
    assert (await whatsat_line(hill, b"c0")).startswith(b"? ")
    assert (await whatsat_line(hill, b"c%d" % (4 * cap - 1))).startswith(b"AT Hill ")
    await stops_in_time(processes, "Hill")


@pytest.mark.parametrize("implementation", with_anyio_on("asyncio", ATTACKED))
async def test_idle_and_slow_clients_are_closed_at_their_timeouts(
    processes: Herd,
) -> None:
    await processes.start("Hill", "--idle-timeout", "0.5", "--line-timeout", "1")
    hill = processes.address("Hill")
    async with sockets() as held:
        started = time.monotonic()
        held.append(await connect(hill))
        idle = held[-1]
        held.append(await connect(hill))
        slow = held[-1]
        held.append(await connect(hill))
        busy = held[-1]

        async def drip() -> None:
            # A line that never ends, a byte at a time, well inside the
            # idle timeout: only the line deadline can stop it.
            with trio.move_on_after(3):
                for byte in b"IAMAT slowloris " + UCLA * 100:
                    try:
                        await slow.send(bytes([byte]))
                    except OSError:
                        return  # closed by the server
                    await trio.sleep(0.1)

        async def chatter() -> None:
            # Whole lines, each within the idle timeout: never closed.
            for _ in range(6):
                await busy.send(b"IAMAT busy %s %s\n" % (UCLA, now()))
                assert (await busy.recv(4096)).startswith(b"AT Hill ")
                await trio.sleep(0.2)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drip)
            nursery.start_soon(chatter)
            assert await closed_by_server(idle)
            idle_after = time.monotonic() - started
            assert await closed_by_server(slow)
            slow_after = time.monotonic() - started
        assert 0.45 < idle_after < 2.5, idle_after
        assert 0.9 < slow_after < 3, slow_after
        await stops_in_time(processes, "Hill")


@pytest.mark.parametrize("implementation", with_anyio_on("trio", ATTACKED))
async def test_the_connection_caps_hold_and_another_address_is_served(
    processes: Herd,
) -> None:
    await processes.start("Hill", "--max-connections", "30", "--max-connections-per-address", "20")
    hill = processes.address("Hill")
    async with sockets() as held:
        for _ in range(25):
            held.append(await connect(hill, "127.0.0.2"))
        for sock in held:
            await sock.send(b"IAMAT capped %s %s\n" % (UCLA, now()))
        answered = refused = 0
        for sock in held:
            with trio.fail_after(WAIT):
                try:
                    reply = await sock.recv(4096)
                except OSError:
                    reply = b""
            if reply.startswith(b"AT Hill "):
                answered += 1
            else:
                refused += 1
        assert (answered, refused) == (20, 5)
        # Another address is served while 127.0.0.2 is at its cap.
        fresh = await connect(hill, "127.0.0.3")
        held.append(fresh)
        await fresh.send(b"IAMAT fresh %s %s\n" % (UCLA, now()))
        with trio.fail_after(WAIT):
            assert (await fresh.recv(4096)).startswith(b"AT Hill ")
        # And the overall cap: 21 open, 9 more from a third address fit.
        third = [await connect(hill, "127.0.0.4") for _ in range(12)]
        held.extend(third)
        closed = [await closed_by_server_now(sock) for sock in third]
        assert closed.count(True) == 3
        await stops_in_time(processes, "Hill")


async def closed_by_server_now(sock: trio.socket.SocketType) -> bool:
    """Whether the server closes ``sock`` at once rather than serving it."""
    await sock.send(b"IAMAT probe %s %s\n" % (UCLA, now()))
    with trio.fail_after(WAIT):
        try:
            reply = await sock.recv(4096)
        except OSError:
            return True
    return not reply.startswith(b"AT Hill ")


@pytest.fixture(autouse=True)
def _loopback_only() -> None:
    # Every address these tests connect from or to is on 127.0.0.0/8.
    assert socket.inet_aton("127.0.0.4")[0] == 127
