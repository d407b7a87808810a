"""Profile one herd server under load: where does Hill's CPU go?

    python -m bench.profile --impl trio --workload iamat --clients 100 --seconds 10

Starts the five servers of one implementation (as the bench does, at
``--log-level warning`` unless told otherwise), puts a closed-loop load on
Hill, and samples Hill with ``py-spy record`` for ``--seconds``. Writes, in
``--out`` (default ``bench/results/profiles``):

* ``hill-WORKLOAD-IMPL.folded``: py-spy's collapsed stacks (``--format raw``),
  the evidence: any flame-graph tool reads it;
* ``hill-WORKLOAD-IMPL.txt``: a summary made from it: the share of samples
  in each part of the server (the shared core, the I/O layer, the event
  loop, logging, system calls...) and the functions with the most samples
  of their own, with the command that made it.

py-spy must be installed (``pip install py-spy``); it needs to be allowed
to read another process's memory (root, or ptrace permitted).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.impls import IMPLEMENTATIONS
from bench.loadgen import Job
from bench.procs import bench_herd, places_url, start_places_server
from bench.workers import LoadWorkers
from trioherd.core.config import CS131_HERD

#: Where a frame's file puts it: the first matching part, in this order.
PARTS = (
    ("trioherd/core/", "core (shared protocol)"),
    ("trioherd/logs", "logging (ours)"),
    ("logging/", "logging (stdlib)"),
    ("bench/asyncio_herd/", "I/O layer (asyncio)"),
    ("bench/anyio_herd/", "I/O layer (anyio)"),
    ("trioherd/", "I/O layer (trio)"),
    ("trio/", "trio"),
    ("asyncio/", "asyncio"),
    ("uvloop", "uvloop"),
    ("anyio/", "anyio"),
    ("httpx/", "HTTP client"),
    ("httpcore/", "HTTP client"),
    ("h11/", "HTTP client"),
    ("aiohttp/", "HTTP client"),
)


def part_of(frame: str) -> str:
    """The part of the server a py-spy frame (``function (file:line)``) belongs to."""
    for marker, part in PARTS:
        if marker in frame:
            return part
    return "other"


def summarise(folded: Path, command: str, top: int = 25) -> str:
    """The text summary of a collapsed-stack file."""
    own: collections.Counter[str] = collections.Counter()
    parts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf = frames[-1]
        own[leaf] += count
        # The innermost frame of ours or a library's says who spent it; a
        # leaf in C (a system call) counts for the part that called it.
        part = next((part_of(f) for f in reversed(frames) if part_of(f) != "other"), "other")
        if "(" not in leaf:
            part = f"{part}: native"
        parts[part] += count
    lines = [f"# {command}", f"# {total} samples", "", "share of samples by part:"]
    for part, count in parts.most_common():
        lines.append(f"  {100 * count / total:5.1f}%  {part}")
    lines += ["", f"top {top} functions by samples of their own:"]
    for frame, count in own.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {frame}")
    return "\n".join(lines) + "\n"


async def profile(args: argparse.Namespace) -> Path:
    """Run the herd and the load, sample Hill; the collapsed stacks' path."""
    impl = IMPLEMENTATIONS[args.impl]
    out: Path = args.out
    stem = f"hill-{args.workload}-{args.impl}" + ("-logged" if args.log_level == "info" else "")
    with tempfile.TemporaryDirectory(prefix="trioherd-profile-") as scratch:
        workdir = Path(scratch)
        places = None
        url = places_url(9)
        if args.workload == "whatsat":
            places, port = await start_places_server(workdir, (50, 150))
            url = places_url(port)
        herd = bench_herd(impl, CS131_HERD.names, workdir, args.log_level, url)
        try:
            await herd.start_all()
            host, hill_port = herd.address("Hill")
            job: Job = {
                "kind": "closed", "host": host, "port": hill_port, "clients": args.clients,
                "first_slot": 0, "id_prefix": "profile-",
            }  # fmt: skip
            if args.workload == "whatsat":
                job["message"] = "whatsat"
            async with LoadWorkers([job], workdir) as workers:
                await workers.start()
                start_ns = time.monotonic_ns() + 2_000_000_000
                end_ns = start_ns + int((args.seconds + 1) * 1e9)
                await workers.go(start_ns, end_ns)
                await asyncio.sleep(2.0)
                folded = out / f"{stem}.folded"
                spy = await asyncio.create_subprocess_exec(
                    shutil.which("py-spy") or "py-spy", "record", "--pid",
                    str(herd.pids()["Hill"]), "--duration", str(args.seconds), "--rate", "250",
                    "--format", "raw", "--output", str(folded), "--nonblocking",
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )  # fmt: skip
                _, err = await spy.communicate()
                if spy.returncode != 0:
                    raise SystemExit(f"py-spy failed: {err.decode().strip()}")
                await workers.results()
        finally:
            await herd.stop()
            if places is not None:
                await places.stop()
    return folded


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description="Sample Hill with py-spy while a closed-loop load runs against it.",
    )
    parser.add_argument("--impl", default="trio", choices=sorted(IMPLEMENTATIONS))
    parser.add_argument("--workload", default="iamat", choices=("iamat", "whatsat"))
    parser.add_argument("--clients", type=int, default=100, help="closed-loop clients (100)")
    parser.add_argument("--seconds", type=int, default=10, help="sampling time, whole seconds (10)")
    parser.add_argument(
        "--log-level", default="warning", choices=("warning", "info"),
        help="the servers' --log-level (warning)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/profiles"),
        help="where the .folded and .txt files go (bench/results/profiles)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints the profile's summary."""
    args = build_parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    folded = asyncio.run(profile(args))
    summary = folded.with_suffix(".txt")
    command = "python -m bench.profile " + " ".join(sys.argv[1:] if argv is None else argv)
    summary.write_text(summarise(folded, command))
    print(summary.read_text(), end="")
    print(f"written: {summary} and {summary.with_suffix('.folded')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
