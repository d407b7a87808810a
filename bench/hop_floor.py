"""The floor of a relay hop on this machine: chains of relay processes on loopback.

    python -m bench.hop_floor [--kinds c,python,asyncio-protocol,asyncio,trio]
                              [--relays 0,1,2,3] [--count 3000] [--rounds 3]
                              [--gap-us 0] [--out FILE]

A flood from Hill to Campbell, as the bench's flood workload times it, is
client -> Hill -> Smith -> Campbell -> probe: four TCP links and three server
processes, each woken by a line, passing it on. This builds the same shape
with nothing in it but the passing on: the driver (client and probe in one
process, one clock, as in the bench) sends one line, a chain of R relay
processes forwards it over persistent TCP connections (TCP_NODELAY), and the
driver reads it back from the last one; then the next line. R = 0 is the
driver writing to itself over one connection.

Relay kinds, fastest first:

* ``c``: a C program compiled here at run time with the system's ``cc``
  (blocking ``recv``/``send`` loop): the floor with no Python in it;
* ``python``: the same loop in Python on blocking sockets;
* ``python-epoll``: the same, but waiting in ``epoll_wait`` before each
  ``recv``, as every event loop does: what the loop's way of waiting costs
  with no loop around it;
* ``asyncio-protocol``: an ``asyncio.Protocol`` whose ``data_received``
  writes to the next transport;
* ``asyncio``: streams, ``readline`` then ``write`` and ``drain``;
* ``trio``: ``trio.SocketStream``, split into lines, ``send_all`` each.

Every relay is idle between lines (blocked in the kernel), as a herd server
is between IAMATs of the unloaded flood, so each hop pays a wake-up.
``--gap-us`` waits that long (busy, in the driver) between lines, to see
whether a longer idle spell costs more. Rounds interleave: every kind and
chain length once, then again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"
KINDS = ("c", "python", "python-epoll", "asyncio-protocol", "asyncio", "trio")

C_RELAY = r"""
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    int next = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(next, (struct sockaddr *)&addr, sizeof addr) < 0) return 1;
    nodelay(next);
    int lst = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_port = 0;
    if (bind(lst, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lst, 1) < 0) return 1;
    socklen_t len = sizeof addr;
    getsockname(lst, (struct sockaddr *)&addr, &len);
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    int conn = accept(lst, NULL, NULL);
    if (conn < 0) return 1;
    nodelay(conn);
    static char buf[65536];
    for (;;) {
        ssize_t got = recv(conn, buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;
        for (ssize_t off = 0; off < got;) {
            ssize_t sent = send(next, buf + off, (size_t)(got - off), 0);
            if (sent < 0) {
                if (errno == EINTR) continue;
                return 1;
            }
            off += sent;
        }
    }
}
"""


# -- relays (each runs as ``python -m bench.hop_floor relay KIND NEXT_PORT``) --


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _listener() -> socket.socket:
    lst = socket.socket()
    lst.bind((HOST, 0))
    lst.listen(1)
    return lst


def _ready(port: int) -> None:
    # The driver reads this line, then connects (or lets the previous relay connect).
    print(port, flush=True)


def relay_python(next_port: int) -> None:
    """Blocking sockets, a tight recv/sendall loop: the fastest Python relay."""
    out = _connect(next_port)
    lst = _listener()
    _ready(lst.getsockname()[1])
    conn, _ = lst.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    recv, sendall = conn.recv, out.sendall
    while data := recv(65536):
        sendall(data)


def relay_python_epoll(next_port: int) -> None:
    """As :func:`relay_python`, but each read waits in ``epoll_wait`` first."""
    out = _connect(next_port)
    lst = _listener()
    _ready(lst.getsockname()[1])
    conn, _ = lst.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    poller = select.epoll()
    poller.register(conn.fileno(), select.EPOLLIN)
    recv, sendall, poll = conn.recv, out.sendall, poller.poll
    while True:
        poll()
        data = recv(65536)
        if not data:
            return
        sendall(data)


class _Forward(asyncio.Protocol):
    """Writes whatever arrives to the next relay's transport."""

    def __init__(self, out: asyncio.Transport, done: asyncio.Future[None]) -> None:
        self.out = out
        self.done = done

    def data_received(self, data: bytes) -> None:
        self.out.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def relay_asyncio_protocol(next_port: int) -> None:
    """``asyncio.Protocol`` callbacks: asyncio at its fastest."""
    loop = asyncio.get_running_loop()
    out, _ = await loop.create_connection(asyncio.Protocol, HOST, next_port)
    out.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done: asyncio.Future[None] = loop.create_future()
    server = await loop.create_server(lambda: _Forward(out, done), HOST, 0)
    _ready(server.sockets[0].getsockname()[1])
    await done


async def relay_asyncio(next_port: int) -> None:
    """asyncio streams: read a line, write it on."""
    _, out = await asyncio.open_connection(HOST, next_port)
    out.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            out.write(line)
            await out.drain()
        done.set()

    server = await asyncio.start_server(handle, HOST, 0)
    _ready(server.sockets[0].getsockname()[1])
    await done.wait()


async def relay_trio(next_port: int) -> None:
    """trio streams: read, split into lines, ``send_all`` each."""
    import trio

    out = await trio.open_tcp_stream(HOST, next_port)  # TCP_NODELAY is trio's default
    (listener,) = await trio.open_tcp_listeners(0, host=HOST)
    _ready(listener.socket.getsockname()[1])
    stream = await listener.accept()
    pending = bytearray()
    async for data in stream:
        pending += data
        while (end := pending.find(b"\n")) >= 0:
            line = bytes(pending[: end + 1])
            del pending[: end + 1]
            await out.send_all(line)


def run_relay(kind: str, next_port: int) -> None:
    """One relay process of ``kind`` (not ``c``: that one is its own program)."""
    if kind == "python":
        relay_python(next_port)
    elif kind == "python-epoll":
        relay_python_epoll(next_port)
    elif kind == "asyncio-protocol":
        asyncio.run(relay_asyncio_protocol(next_port))
    elif kind == "asyncio":
        asyncio.run(relay_asyncio(next_port))
    elif kind == "trio":
        import trio

        trio.run(relay_trio, next_port)
    else:
        raise SystemExit(f"unknown relay kind {kind!r}")


# -- the driver --


def build_c_relay(workdir: Path) -> Path | None:
    """The C relay, compiled into ``workdir``; None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source = workdir / "relay.c"
    source.write_text(C_RELAY)
    binary = workdir / "relay"
    subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def start_relay(
    kind: str, next_port: int, c_relay: Path | None
) -> tuple[subprocess.Popen[str], int]:
    """Start one relay that forwards to ``next_port``; it and the port it listens on."""
    if kind == "c":
        if c_relay is None:
            raise RuntimeError("no C compiler: the c relay cannot be built")
        command = [str(c_relay), str(next_port)]
    else:
        command = [sys.executable, "-m", "bench.hop_floor", "relay", kind, str(next_port)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip():
        proc.kill()
        raise RuntimeError(f"{kind} relay did not start")
    return proc, int(line)


def spin(ns: int) -> None:
    """Wait ``ns`` nanoseconds without sleeping (the driver stays on its CPU)."""
    until = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < until:
        pass


def schedstat(pid: int) -> tuple[int, int]:
    """A process's time on a CPU and time runnable but waiting for one (ns)."""
    cpu = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "schedstat").read_text().split()
        cpu += int(fields[0])
        wait += int(fields[1])
    return cpu, wait


def time_chain(
    kind: str, relays: int, count: int, warmup: int, gap_ns: int, c_relay: Path | None
) -> tuple[list[int], float, float]:
    """Nanoseconds from send to arrival for ``count`` lines through ``relays`` relays.

    Also the relays' CPU time and time waiting for a CPU, in µs per line,
    summed over the chain (from the kernel's ``schedstat``).
    """
    sink = _listener()
    procs: list[subprocess.Popen[str]] = []
    try:
        port = sink.getsockname()[1]
        for _ in range(relays):  # from the last relay back to the first
            proc, port = start_relay(kind, port, c_relay)
            procs.append(proc)
        client = _connect(port)
        inbound, _ = sink.accept()
        inbound.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times: list[int] = []
        recv, send = inbound.recv, client.sendall
        clock = time.perf_counter_ns
        cpu = wait = 0
        for i in range(warmup + count):
            if i == warmup:
                for proc in procs:
                    cpu_before, wait_before = schedstat(proc.pid)
                    cpu -= cpu_before
                    wait -= wait_before
            line = b"AT Hill +0.000123456 floor%d +34.068930-118.445127 1700000000.000000000\n" % i
            if gap_ns:
                spin(gap_ns)
            start = clock()
            send(line)
            got = recv(4096)
            while not got.endswith(b"\n"):
                got += recv(4096)
            if i >= warmup:
                times.append(clock() - start)
            if got != line:
                raise RuntimeError(f"{kind}: {got!r} arrived for {line!r}")
        for proc in procs:
            cpu_after, wait_after = schedstat(proc.pid)
            cpu += cpu_after
            wait += wait_after
        client.close()
        inbound.close()
        return times, cpu / 1000 / count, wait / 1000 / count
    finally:
        sink.close()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def summary(times: Sequence[int]) -> dict[str, float]:
    """Median and p99 (nearest rank) in milliseconds."""
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"median_ms": statistics.median(ordered) / 1e6, "p99_ms": p99 / 1e6}


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.hop_floor", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"relay kinds, from {','.join(KINDS)}"
    )
    parser.add_argument("--relays", default="0,1,2,3", help="chain lengths (default 0,1,2,3)")
    parser.add_argument("--count", type=int, default=3000, help="lines timed per chain")
    parser.add_argument("--warmup", type=int, default=100, help="lines sent first, not timed")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--gap-us", type=int, default=0, help="busy wait in the driver between lines (µs)"
    )
    parser.add_argument("--out", type=Path, help="write every round's figures here as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point (and the relays' ``relay KIND PORT``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["relay"]:
        run_relay(argv[1], int(argv[2]))
        return
    args = build_parser().parse_args(argv)
    kinds = args.kinds.split(",")
    chain_lengths = [int(n) for n in args.relays.split(",")]
    runs: list[dict[str, object]] = []
    started = time.time()
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as workdir:
        c_relay = build_c_relay(Path(workdir)) if "c" in kinds else None
        for round_ in range(args.rounds):
            order = kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]
            for kind in order:
                for relays in chain_lengths:
                    times, cpu, wait = time_chain(
                        kind, relays, args.count, args.warmup, args.gap_us * 1000, c_relay
                    )
                    figures = {**summary(times), "relays_cpu_us": cpu, "relays_wait_us": wait}
                    runs.append({"round": round_, "kind": kind, "relays": relays, **figures})
                    print(
                        f"round {round_} {kind:17} relays={relays} "
                        f"median {figures['median_ms']:.3f} ms p99 {figures['p99_ms']:.3f} ms "
                        f"relays' CPU {cpu:.1f} µs, waiting {wait:.1f} µs per line",
                        file=sys.stderr,
                    )
            loads.append(os.getloadavg()[0])
    print(
        f"{args.count} lines per chain, one at a time, {args.rounds} rounds, "
        f"gap {args.gap_us} µs; load average (1 min) {min(loads):.2f}-{max(loads):.2f}"
    )
    print(
        "median of rounds, ms (each round's median in brackets); p99: median of rounds;\n"
        "CPU, wait: the chain's relays together, µs per line, median of rounds"
    )
    for kind in kinds:
        for relays in chain_lengths:
            mine = [r for r in runs if r["kind"] == kind and r["relays"] == relays]
            medians = [float(str(r["median_ms"])) for r in mine]
            p99s = [float(str(r["p99_ms"])) for r in mine]
            cpus = [float(str(r["relays_cpu_us"])) for r in mine]
            waits = [float(str(r["relays_wait_us"])) for r in mine]
            spread = " ".join(f"{m:.3f}" for m in medians)
            print(
                f"  {kind:17} relays={relays}: median {statistics.median(medians):.3f} "
                f"[{spread}]  p99 {statistics.median(p99s):.3f}  "
                f"CPU {statistics.median(cpus):5.1f}  wait {statistics.median(waits):5.1f}"
            )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "command": "python -m bench.hop_floor " + " ".join(argv),
                    "started": started,
                    "load_average_1min": loads,
                    "runs": runs,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
