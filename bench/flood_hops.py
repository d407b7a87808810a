"""Per-hop times of an unloaded flood, and the system calls of one server forwarding it.

    python -m bench.flood_hops [--impl trioherd] [--count 300] [--gap-ms 5]
                               [--servers Hill,Smith,Campbell]
                               [--strace Smith --strace-out FILE]
                               [--profile Smith --profile-out FILE]

Starts the CS 131 herd (each server its own process) with a probe that is a
neighbour of all five, as the bench's flood workload does, and sends IAMATs
to Hill one at a time, ``--gap-ms`` apart, each with a fresh client ID. The
probe notes when each server's AT line reaches it. ``--servers`` runs only
some of the five, with the links between them: ``Hill,Smith,Campbell`` is
the flood's path with no fan-out. Printed, median and p99 over ``--count``
IAMATs: each server's arrival at the probe after the IAMAT was sent, and
the step along the flood's path Hill -> Smith -> Campbell
(Smith's arrival minus Hill's, Campbell's minus Smith's): what one more
server and one more link cost, the probe's own hop cancelling out.

With ``--strace NAME``, ``strace -f -tt -T`` follows that server for the
whole run (it slows the server, so its figures are not latencies then) and
its output goes to ``--strace-out``: the system calls one forwarded AT line
costs there, line by line. With ``--profile NAME``, ``py-spy record``
samples that server over the timed IAMATs instead, into ``--profile-out``
(collapsed stacks: ``python -m bench.profile --summarise FILE`` sums them up).

Also printed, per IAMAT and per process (each server, and this one, which
is the client and the probe), from the kernel's ``/proc/PID/task/*/schedstat``
over the timed IAMATs: CPU time, time spent runnable but waiting for a CPU,
and time slices (about one per wake-up). The waiting is what the flood's
fan-out costs on a machine with fewer cores than busy processes.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from bench.flood_probe import iamat_round_trip
from bench.procs import Herd, free_ports
from trioherd.core.config import CS131_HERD

PATH = ("Hill", "Smith", "Campbell")
#: Clock ticks a second, the unit of user and system time in ``/proc/PID/stat``.
TICK_NS = 10**9 // os.sysconf("SC_CLK_TCK")


def schedstat(pid: int) -> list[int]:
    """The process's ``schedstat`` figures, summed over its threads, then its
    user and system time (``/proc/PID/stat``, in ticks turned to ns): on CPU
    (ns), waiting to run (ns), time slices, user (ns), system (ns)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = [0, 0, 0, int(stat[11]) * TICK_NS, int(stat[12]) * TICK_NS]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:
            continue  # a thread that just ended
        for i in range(3):
            total[i] += int(fields[i])
    return total


async def measure(
    herd: Herd,
    count: int,
    gap: float,
    strace: str | None,
    strace_out: Path | None,
    sched: dict[str, list[int]],
    profile: tuple[str, Path] | None = None,
) -> tuple[dict[str, list[float]], list[float]]:
    """Per server, IAMAT sent to its AT line at the probe (s); and the round trips.

    ``sched`` receives each process's :func:`schedstat` change over the timed IAMATs.
    """
    arrivals: dict[bytes, dict[str, float]] = {}
    names = set(herd.names)
    wanted = b""
    complete = trio.Event()

    async def probe_link(stream: trio.SocketStream) -> None:
        pending = b""
        server = ""
        async for data in stream:
            stamp = time.perf_counter()
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                fields = line.split()
                if fields[:1] == [b"PEER"]:
                    server = fields[1].decode()
                elif len(fields) == 6 and fields[0] == b"AT":
                    seen = arrivals.setdefault(fields[3], {})
                    seen.setdefault(server, stamp)
                    if fields[3] == wanted and set(seen) >= names:
                        complete.set()

    per_server: dict[str, list[float]] = {name: [] for name in herd.names}
    rtts: list[float] = []
    tracer: subprocess.Popen[bytes] | None = None
    async with trio.open_nursery() as nursery:
        assert herd.probe_port is not None
        await nursery.start(trio.serve_tcp, probe_link, herd.probe_port)
        await herd.start_all()
        stream = await trio.open_tcp_stream(*herd.address("Hill"))
        if strace is not None:
            assert strace_out is not None
            pid = herd.pids()[strace]
            command = ["strace", "-f", "-tt", "-T", "-o", str(strace_out), "-p", str(pid)]
            # Started and stopped once, outside the timed part.
            tracer = subprocess.Popen(command, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
            await trio.sleep(1)  # strace attaches to every thread
        if profile is not None:
            name, out = profile
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            command = [
                spy, "record", "--pid", str(herd.pids()[name]),
                "--rate", "1000", "--format", "raw", "--nonblocking", "--output", str(out),
            ]  # fmt: skip
            tracer = subprocess.Popen(command, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
            await trio.sleep(1)
        pids = {**herd.pids(), "bench": os.getpid()}
        for i in range(count + 20):
            if i == 20:
                before = {name: schedstat(pid) for name, pid in pids.items()}
            wanted = b"hop%d" % i
            complete = trio.Event()
            sent, replied = await iamat_round_trip(stream, wanted)
            with trio.fail_after(10):
                await complete.wait()
            if i >= 20:  # the first few warm up links and caches
                rtts.append(replied - sent)
                for name, stamp in arrivals[wanted].items():
                    if name in per_server:
                        per_server[name].append(stamp - sent)
            await trio.sleep(gap)
        for name, pid in pids.items():
            after = schedstat(pid)
            sched[name] = [a - b for a, b in zip(after, before[name], strict=True)]
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            tracer.wait()
        await stream.aclose()
        nursery.cancel_scope.cancel()
    return per_server, rtts


def _ms(values: Sequence[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms"


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.flood_hops", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--impl", default="trioherd", help="module run as python -m IMPL")
    parser.add_argument("--count", type=int, default=300, help="IAMATs timed (default 300)")
    parser.add_argument(
        "--gap-ms", type=float, default=5.0, help="pause between IAMATs (default 5 ms)"
    )
    parser.add_argument(
        "--servers",
        default=",".join(CS131_HERD.names),
        help="the servers run, of the CS 131 herd (default all five); links to the others "
        "are left out: Hill,Smith,Campbell is the flood's path alone",
    )
    parser.add_argument("--strace", metavar="NAME", help="follow this server with strace")
    parser.add_argument("--strace-out", type=Path, help="where strace's output goes")
    parser.add_argument("--profile", metavar="NAME", help="sample this server with py-spy")
    parser.add_argument("--profile-out", type=Path, help="where py-spy's output goes")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    args = build_parser().parse_args(argv)
    if args.strace and not args.strace_out:
        raise SystemExit("--strace needs --strace-out")
    if args.profile and not args.profile_out:
        raise SystemExit("--profile needs --profile-out")
    profile = (args.profile, args.profile_out) if args.profile else None
    servers = args.servers.split(",")
    with tempfile.TemporaryDirectory() as workdir:
        (probe_port,) = free_ports(1)
        herd = Herd(
            ["-m", args.impl],
            servers,
            Path(workdir),
            options=["--log-level", "warning"],
            probe_port=probe_port,
        )

        sched: dict[str, list[int]] = {}

        async def run() -> tuple[dict[str, list[float]], list[float]]:
            try:
                gap = args.gap_ms / 1000
                return await measure(
                    herd, args.count, gap, args.strace, args.strace_out, sched, profile
                )
            finally:
                await herd.stop()

        per_server, rtts = trio.run(run)
    print(f"{args.impl}: {args.count} IAMATs at Hill, {args.gap_ms} ms apart")
    print(f"  IAMAT round trip at Hill: {_ms(rtts)}")
    for name, values in per_server.items():
        print(f"  {name:9} at the probe: {_ms(values)}")
    for before, after in itertools.pairwise([p for p in PATH if p in per_server]):
        steps = [b - a for a, b in zip(per_server[before], per_server[after], strict=True)]
        print(f"  step {before} -> {after}: {_ms(steps)}")
    print(
        "  per IAMAT (schedstat): CPU µs, waiting for a CPU µs, time slices; "
        "user and system µs (clock ticks: rough below a few thousand IAMATs)"
    )
    totals = [0.0] * 5
    for name, (cpu, wait, slices, user, system) in sched.items():
        figures = [value / args.count for value in (cpu / 1000, wait / 1000, slices)]
        figures += [user / 1000 / args.count, system / 1000 / args.count]
        totals = [t + f for t, f in zip(totals, figures, strict=True)]
        print(
            f"    {name:9} "
            + " ".join(f"{f:7.1f}" if i != 2 else f"{f:6.2f}" for i, f in enumerate(figures))
        )
    print(
        f"    {'all':9} "
        + " ".join(f"{f:7.1f}" if i != 2 else f"{f:6.2f}" for i, f in enumerate(totals))
    )


if __name__ == "__main__":
    main()
