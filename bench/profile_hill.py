"""A py-spy profile of Hill under the IAMAT load, for any implementation.

    python -m bench.profile_hill IMPL [--clients 100] [--seconds 10] --out FILE

Starts the five-server herd of ``IMPL`` (a name from ``bench.impls``),
drives the iamat workload's closed loop at Hill from the load generator,
and records Hill with ``py-spy record -f raw`` for ``--seconds``. Writes the
raw (collapsed) stacks to ``FILE.raw`` and to ``FILE`` a summary: the
command, then where Hill's samples were, by the package of the innermost
Python frame (self time: a system call counts where Python called it), and
by the packages anywhere below the herd's own code on the stack (what the
herd's calls into each package cost, all they call included; the run
loop under every task is not counted there).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.impls import IMPLEMENTATIONS
from bench.loadgen import new_event_loop
from bench.procs import bench_herd
from bench.workers import LoadWorkers, merge
from bench.workloads import sleep_until
from trioherd.core.config import CS131_HERD

#: The I/O layers: "below the herd's code" starts at their first frame
#: inside the event loop (the frames before it start the loop).
LAYERS = frozenset({"bench.anyio_herd", "bench.asyncio_herd", "trioherd (trio layer)"})
LOOPS = frozenset({"trio", "asyncio", "uvloop"})
#: Where a frame's file is (py-spy shows paths from sys.path), as a coarse
#: name: the first prefix that matches wins.
PLACES = (
    ("bench/anyio_herd/", "bench.anyio_herd"),
    ("bench/asyncio_herd/", "bench.asyncio_herd"),
    ("trioherd/core/", "trioherd.core (shared)"),
    ("trioherd/", "trioherd (trio layer)"),
    ("anyio/", "anyio"),
    ("trio/", "trio"),
    ("outcome/", "trio"),
    ("uvloop/", "uvloop"),
    ("asyncio/", "asyncio"),
    ("selectors.py", "selectors (epoll registrations)"),
    ("logging/", "logging"),
)
#: How many innermost frames the summary lists.
TOP = 15
_FRAME = re.compile(r"\((?P<file>[^():]+)(?::\d+)?\)$")


def place(frame: str) -> str:
    """The coarse place of one py-spy frame, ``func (file:line)``."""
    match = _FRAME.search(frame)
    path = match["file"] if match else frame
    for prefix, name in PLACES:
        if path.startswith(prefix):
            return name
    return "other (stdlib, sockets, interpreter)"


def summarise(raw: str) -> list[str]:
    """Self and inclusive shares of each place, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    in_anyio: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = stack.split(";")
        total += samples
        places = [place(frame) for frame in frames]
        own[places[-1]] += samples
        loop = next((i for i, name in enumerate(places) if name in LOOPS), len(places))
        first = next(
            (i for i, name in enumerate(places) if i > loop and name in LAYERS), len(places)
        )
        for name in set(places[first:]):
            anywhere[name] += samples
        leaves[frames[-1]] += samples
        below = zip(frames[first:], places[first:], strict=True)
        for function in {frame.split(" (")[0] for frame, name in below if name == "anyio"}:
            in_anyio[function] += samples
    header = f"{'place':40} {'self':>6} {'below the herd':>15}"
    lines = [f"{total} samples", "", header]
    for name in sorted(set(own) | set(anywhere), key=lambda n: -own[n]):
        lines.append(f"{name:40} {own[name] / total:6.1%} {anywhere[name] / total:15.1%}")
    lines += ["", "innermost Python frames (a system call shows as its caller's line):"]
    lines += [f"{samples / total:6.1%}  {frame}" for frame, samples in leaves.most_common(TOP)]
    if in_anyio:
        lines += ["", "anyio's functions below the herd's code, all they call included:"]
        lines += [f"{n / total:6.1%}  {frame}" for frame, n in in_anyio.most_common(TOP)]
    return lines


async def profile(impl_name: str, clients: int, seconds: float, raw_path: Path) -> float:
    """Run the herd and the load, record Hill into ``raw_path``; return IAMATs/s meanwhile."""
    with tempfile.TemporaryDirectory(prefix="trioherd-profile-") as scratch:
        workdir = Path(scratch)
        # IAMAT never asks Places: the URL is never used.
        herd = bench_herd(
            IMPLEMENTATIONS[impl_name],
            CS131_HERD.names,
            workdir,
            "warning",
            "http://127.0.0.1:9/nearby",
        )
        await herd.start_all()
        try:
            host, port = herd.address("Hill")
            job = {"kind": "closed", "host": host, "port": port, "clients": clients}
            async with LoadWorkers([{**job, "first_slot": 0, "id_prefix": "p-"}], workdir) as load:
                await load.start()
                start_ns = time.monotonic_ns() + 1_000_000_000
                await load.go(start_ns, start_ns + int((seconds + 2) * 1e9))
                await sleep_until(start_ns)
                spy = await asyncio.create_subprocess_exec(
                    "py-spy", "record", "-f", "raw", "-d", str(int(seconds)),
                    "--pid", str(herd.pids()["Hill"]), "-o", str(raw_path),
                )  # fmt: skip
                await spy.wait()
                result = merge(await load.results())
                return float(result["completed"] / result["window_s"])
        finally:
            await herd.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_hill")
    parser.add_argument("impl", choices=list(IMPLEMENTATIONS))
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    raw_path = args.out.with_name(args.out.name + ".raw")
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        rate = runner.run(profile(args.impl, args.clients, args.seconds, raw_path))
    command = shlex.join(["python", "-m", "bench.profile_hill", *(argv or sys.argv[1:])])
    load = f"{args.clients} IAMAT clients at Hill: {rate:,.0f} req/s over the load's window"
    summary = [load, *summarise(raw_path.read_text())]
    args.out.write_text("\n".join([f"$ {command}", *summary]) + "\n")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
