"""``python -m bench.figures [RESULTS]``: the report's tables, from a run's results file.

Every figure in ``compare_asyncio.md``'s tables is printed by this script
from ``bench/results/results.json`` (or the file given), so a reader can
check each one, and a new run regenerates them. For every case it prints
each implementation's median over the rounds, and trio's ratio to it as
the median of the per-round ratios with their range: the rounds are
interleaved, so round k of trio and round k of the other ran minutes
apart at most, and the range shows how far a single round could mislead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.report import HIGHER, METRICS, fmt, lookup

DEFAULT_RESULTS = Path("bench/results/results.json")

#: The rows of the report's tables: (workload, case, metric path).
ROWS: list[tuple[str, str, str]] = [
    *(("iamat", f"N={n}", "throughput") for n in (1, 10, 100, 1000)),
    *(("iamat", f"N={n}", "p99_ms") for n in (100, 1000)),
    *(("iamat", f"N={n}", "hill_cpu_us") for n in (1, 100, 1000)),
    *(("iamat", f"N={n}", "herd_cpu_us") for n in (1, 100, 1000)),
    *(("churn", f"C={n}", "throughput") for n in (1, 8)),
    *(("whatsat", f"C={n}", "throughput") for n in (50, 200, 500)),
    *(("whatsat", f"C={n}", "p99_ms") for n in (50, 200, 500)),
    *(("whatsat", f"C={n}", "hill_cpu_us") for n in (50, 200, 500)),
    ("flood", "unloaded", "servers.Campbell.median_ms"),
    ("flood", "under load N=100", "servers.Campbell.median_ms"),
    ("flood", "under load N=100", "servers.Campbell.p99_ms"),
]


def _label(workload: str, path: str) -> tuple[str, str]:
    for metric in METRICS.get(workload, []):
        if metric.path == path:
            return metric.label, metric.better
    return path, "↓"


def rounds_by_impl(
    runs: Sequence[Mapping[str, Any]], workload: str, case: str, path: str
) -> dict[str, dict[int, float]]:
    """Each implementation's figure in each round of one case."""
    found: dict[str, dict[int, float]] = {}
    for record in runs:
        if record.get("workload") != workload or record.get("case") != case:
            continue
        value = lookup(record.get("figures"), path)
        if value is None:
            continue
        round_ = int(record.get("params", {}).get("round", 1))
        found.setdefault(record["impl"], {})[round_] = value
    return found


def ratio_spread(trio: Mapping[int, float], other: Mapping[int, float]) -> str:
    """trio/other per round: ``median (min-max)``, or ``-``."""
    ratios = [trio[r] / other[r] for r in sorted(trio) if other.get(r)]
    if not ratios:
        return "-"
    middle = statistics.median(ratios)
    if len(ratios) == 1:
        return f"{middle:.2f}x"
    return f"{middle:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def table(runs: Sequence[Mapping[str, Any]], impls: Sequence[str], baseline: str = "trio") -> str:
    """The report's table: medians, then trio's ratio to each other implementation."""
    others = [i for i in impls if i != baseline]
    head = ["workload", "case", "metric", *impls, *(f"{baseline}/{o}" for o in others)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for workload, case, path in ROWS:
        by_impl = rounds_by_impl(runs, workload, case, path)
        if baseline not in by_impl:
            continue
        label, better = _label(workload, path)
        cells = [workload, case, f"{label} {better}"]
        cells += [
            fmt(statistics.median(by_impl[i].values())) if i in by_impl else "-" for i in impls
        ]
        cells += [ratio_spread(by_impl[baseline], by_impl.get(o, {})) for o in others]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: The cases :func:`pairs` compares: (workload, case, metric path).
PAIR_ROWS: list[tuple[str, str, str]] = [
    *(("iamat", "N=100", m) for m in ("throughput", "p99_ms", "hill_cpu_us", "herd_cpu_us")),
    *(("whatsat", "C=200", m) for m in ("throughput", "p99_ms", "hill_cpu_us")),
]


def pairs(runs: Sequence[Mapping[str, Any]], wanted: Sequence[tuple[str, str]]) -> str:
    """A/B per round, median (range), for each pair and each of :data:`PAIR_ROWS`."""
    lines = ["| A / B | workload | case | metric | A/B |", "| --- | --- | --- | --- | --- |"]
    for a, b in wanted:
        for workload, case, path in PAIR_ROWS:
            found = rounds_by_impl(runs, workload, case, path)
            if a in found and b in found:
                label, better = _label(workload, path)
                spread = ratio_spread(found[a], found[b])
                lines.append(f"| {a} / {b} | {workload} | {case} | {label} {better} | {spread} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.figures",
        description="Print the report's tables (medians; trio's per-round ratios with their "
        "range) from a bench results file.",
    )
    parser.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument(
        "--impls",
        default="trio,asyncio,uvloop,asyncio-protocol,anyio-trio,anyio-asyncio",
        help="comma-separated implementations, trio first (default: %(default)s)",
    )
    parser.add_argument(
        "--pairs",
        metavar="A/B,...",
        help="instead of the table, A's figure over B's per round for these pairs "
        "(e.g. trio+logs/trio), at IAMAT N=100 and WHATSAT C=200",
    )
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.results.read_text())
    except (OSError, ValueError) as exc:
        print(f"python -m bench.figures: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    impls = [i for i in args.impls.split(",") if i]
    print(
        f"From {args.results} ({document['meta']['started']}, rounds: "
        f"{document['settings'].get('rounds', 1)}). Higher is better where {HIGHER}.\n"
    )
    if args.pairs:
        wanted = [tuple(p.split("/", 1)) for p in args.pairs.split(",") if "/" in p]
        print(pairs(document["runs"], [(a, b) for a, b in wanted]))
    else:
        print(table(document["runs"], impls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
