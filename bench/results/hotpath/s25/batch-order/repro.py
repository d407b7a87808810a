"""Trio's batch order and a closed-loop server's latency spread, without the herd.

    python bench/results/hotpath/s25/batch-order/repro.py [--clients 1000]
        [--seconds 4] [--rounds 3] [--work-us 40] [--out FILE]

A model of the herd's request path in some sixty lines of server, on the
standard library and trio alone, so that what it shows cannot come from
the herd's code: each connection's task reads a request, spends
``--work-us`` of CPU on it (the herd's parsing, table and logging), and
hands its reply to one sender task, which writes every pending reply
once a pass (the herd's link sender writing first hops and the replies
held for them). The asyncio server is the same on asyncio's streams.

Servers, each in its own process, measured in turn in every round:

* ``trio``: as above;
* ``trio-strict``: trio's run loop never reverses a batch (it patches a
  private part of trio, as ``bench/trio_noreverse.py`` does);
* ``trio-yield``: one more pass per request (a schedule point after each
  read, as asyncio's read callback then task step);
* ``trio-yield-strict``: both;
* ``asyncio``;
* ``trio-direct``, ``trio-direct-strict``, ``asyncio-direct``: each
  connection's task writes its own reply at once, no sender task (one
  hand-off fewer; not run unless named in ``--servers``);
* ``trio-stream-direct``: the same on trio's own high-level API, as a trio
  user would write it (``trio.serve_listeners``, ``SocketStream``,
  ``send_all``).

A closed-loop client in another process (plain ``selectors``) keeps
``--clients`` connections each with one request in flight and records
every reply's latency for ``--seconds``, from one second after every
connection has had its first reply. Prints one line per
server and round: requests a second, p50, p99, p99/p50, the longest
latency, and how long it took until every connection had been answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import selectors
import socket
import subprocess
import sys
import time

REQUEST = b"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n"
#: How long every connection may take to get its first reply.
WARM_UP_LIMIT_NS = 60_000_000_000
SERVERS = (
    "trio",
    "trio-strict",
    "trio-yield",
    "trio-yield-strict",
    "asyncio",
    "trio-direct",
    "trio-direct-strict",
    "asyncio-direct",
    "trio-stream-direct",
)
#: What the first run compares; the ``-direct`` ones are asked for by name.
DEFAULT_SERVERS = SERVERS[:5]


def spend(work_s: float) -> None:
    """Busy the CPU for ``work_s`` seconds (the herd's work on a request)."""
    end = time.perf_counter() + work_s
    while time.perf_counter() < end:
        pass


def reply_to(line: bytes) -> bytes:
    return b"AT Hill +0.000123 " + line


# --- the trio server -------------------------------------------------------


def serve_trio(listener: socket.socket, work_s: float, extra_pass: bool, direct: bool) -> None:
    import trio

    pending: list[tuple[socket.socket, bytes]] = []
    wake = trio.Event()

    async def sender() -> None:
        nonlocal wake
        while True:
            await wake.wait()
            wake = trio.Event()
            batch = pending[:]
            pending.clear()
            for sock, data in batch:
                # Replies are small: the socket takes them whole.
                with contextlib.suppress(OSError):
                    sock.send(data)

    async def connection(sock: socket.socket) -> None:
        buffer = b""
        with sock:
            while True:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(sock)
                    continue
                if not data:
                    return
                if extra_pass:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                buffer += data
                while b"\n" in buffer:
                    line, _, buffer = buffer.partition(b"\n")
                    spend(work_s)
                    if direct:
                        sock.send(reply_to(line + b"\n"))
                        continue
                    pending.append((sock, reply_to(line + b"\n")))
                    wake.set()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            while True:
                await trio.lowlevel.wait_readable(listener)
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    nursery.start_soon(connection, sock)

    trio.run(main)


def serve_trio_streams(listener: socket.socket, work_s: float) -> None:
    import trio

    async def connection(stream: trio.SocketStream) -> None:
        buffer = b""
        async for data in stream:
            buffer += data
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                spend(work_s)
                await stream.send_all(reply_to(line + b"\n"))

    async def main() -> None:
        listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(listener))]
        await trio.serve_listeners(connection, listeners)

    trio.run(main)


# --- the asyncio server ----------------------------------------------------


def serve_asyncio(listener: socket.socket, work_s: float, direct: bool) -> None:
    async def main() -> None:
        pending: list[tuple[asyncio.StreamWriter, bytes]] = []
        wake = asyncio.Event()

        async def sender() -> None:
            while True:
                await wake.wait()
                wake.clear()
                batch = pending[:]
                pending.clear()
                for writer, data in batch:
                    writer.write(data)

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                line = await reader.readline()
                if not line:
                    writer.close()
                    return
                spend(work_s)
                if direct:
                    writer.write(reply_to(line))
                    continue
                pending.append((writer, reply_to(line)))
                wake.set()

        task = asyncio.create_task(sender())
        server = await asyncio.start_server(connection, sock=listener, backlog=4096)
        async with server:
            await server.serve_forever()
        task.cancel()

    asyncio.run(main())


def serve(kind: str, work_s: float) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    if kind == "trio-stream-direct":
        serve_trio_streams(listener, work_s)
        return
    direct = kind.endswith("-direct") or "-direct-" in kind
    if kind.startswith("asyncio"):
        serve_asyncio(listener, work_s, direct)
        return
    if kind.endswith("strict"):
        import trio._core._run as trio_run

        class NeverReverse(random.Random):
            def random(self) -> float:
                return 1.0

        # unrolled_run reverses the batch when _r.random() < 0.5.
        trio_run._r = NeverReverse()
    serve_trio(listener, work_s, extra_pass="yield" in kind, direct=direct)


# --- the closed-loop client ------------------------------------------------


def load(port: int, clients: int, seconds: float) -> dict[str, float]:
    """Closed-loop load; latencies of the ``seconds`` after a warm-up.

    The warm-up lasts until every connection has had a reply (so that a
    server slow to accept a thousand connections is measured in its steady
    state, not while some wait to be accepted), then one second more.
    """
    selector = selectors.EpollSelector()
    sent_at: dict[int, int] = {}
    socks: dict[int, socket.socket] = {}
    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        socks[sock.fileno()] = sock
    start = time.perf_counter_ns()
    give_up = start + WARM_UP_LIMIT_NS
    warm_until: int | None = None
    for fd, sock in socks.items():
        sent_at[fd] = time.perf_counter_ns()
        sock.send(REQUEST)
    latencies: list[int] = []
    buffers: dict[int, bytes] = {}
    answered: set[int] = set()
    now = start
    while warm_until is None or now < warm_until + int(seconds * 1e9):
        if warm_until is None and now > give_up:
            raise SystemExit(f"{len(answered)} of {clients} connections answered in 60 s")
        for key, _ in selector.select(timeout=1.0):
            fd = key.fd
            sock = socks[fd]
            data = buffers.get(fd, b"") + sock.recv(65536)
            if not data:
                raise SystemExit("the server closed a connection")
            now = time.perf_counter_ns()
            replies = data.count(b"\n")
            buffers[fd] = data[data.rfind(b"\n") + 1 :]
            for _ in range(replies):
                if warm_until is not None and now >= warm_until:
                    latencies.append(now - sent_at[fd])
                sent_at[fd] = now
                sock.send(REQUEST)
            if warm_until is None and replies:
                answered.add(fd)
                if len(answered) == clients:
                    warm_until = now + 1_000_000_000
        now = time.perf_counter_ns()
    for sock in socks.values():
        sock.close()
    latencies.sort()
    count = len(latencies)
    return {
        "requests_per_s": count / seconds,
        "p50_ms": latencies[count // 2] / 1e6,
        "p99_ms": latencies[count * 99 // 100] / 1e6,
        "max_ms": latencies[-1] / 1e6,
        "warm_up_s": ((warm_until or now) - start) / 1e9 - 1,
    }


def measure(kind: str, args: argparse.Namespace) -> dict[str, float]:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--work-us", str(args.work_us)],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        if not port.isdigit():
            raise SystemExit(f"{kind}: the server did not start")
        return load(int(port), args.clients, args.seconds)
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-us", type=float, default=40.0)
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS))
    parser.add_argument("--out", help="write every record here as JSON")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # A thousand connections need more descriptors than the usual 1,024.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.serve:
        serve(args.serve, args.work_us / 1e6)
        return
    servers = args.servers.split(",")
    unknown = set(servers) - set(SERVERS)
    if unknown or args.clients < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error(f"servers from {','.join(SERVERS)}; counts and seconds positive")
    records = []
    print(
        f"{'server':<18} {'round':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'p99/p50':>7} {'max ms':>7} {'all answered s':>14}"
    )
    for round_ in range(1, args.rounds + 1):
        for kind in servers:
            record = {"server": kind, "round": round_, **measure(kind, args)}
            records.append(record)
            print(
                f"{kind:<18} {round_:>5} {record['requests_per_s']:>8.0f} "
                f"{record['p50_ms']:>7.1f} {record['p99_ms']:>7.1f} "
                f"{record['p99_ms'] / record['p50_ms']:>7.2f} {record['max_ms']:>7.0f} "
                f"{record['warm_up_s']:>14.2f}",
                flush=True,
            )
    if args.out:
        with open(args.out, "w") as out:
            json.dump({"command": sys.argv, "records": records}, out, indent=1)


if __name__ == "__main__":
    main()
