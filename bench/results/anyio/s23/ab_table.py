"""Per-round figures of an ab.sh run: IAMAT N=100 at Hill, each tree, each implementation.

    python bench/results/anyio/s23/ab_table.py DIR [DIR ...]

For each DIR (ab.sh's OUT_DIR, holding base-R/ and new-R/ bench runs) prints,
round by round and tree by tree, each implementation's req/s, Hill CPU and
herd CPU per IAMAT (microseconds), and each anyio variant's Hill CPU over
trio's in the same run; then the median and range of those ratios per tree,
and, given several DIRs, those ratios pooled over all of them.
A DIR of one bench run (results.json inside) is printed round by round.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def iamat_rows(results: Path) -> list[dict[str, Any]]:
    """The IAMAT N=100 runs of one results.json."""
    runs = json.loads(results.read_text())["runs"]
    return [r for r in runs if r["workload"] == "iamat" and r["case"] == "N=100" and not r["error"]]


def show(label: str, rows: list[dict[str, Any]], ratios: dict[str, list[float]]) -> None:
    """Print one bench run's rows, grouped by round, and collect Hill ratios over trio."""
    rounds = sorted({r["params"].get("round", 1) for r in rows})
    for rnd in rounds:
        these = {r["impl"]: r["figures"] for r in rows if r["params"].get("round", 1) == rnd}
        cells = []
        for impl, fig in these.items():
            cells.append(
                f"{impl} {fig['throughput']:,.0f}/s Hill {fig['hill_cpu_us']:.1f}"
                f" herd {fig['herd_cpu_us']:.1f}"
            )
        print(f"  {label} r{rnd}: " + "; ".join(cells))
        trio = these.get("trio")
        if trio is None:
            continue
        for impl, fig in these.items():
            if impl != "trio":
                ratios.setdefault(impl, []).append(fig["hill_cpu_us"] / trio["hill_cpu_us"])


def spread(values: list[float]) -> str:
    """Median and range."""
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def main(dirs: list[str]) -> None:
    """Print every DIR's table, then the A/B dirs' ratios pooled."""
    pooled: dict[str, dict[str, list[float]]] = {"base": {}, "new": {}}
    for name in dirs:
        top = Path(name)
        print(name)
        if (top / "results.json").exists():
            ratios: dict[str, list[float]] = {}
            show("run", iamat_rows(top / "results.json"), ratios)
            for impl, values in ratios.items():
                print(f"  Hill CPU {impl}/trio: {spread(values)}")
            continue
        per_tree: dict[str, dict[str, list[float]]] = {"base": {}, "new": {}}
        for results in sorted(top.glob("*-*/results.json")):
            tree = results.parent.name.split("-")[0]
            show(results.parent.name, iamat_rows(results), per_tree[tree])
        for tree, ratios in per_tree.items():
            for impl, values in ratios.items():
                print(f"  {tree}: Hill CPU {impl}/trio per round {spread(values)}")
                pooled[tree].setdefault(impl, []).extend(values)
    for tree, ratios in pooled.items():
        for impl, values in ratios.items():
            if len(dirs) > 1:
                print(f"pooled {tree}: Hill CPU {impl}/trio, {len(values)} rounds {spread(values)}")


if __name__ == "__main__":
    main(sys.argv[1:])
