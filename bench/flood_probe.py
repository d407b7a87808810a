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
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from bench.procs import Herd, free_ports
from trioherd.core.config import CS131_HERD


def probed_herd(impl: str, workdir: Path) -> Herd:
    """The CS 131 herd plus a Probe neighbour of Campbell, one process per server."""
    (probe_port,) = free_ports(1)
    return Herd(
        ["-m", impl],
        CS131_HERD.names,
        workdir,
        options=["--log-level", "warning"],
        probe_port=probe_port,
        probed=["Campbell"],
    )


async def iamat_round_trip(stream: trio.abc.Stream, client: bytes) -> tuple[float, float]:
    """Send one IAMAT for ``client`` stamped now; when it was sent and answered (perf_counter)."""
    now = time.time_ns()
    message = b"IAMAT %s +34.068930-118.445127 %d.%09d\n" % (client, now // 10**9, now % 10**9)
    sent = time.perf_counter()
    await stream.send_all(message)
    reply = b""
    while not reply.endswith(b"\n"):
        reply += await stream.receive_some(4096)
    return sent, time.perf_counter()


async def measure(herd: Herd, count: int) -> tuple[list[float], list[float]]:
    """Start ``herd``; its round-trip and flood times, in seconds, for ``count`` IAMATs."""
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
        assert herd.probe_port is not None
        await nursery.start(trio.serve_tcp, probe_link, herd.probe_port)
        await herd.start_all()
        stream = await trio.open_tcp_stream(*herd.address("Hill"))
        for i in range(count + 20):
            wanted = b"probe%d" % i
            arrived = trio.Event()
            sent, replied = await iamat_round_trip(stream, wanted)
            with trio.fail_after(10):
                await arrived.wait()
            if i >= 20:  # the first few warm up links and caches
                rtts.append(replied - sent)
                floods.append(arrivals[wanted] - sent)
        await stream.aclose()
        nursery.cancel_scope.cancel()
    return rtts, floods


async def run(impl: str, workdir: Path, count: int) -> tuple[list[float], list[float]]:
    """:func:`measure` the probed herd of ``impl``, stopping it whatever happens."""
    herd = probed_herd(impl, workdir)
    try:
        return await measure(herd, count)
    finally:
        await herd.stop()


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms"


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.flood_probe", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--impl", default="trioherd", help="module run as python -m IMPL")
    parser.add_argument("--count", type=int, default=500, help="IAMATs to time (default 500)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        rtts, floods = trio.run(run, args.impl, Path(workdir), args.count)
    print(f"{args.impl}: {args.count} IAMATs at Hill, each server its own process")
    print(f"  IAMAT round trip at Hill:   {_ms(rtts)}")
    print(f"  flood Hill -> Campbell (+1 link to the probe): {_ms(floods)}")


if __name__ == "__main__":
    main()
