"""The A/B rounds of this directory as a table: Hill per IAMAT reply, and the flood.

    python bench/results/hotpath/ab_table.py bench/results/hotpath/ab5

Reads DIR/trace-TREE-ROUND.json (bench.sched_trace) and flood-TREE-ROUND.txt
(bench.flood_probe) and prints one line per round and tree, then each tree's
CPU per reply over the base tree's, per round.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

FLOOD = re.compile(r"flood Hill -> Campbell .*?median ([\d.]+) ms, p99 ([\d.]+) ms")
ROUND_TRIP = re.compile(r"round trip at Hill:\s+median ([\d.]+) ms")


def main(directory: str) -> None:
    rows: dict[tuple[str, int], dict[str, float]] = {}
    for path in sorted(Path(directory).glob("trace-*-*.json")):
        _, tree, round_text = path.stem.split("-")
        key = (tree, int(round_text))
        report = json.loads(path.read_text())["rounds"][0]
        replies = report["replies"]
        rows[key] = {
            "cpu_us": 1e6 * report["cpu_s"] / replies,
            "steps": sum(report["steps"].values()) / replies,
            "per_pass": replies / max(report["passes"], 1),
            "rate": replies / report["window_s"],
            "load": report["loadavg"],
        }
        probe = path.with_name(f"flood-{tree}-{round_text}.txt")
        if probe.exists():
            text = probe.read_text()
            if (flood := FLOOD.search(text)) and (trip := ROUND_TRIP.search(text)):
                rows[key]["flood_ms"] = float(flood[1])
                rows[key]["trip_ms"] = float(trip[1])
    print(
        "round tree   Hill CPU µs/reply  steps/reply  replies/pass  replies/s"
        "  flood median ms  IAMAT trip ms  load"
    )
    for (name, number), row in sorted(rows.items(), key=lambda item: (item[0][1], item[0][0])):
        flood_ms = f"{row['flood_ms']:15.3f}" if "flood_ms" in row else f"{'':15}"
        trip_ms = f"{row['trip_ms']:13.3f}" if "trip_ms" in row else f"{'':13}"
        print(
            f"{number:5} {name:6} {row['cpu_us']:17.1f} {row['steps']:12.3f}"
            f" {row['per_pass']:13.1f} {row['rate']:10,.0f}  {flood_ms}  {trip_ms}"
            f"  {row['load']:4.1f}"
        )
    trees = sorted({name for name, _ in rows} - {"base"})
    for tree in trees:
        for figure, label in (("cpu_us", "Hill CPU per reply"), ("flood_ms", "flood median")):
            ratios = [
                rows[(tree, n)][figure] / rows[("base", n)][figure]
                for (t, n) in rows
                if t == tree
                and ("base", n) in rows
                and figure in rows[(tree, n)]
                and figure in rows[("base", n)]
            ]
            if ratios:
                print(
                    f"{tree}/base {label}: {statistics.median(ratios):.2f}x per round "
                    f"({min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} rounds)"
                )


if __name__ == "__main__":
    main(sys.argv[1])
