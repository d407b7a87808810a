"""Hill's CPU per WHATSAT split into user and kernel time, with its context switches.

    python -m bench.cpu_split --impls trio,asyncio --clients 200 --seconds 5 --rounds 3

The py-spy profiles (``bench.profile``) see only Python frames, and count a
thread preempted inside ``send`` as busy there; the bench's Hill CPU per
WHATSAT is user and system time together. This starts the five servers of
each implementation at once with our Places server behind them (as
``bench.profile`` does), then, round after round with the order rotated,
puts a closed WHATSAT load on each herd's Hill in turn and reads Hill's
``/proc/PID/stat`` (user and system ticks) and ``/proc/PID/status``
(voluntary and involuntary context switches) before and after the window.
Prints, per round and implementation: WHATSAT/s, user and system µs per
WHATSAT, and context switches per WHATSAT; and the first implementation's
figures over each other's, per round. Read it as the bench's CPU figures
are read: ratios within one round, their spread across rounds, with the
load average beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.impls import IMPLEMENTATIONS, Implementation
from bench.loadgen import Job
from bench.procs import bench_herd, places_url, start_places_server
from bench.trio_steps import counts_path
from bench.workers import LoadWorkers, merge
from trioherd.core.config import CS131_HERD

_TICK = os.sysconf("SC_CLK_TCK")


def implementation(name: str) -> Implementation:
    """A bench implementation, ``trio@steps``, or ``trio@gc=MODE`` / ``asyncio@gc=MODE``.

    ``trio@steps`` runs trioherd under ``python -m bench.trio_steps``, whose
    counts of task steps and run-loop passes this reads before and after
    the window (its CPU figures include the counting's own cost).

    The latter runs that herd under ``python -m bench.gc_cost serve --gc MODE``
    (``default``, ``freeze`` or ``disable``): what the cyclic collector costs
    each herd per WHATSAT.
    """
    if name == "trio@steps":
        return Implementation(name, "bench.trio_steps")
    if "@gc=" in name:
        impl, mode = name.split("@gc=")
        if impl not in ("trio", "asyncio"):
            raise SystemExit(f"{name}: @gc= is for trio and asyncio")
        return Implementation(name, "bench.gc_cost", ("serve", "--gc", mode, "--impl", impl, "--"))
    if name not in IMPLEMENTATIONS:
        raise SystemExit(f"unknown implementation {name}")
    return IMPLEMENTATIONS[name]


def _sample(pid: int) -> dict[str, float]:
    """Hill's user and system seconds and context switches so far (and its
    task steps and run-loop passes, under ``bench.trio_steps``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command's closing parenthesis: state is field 3, utime 14, stime 15.
    sample = {"user": int(fields[11]) / _TICK, "system": int(fields[12]) / _TICK}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches"):
            sample["voluntary"] = float(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches"):
            sample["involuntary"] = float(line.split()[1])
    steps = counts_path(pid)
    if steps.exists():
        sample.update(json.loads(steps.read_text()))
    return sample


async def _measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="trioherd-cpu-split-") as scratch:
        workdir = Path(scratch)
        places, port = await start_places_server(workdir, (50, 150))
        herds = {}
        try:
            for index, name in enumerate(args.impls):
                herd_dir = workdir / str(index)
                herd_dir.mkdir()
                herds[name] = bench_herd(
                    implementation(name), CS131_HERD.names, herd_dir, "warning", places_url(port)
                )
                await herds[name].start_all()
            for round_no in range(args.rounds):
                shift = round_no % len(args.impls)
                for name in args.impls[shift:] + args.impls[:shift]:
                    rows.append(await _window(args, name, herds[name], round_no + 1, workdir))
                    row = rows[-1]
                    print(
                        f"round {row['round']} {name:18s} {row['rate']:7,.0f} req/s  "
                        f"user {row['user_us']:6.0f} µs  system {row['system_us']:6.0f} µs  "
                        f"switches {row['voluntary']:.2f}+{row['involuntary']:.2f}  "
                        f"load {row['load']:.2f}",
                        file=sys.stderr,
                    )
        finally:
            for herd in herds.values():
                await herd.stop()
            await places.stop()
    return rows


async def _window(
    args: argparse.Namespace, name: str, herd: Any, round_no: int, workdir: Path
) -> dict[str, Any]:
    host, hill_port = herd.address("Hill")
    pid = herd.pids()["Hill"]
    job: Job = {
        "kind": "closed", "host": host, "port": hill_port, "clients": args.clients,
        "first_slot": 0, "id_prefix": f"split-{round_no}-", "message": "whatsat",
    }  # fmt: skip
    async with LoadWorkers([job], workdir) as workers:
        await workers.start()
        warm_s = 2.0
        start_ns = time.monotonic_ns() + int(warm_s * 1e9)
        end_ns = start_ns + int(args.seconds * 1e9)
        await workers.go(start_ns, end_ns)
        await asyncio.sleep((start_ns - time.monotonic_ns()) / 1e9)
        before = _sample(pid)
        await asyncio.sleep((end_ns - time.monotonic_ns()) / 1e9)
        after = _sample(pid)
        result = merge(await workers.results())
    replies = max(result["completed"], 1)
    # The window's requests and Hill's counters cover the same seconds,
    # give or take the replies in flight at either end.
    return {
        "round": round_no,
        "impl": name,
        "rate": result["completed"] / result["window_s"] if result["window_s"] else 0.0,
        "user_us": (after["user"] - before["user"]) / replies * 1e6,
        "system_us": (after["system"] - before["system"]) / replies * 1e6,
        "voluntary": (after["voluntary"] - before["voluntary"]) / replies,
        "involuntary": (after["involuntary"] - before["involuntary"]) / replies,
        "load": os.getloadavg()[0],
        **{
            f"{count}_per_whatsat": (after[count] - before[count]) / replies
            for count in ("steps", "passes")
            if count in after
        },
    }


def _table(rows: list[dict[str, Any]], impls: list[str]) -> str:
    lines = [
        "| round | impl | req/s | user µs/WHATSAT | system µs/WHATSAT | total | "
        f"{impls[0]}'s total / this | switches/WHATSAT (vol+invol) | load avg |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        base = next(r for r in rows if r["round"] == row["round"] and r["impl"] == impls[0])
        total = row["user_us"] + row["system_us"]
        ratio = (base["user_us"] + base["system_us"]) / total if total else 0.0
        lines.append(
            f"| {row['round']} | {row['impl']} | {row['rate']:,.0f} | {row['user_us']:,.0f} | "
            f"{row['system_us']:,.0f} | {total:,.0f} | {ratio:.2f}x | "
            f"{row['voluntary']:.2f}+{row['involuntary']:.2f} | {row['load']:.1f} |"
        )
    for row in rows:
        if "steps_per_whatsat" in row:
            lines.append(
                f"\nround {row['round']} {row['impl']}: {row['steps_per_whatsat']:.2f} task "
                f"steps and {row['passes_per_whatsat']:.2f} run-loop passes per WHATSAT"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.cpu_split",
        description="Hill's CPU per WHATSAT, user and system, with context switches.",
    )
    parser.add_argument(
        "--impls",
        default="trio,asyncio",
        help="comma-separated bench implementations; trio@steps (trioherd under "
        "bench.trio_steps: task steps and run-loop passes per WHATSAT); trio@gc=MODE or "
        "asyncio@gc=MODE (MODE: default, freeze, disable; under bench.gc_cost) (trio,asyncio)",
    )
    parser.add_argument("--clients", type=int, default=200, help="closed-loop clients (200)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, order rotated (3)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.impls = args.impls.split(",")
    for name in args.impls:
        implementation(name)
    rows = asyncio.run(_measure(args))
    command = "python -m bench.cpu_split " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {command}\n" + _table(rows, args.impls))
    if args.json:
        args.json.write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
