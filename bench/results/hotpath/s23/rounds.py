"""Per-round trio/asyncio ratios of a bench run's IAMAT cases, with the run's load average.

    python bench/results/hotpath/s23/rounds.py bench/results/hotpath/s23/run-N/results.json

(bench.figures gives the median and the spread; this lists every round.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

METRICS = (
    ("throughput", "req/s"),
    ("p50_ms", "p50"),
    ("p99_ms", "p99"),
    ("hill_cpu_us", "Hill CPU"),
)


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"


def main(path: str, base: str = "trio", other: str = "asyncio") -> None:
    data = json.loads(Path(path).read_text())
    start = data["machine"].get("load_average", [None])[0]
    end = data["meta"].get("load_average_end", [None])[0]
    print(f"{path}: load average {start:.1f} at the start, {end:.1f} at the end")
    rounds: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
    for run in data["runs"]:
        if run["workload"] != "iamat" or run["kind"] != "iamat":
            continue
        key = (run["case"], run["params"]["round"])
        rounds.setdefault(key, {})[run["impl"]] = run["figures"]
    for (case, number), impls in sorted(rounds.items()):
        if base not in impls or other not in impls:
            continue
        a, b = impls[base], impls[other]
        shown = ", ".join(
            f"{label} {_num(a[key])}/{_num(b[key])} = {a[key] / b[key]:.2f}x"
            for key, label in METRICS
            if a.get(key) and b.get(key)
        )
        print(f"  {case:7} round {number}: {shown}")


if __name__ == "__main__":
    main(*sys.argv[1:])
