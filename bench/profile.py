"""Profile one herd server under load: where does Hill's CPU go?

    python -m bench.profile --impl trio --workload iamat --clients 100 --seconds 10
    python -m bench.profile --summarise FILE...

Starts the five servers of one implementation (as the bench does, at
``--log-level warning`` unless told otherwise), puts a closed-loop load on
Hill (IAMATs, or WHATSATs through our Places server at 50-150 ms), and
samples Hill with ``py-spy record`` for ``--seconds``. Writes, in ``--out``
(default ``bench/results/profiles``):

* ``hill-WORKLOAD-IMPL.folded``: py-spy's collapsed stacks (``--format raw``),
  the evidence: any flame-graph tool reads it;
* ``hill-WORKLOAD-IMPL.txt``: a summary made from it, with the command that
  made it and the load's rate meanwhile: the share of samples in each part
  of the server (the shared core, the I/O layer, the event loop, logging,
  system calls...); by place, each share of samples of its own and of
  those below the herd's code (what the herd's calls into each package
  cost, all they call included); the functions with the most samples of
  their own, and anyio's functions, inclusive, where there are any.

``--summarise`` prints the summary of profiles already recorded: collapsed
stacks (``.folded``, or ``.raw`` from the older ``bench.profile_hill``) or
speedscope files (``.speedscope.json``, from the older ``bench.whatsat_probe
--py-spy``; idle samples left out, shares by package inclusive).

py-spy must be installed (``pip install py-spy``); it needs to be allowed
to read another process's memory (root, or ptrace permitted).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.impls import IMPLEMENTATIONS
from bench.loadgen import Job
from bench.procs import bench_herd, places_url, start_places_server
from bench.workers import LoadWorkers, merge
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
    lines += ["", *by_place(folded.read_text())]
    lines += ["", f"top {top} functions by samples of their own:"]
    for frame, count in own.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {frame}")
    return "\n".join(lines) + "\n"


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
#: How many anyio functions the summary lists.
TOP_ANYIO = 15
_FRAME = re.compile(r"\((?P<file>[^():]+)(?::\d+)?\)$")


def place(frame: str) -> str:
    """The coarse place of one py-spy frame, ``func (file:line)``."""
    match = _FRAME.search(frame)
    path = match["file"] if match else frame
    for prefix, name in PLACES:
        if path.startswith(prefix):
            return name
    return "other (stdlib, sockets, interpreter)"


def by_place(raw: str) -> list[str]:
    """Self and below-the-herd shares of each place, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
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
        below = zip(frames[first:], places[first:], strict=True)
        for function in {frame.split(" (")[0] for frame, name in below if name == "anyio"}:
            in_anyio[function] += samples
    if not total:
        return ["no samples"]
    lines = [f"{'place':40} {'self':>6} {'below the herd':>15}"]
    for name in sorted(set(own) | set(anywhere), key=lambda n: -own[n]):
        lines.append(f"{name:40} {own[name] / total:6.1%} {anywhere[name] / total:15.1%}")
    if in_anyio:
        lines += ["", "anyio's functions below the herd's code, all they call included:"]
        lines += [f"{n / total:6.1%}  {frame}" for frame, n in in_anyio.most_common(TOP_ANYIO)]
    return lines


#: Frames where a thread waits rather than works.
IDLE = re.compile(r"^(select|poll|epoll_wait|_run_once|get_events|wait|acquire)\b")


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for marker in ("trioherd/", "bench/"):
        if path.startswith(marker) or f"/{marker}" in path:
            return marker + path.split(marker, 1)[1]
    if "lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1]
    return path


def summarise_speedscope(document: dict[str, Any], top: int) -> str:
    """The summary of a py-spy speedscope file: busy samples, inclusive by package, self."""
    frames = document["shared"]["frames"]
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for profile in document["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            leaf = frames[stack[-1]]
            if IDLE.match(leaf["name"]) and "site-packages" not in leaf.get("file", ""):
                continue
            total += weight
            self_time[f"{leaf['name']} ({_package(leaf.get('file', '?'))})"] += weight
            for package in {_package(frames[i].get("file", "?")).split("/")[0] for i in stack}:
                inclusive[package] += weight
    lines = [f"busy time sampled: {total:.2f} s", "", "inclusive share by package:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "self time, top functions:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    return "\n".join(lines) + "\n"


async def profile(args: argparse.Namespace) -> tuple[Path, str]:
    """Run the herd and the load, sample Hill; the collapsed stacks' path, and the load's rate."""
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
                result = merge(await workers.results())
                rate = result["completed"] / result["window_s"] if result["window_s"] else 0.0
        finally:
            await herd.stop()
            if places is not None:
                await places.stop()
    load = f"{args.clients} {args.workload.upper()} clients at Hill: {rate:,.0f} req/s meanwhile"
    return folded, load


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
    parser.add_argument(
        "--summarise", type=Path, nargs="+", metavar="FILE",
        help="print the summary of profiles already recorded (.folded, .raw, .speedscope.json)",
    )  # fmt: skip
    parser.add_argument("--top", type=int, default=25, help="functions listed (25)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints the profile's summary."""
    args = build_parser().parse_args(argv)
    if args.summarise:
        for path in args.summarise:
            print(f"== {path}")
            if path.name.endswith(".json"):
                print(summarise_speedscope(json.loads(path.read_text()), args.top))
            else:
                print(summarise(path, str(path), args.top))
        return 0
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed")
    args.out.mkdir(parents=True, exist_ok=True)
    folded, load = asyncio.run(profile(args))
    summary = folded.with_suffix(".txt")
    command = "python -m bench.profile " + " ".join(sys.argv[1:] if argv is None else argv)
    summary.write_text(summarise(folded, command, args.top).replace("\n", f"\n# {load}\n", 1))
    print(summary.read_text(), end="")
    print(f"written: {summary} and {summary.with_suffix('.folded')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
