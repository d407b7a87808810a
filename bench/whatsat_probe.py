"""WHATSAT alone, implementation against implementation: ``python -m bench.whatsat_probe``.

The full benchmark runs every workload on five-server herds; this runs only
its WHATSAT step (:func:`bench.workloads.whatsat`, the same closed loop
through our Places server) against Hill alone, one Hill per implementation,
all up at once. Cases are interleaved: each round measures every
concurrency for every implementation, rotating who goes first, so a slow
spell of a shared machine spoils a round of several, not every round of one.

With ``--direct`` each round also asks our Places server directly with the
same closed loop at each concurrency (the bench's ``places`` step): what the
Places source alone can do, to compare with the herds' rates.

It prints, per case, throughput, p99 and Hill's CPU per WHATSAT for every
round, with the ratios to the first implementation named, and writes them to
a JSON file. To profile Hill under WHATSATs: ``python -m bench.profile
--workload whatsat`` (this command's ``--py-spy`` made the speedscope files
in bench/results/profiles/ before it moved there).

    python -m bench.whatsat_probe --impls trio,asyncio --clients 50,200,500 \\
        --rounds 3 --out bench/results/http/whatsat_rounds.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import settings as bench_settings
from bench.impls import IMPLEMENTATIONS
from bench.procs import bench_herd, places_url, start_places_server
from bench.workloads import Env, places_alone, whatsat


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every round of every case; the document written to ``--out``."""
    settings = bench_settings.adjust(bench_settings.FULL, duration_s=args.duration)
    impls = [IMPLEMENTATIONS[name] for name in args.impls]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="whatsat-probe-") as tmp:
        workdir = Path(tmp)
        places, port = await start_places_server(workdir, settings.places_latency_ms)
        herds = {
            impl.name: bench_herd(impl, ["Hill"], workdir / impl.name, "warning", places_url(port))
            for impl in impls
        }
        try:
            for herd in herds.values():
                await herd.start_all()
            for round_ in range(args.rounds):
                for case, clients in enumerate(args.clients):
                    if args.direct:
                        env = Env(settings, workdir, "warning", places=places, places_port=port)
                        outcome = await places_alone(env, {"clients": clients})
                        row = {
                            "round": round_,
                            "impl": "places-direct",
                            "clients": clients,
                            "throughput": round(outcome.figures["throughput"], 1),
                            "p99_ms": round(outcome.figures["p99_ms"], 2),
                            "errors": outcome.figures["errors"],
                            "places_cpu_percent": outcome.cpu.get("places", 0.0),
                        }
                        runs.append(row)
                        print(
                            f"round {round_} {'places direct':>18} C={clients:<4} "
                            f"{row['throughput']:8,.0f} req/s  p99 {row['p99_ms']:7.1f} ms  "
                            f"Places {row['places_cpu_percent']:5.1f}%",
                            file=sys.stderr,
                            flush=True,
                        )
                    shift = (round_ + case) % len(impls)
                    for impl in impls[shift:] + impls[:shift]:
                        herd = herds[impl.name]
                        env = Env(settings, workdir, "warning", impl, herd, None, places, port)
                        outcome = await whatsat(env, {"clients": clients})
                        figures = outcome.figures
                        hill_cpu = outcome.cpu.get("Hill", 0.0)
                        per_request_us = (
                            1e6 * hill_cpu / 100 / figures["throughput"]
                            if figures["throughput"]
                            else 0.0
                        )
                        row = {
                            "round": round_,
                            "impl": impl.name,
                            "clients": clients,
                            "throughput": round(figures["throughput"], 1),
                            "p50_ms": round(figures["p50_ms"], 2),
                            "p99_ms": round(figures["p99_ms"], 2),
                            "errors": figures["errors"],
                            "hill_cpu_percent": hill_cpu,
                            "places_cpu_percent": outcome.cpu.get("places", 0.0),
                            "hill_cpu_us_per_whatsat": round(per_request_us),
                        }
                        runs.append(row)
                        print(
                            f"round {round_} {impl.name:>18} C={clients:<4} "
                            f"{row['throughput']:8,.0f} req/s  p99 {row['p99_ms']:7.1f} ms  "
                            f"Hill {hill_cpu:5.1f}% = {per_request_us:5.0f} us/WHATSAT  "
                            f"Places {row['places_cpu_percent']:5.1f}%",
                            file=sys.stderr,
                            flush=True,
                        )
        finally:
            for herd in herds.values():
                await herd.stop()
            await places.stop()
    command = " ".join(["python -m bench.whatsat_probe", *sys.argv[1:]])
    return {"command": command, "runs": runs, "summary": summarise(runs, args)}


def summarise(runs: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per case and implementation: min, median and max over rounds, and ratios per round."""
    baseline = args.impls[0]
    rows = []
    for clients in args.clients:
        for name in args.impls:
            mine = [r for r in runs if r["impl"] == name and r["clients"] == clients]
            row: dict[str, Any] = {"impl": name, "clients": clients}
            for key in ("throughput", "p99_ms", "hill_cpu_us_per_whatsat"):
                values = [r[key] for r in mine]
                row[key] = {
                    "min": min(values),
                    "median": statistics.median(values),
                    "max": max(values),
                }
                if name != baseline:
                    # Ratios within a round: the baseline's figure over this one's.
                    ratios = []
                    for r in mine:
                        base = next(
                            b[key]
                            for b in runs
                            if b["impl"] == baseline
                            and b["clients"] == clients
                            and b["round"] == r["round"]
                        )
                        if r[key]:
                            ratios.append(round(base / r[key], 3))
                    row[f"{key}_ratio_{baseline}_over_this"] = {
                        "min": min(ratios, default=0.0),
                        "max": max(ratios, default=0.0),
                    }
            rows.append(row)
    return rows


def render(document: dict[str, Any]) -> str:
    """A results file as a Markdown table: min-max over rounds, ratios within rounds."""

    def span(figures: dict[str, float], unit: str = "") -> str:
        low, high = figures["min"], figures["max"]
        if low == high:
            return f"{low:,.0f}{unit}"
        return f"{low:,.0f}-{high:,.0f}{unit}"

    def ratio(row: dict[str, Any], key: str) -> str:
        found = [v for k, v in row.items() if k.startswith(f"{key}_ratio_")]
        if not found:
            return ""
        return f"{found[0]['min']:.2f}-{found[0]['max']:.2f}x"

    lines = [
        "| C | implementation | req/s | p99 ms | Hill CPU µs/WHATSAT "
        "| baseline/this req/s | baseline/this p99 | baseline/this CPU |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in document["summary"]:
        lines.append(
            f"| {row['clients']} | {row['impl']} | {span(row['throughput'])} "
            f"| {span(row['p99_ms'])} | {span(row['hill_cpu_us_per_whatsat'])} "
            f"| {ratio(row, 'throughput')} | {ratio(row, 'p99_ms')} "
            f"| {ratio(row, 'hill_cpu_us_per_whatsat')} |"
        )
    direct = [r for r in document["runs"] if r["impl"] == "places-direct"]
    for clients in sorted({r["clients"] for r in direct}):
        mine = [r for r in direct if r["clients"] == clients]
        rates = [r["throughput"] for r in mine]
        per = [1e4 * r["places_cpu_percent"] / r["throughput"] for r in mine if r["throughput"]]
        lines.append(
            f"| {clients} | Places server asked directly | {min(rates):,.0f}-{max(rates):,.0f} "
            f"| | Places: {min(per):,.0f}-{max(per):,.0f} | | | |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.whatsat_probe", description=__doc__)
    parser.add_argument("--impls", default="trio,asyncio", help="the first is the baseline")
    parser.add_argument("--clients", default="50,200,500")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per case")
    parser.add_argument(
        "--direct", action="store_true", help="also ask the Places server directly at each C"
    )
    parser.add_argument("--out", type=Path, help="the JSON file to write")
    parser.add_argument("--show", type=Path, metavar="FILE", help="print FILE as a table")
    args = parser.parse_args(argv)
    if args.show is not None:
        print(render(json.loads(args.show.read_text())))
        return 0
    if args.out is None:
        parser.error("--out is required")
    args.impls = args.impls.split(",")
    args.clients = [int(c) for c in args.clients.split(",")]
    unknown = [name for name in args.impls if name not in IMPLEMENTATIONS]
    if unknown:
        parser.error(f"unknown implementations: {', '.join(unknown)}")
    document = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    with contextlib.suppress(BrokenPipeError):
        for row in document["summary"]:
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
