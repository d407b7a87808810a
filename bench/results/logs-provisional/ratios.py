"""Per-round ratios from results.json here: the cost of logging every line, min-max over rounds.

    python bench/results/logs-provisional/ratios.py > bench/results/logs-provisional/ratios.txt

Each round measured every implementation seconds apart, so a ratio is taken
within a round; the spread across rounds shows how much the (shared,
overloaded) machine moved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PAIRS = [
    ("trio+logs", "trio"),
    ("asyncio+logs", "asyncio"),
    ("trio+logs", "asyncio+logs"),
    ("trio", "asyncio"),
]


def main() -> None:
    records = json.loads((HERE / "results.json").read_text())["runs"]
    figures: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for record in records:
        if record["figures"] and record["params"].get("round"):
            key = (record["workload"], record["case"], record["impl"], record["params"]["round"])
            figures[key] = dict(record["figures"])
            # CPU time per IAMAT, at Hill and in the whole herd: less
            # sensitive than req/s to other processes taking the cores.
            served = record["figures"].get("throughput")
            if served:
                cpu = record["cpu"]
                herd = sum(v for k, v in cpu.items() if k not in ("loadgen", "bench"))
                figures[key]["hill_cpu_us"] = cpu.get("Hill", 0) / 100 / served * 1e6
                figures[key]["herd_cpu_us"] = herd / 100 / served * 1e6
    rows = [
        ("iamat", case, metric)
        for case in ("N=1", "N=10", "N=100")
        for metric in ("throughput", "p99_ms", "hill_cpu_us", "herd_cpu_us")
    ] + [("flood", case, "servers.Campbell.median_ms") for case in ("unloaded", "under load N=100")]
    rounds = sorted({key[3] for key in figures})
    for workload, case, metric in rows:
        for a, b in PAIRS:
            ratios = []
            for r in rounds:
                fa, fb = figures.get((workload, case, a, r)), figures.get((workload, case, b, r))
                if fa is None or fb is None:
                    continue
                va: Any = fa
                vb: Any = fb
                for part in metric.split("."):
                    va, vb = va[part], vb[part]
                ratios.append(va / vb)
            if ratios:
                values = " ".join(f"{x:.2f}" for x in ratios)
                print(
                    f"{workload:5} {case:17} {metric:27} {a}/{b:13} "
                    f"median {sorted(ratios)[len(ratios) // 2]:.2f} "
                    f"min {min(ratios):.2f} max {max(ratios):.2f}  rounds: {values}"
                )


if __name__ == "__main__":
    main()
