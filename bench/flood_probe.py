"""IAMAT round trip at Hill and flood time to Campbell, on loopback.

    python -m bench.flood_probe [--impl trioherd] [--count 500]

Starts the CS 131 herd, each server its own process, plus a probe that joins
the herd as a neighbour of Campbell only: Campbell's outbound link connects
to the probe, so an AT line reaching the probe has reached Campbell (two hops
from Hill) and then crossed one more link. Sends IAMATs to Hill one at a
time on one persistent connection and reports, median and p99:

* round trip: IAMAT sent to AT reply read, at Hill;
* flood: IAMAT sent to its AT line read by the probe (an upper bound on the
  time until Campbell holds it).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from trioherd.core.config import CS131_HERD


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _config(ports: dict[str, int]) -> str:
    lines = []
    for server in CS131_HERD.servers:
        peers = [*server.peers, *(["Probe"] if server.name == "Campbell" else [])]
        quoted = ", ".join(f'"{p}"' for p in peers)
        lines += [f"[servers.{server.name}]", f"port = {ports[server.name]}", f"peers = [{quoted}]"]
    lines += ["[servers.Probe]", f"port = {ports['Probe']}"]
    return "\n".join(lines) + "\n"


async def _wait_for(port: int) -> None:
    with trio.fail_after(20):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.02)
                continue
            await stream.aclose()
            return


def start_herd(impl: str, workdir: Path) -> tuple[dict[str, int], list[subprocess.Popen[bytes]]]:
    """The CS 131 herd plus a Probe neighbour of Campbell, one process per server."""
    names = [*CS131_HERD.names, "Probe"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    config = workdir / "herd.toml"
    config.write_text(_config(ports))
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                impl,
                name,
                "--config",
                str(config),
                "--log-dir",
                str(workdir / "logs"),
                "--log-level",
                "warning",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        for name in CS131_HERD.names
    ]
    return ports, processes


async def measure(ports: dict[str, int], count: int) -> tuple[list[float], list[float]]:
    """Round-trip and flood times, in seconds, for ``count`` IAMATs."""
    arrivals: dict[bytes, float] = {}
    arrived = trio.Event()
    wanted = b""

    async def probe_link(stream: trio.SocketStream) -> None:
        pending = b""
        async for data in stream:
            stamp = time.perf_counter()
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                fields = line.split()
                if len(fields) == 6 and fields[0] == b"AT":
                    arrivals.setdefault(fields[3], stamp)
                    if fields[3] == wanted:
                        arrived.set()

    rtts: list[float] = []
    floods: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_tcp, probe_link, ports["Probe"])
        for name in CS131_HERD.names:
            await _wait_for(ports[name])
        stream = await trio.open_tcp_stream("127.0.0.1", ports["Hill"])
        for i in range(count + 20):
            wanted = b"probe%d" % i
            arrived = trio.Event()
            now = time.time_ns()
            message = b"IAMAT %s +34.068930-118.445127 %d.%09d\n" % (
                wanted,
                now // 10**9,
                now % 10**9,
            )
            sent = time.perf_counter()
            await stream.send_all(message)
            reply = b""
            while not reply.endswith(b"\n"):
                reply += await stream.receive_some(4096)
            replied = time.perf_counter()
            with trio.fail_after(10):
                await arrived.wait()
            if i >= 20:  # the first few warm up links and caches
                rtts.append(replied - sent)
                floods.append(arrivals[wanted] - sent)
        await stream.aclose()
        nursery.cancel_scope.cancel()
    return rtts, floods


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms"


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", default="trioherd", help="module run as python -m IMPL")
    parser.add_argument("--count", type=int, default=500, help="IAMATs to time (default 500)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        ports, processes = start_herd(args.impl, Path(workdir))
        try:
            rtts, floods = trio.run(measure, ports, args.count)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)
    print(f"{args.impl}: {args.count} IAMATs at Hill, each server its own process")
    print(f"  IAMAT round trip at Hill:   {_ms(rtts)}")
    print(f"  flood Hill -> Campbell (+1 link to the probe): {_ms(floods)}")


if __name__ == "__main__":
    main()
