"""Base against head: anyio-asyncio over asyncio, round by round.

    python bench/results/anyio/s24/ab_table.py bench/results/anyio/s24 iamat
    python bench/results/anyio/s24/ab_table.py bench/results/anyio/s24 churn

Reads every ``WORKLOAD-base-K/results.json`` and ``WORKLOAD-head-K/results.json``
under the directory (``run_ab.sh``'s runs: base is 82be1ac, before the
accept pause; head is the commit with it). For each case (client count)
and tree, over every round of every run of that tree: anyio-asyncio's
throughput and Hill's CPU per request (us), and its ratios over asyncio in
the same round (throughput, Hill CPU), as median and range.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def spread(values: list[float], fmt: str) -> str:
    """Median and range."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:{fmt}} ({low:{fmt}}-{high:{fmt}})"


def rounds(results: Path, workload: str) -> dict[tuple[str, int], dict[str, dict[str, Any]]]:
    """(case, round) -> impl -> figures, for the ``workload`` runs of one results.json."""
    table: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for run in json.loads(results.read_text())["runs"]:
        if run["workload"] != workload or run["error"]:
            continue
        key = (run["case"], run["params"].get("round", 1))
        figures = dict(run["figures"])
        # churn's figures leave it out: Hill's % of a core over requests a second.
        figures.setdefault("hill_cpu_us", run["cpu"]["Hill"] * 1e4 / figures["throughput"])
        table.setdefault(key, {})[run["impl"]] = figures
    return table


def main(top: Path, workload: str) -> None:
    # tree -> case -> list of (anyio figures, asyncio figures), one per round
    pairs: dict[str, dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]] = {}
    for results in sorted(top.glob(f"{workload}-*-*/results.json")):
        tree = results.parent.name.split("-")[1]
        for (case, _), impls in rounds(results, workload).items():
            if "anyio-asyncio" in impls and "asyncio" in impls:
                pair = (impls["anyio-asyncio"], impls["asyncio"])
                pairs.setdefault(tree, {}).setdefault(case, []).append(pair)
    print(
        "| N | tree | rounds | anyio-asyncio req/s | Hill us/request | "
        "throughput / asyncio | Hill CPU / asyncio |"
    )
    print("| --- | --- | ---: | --- | --- | --- | --- |")
    cases = sorted({c for by_case in pairs.values() for c in by_case}, key=lambda c: int(c[2:]))
    for case in cases:
        for tree in ("base", "head"):
            rows = pairs.get(tree, {}).get(case, [])
            if not rows:
                continue
            req = [a["throughput"] for a, _ in rows]
            hill = [a["hill_cpu_us"] for a, _ in rows]
            t_ratio = [a["throughput"] / b["throughput"] for a, b in rows]
            c_ratio = [a["hill_cpu_us"] / b["hill_cpu_us"] for a, b in rows]
            print(
                f"| {case[2:]} | {tree} | {len(rows)} | {spread(req, ',.0f')} | "
                f"{spread(hill, '.1f')} | {spread(t_ratio, '.2f')} | {spread(c_ratio, '.2f')} |"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
