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
        _, tree, number = path.stem.split("-")
        report = json.loads(path.read_text())["rounds"][0]
        replies = report["replies"]
        rows[(tree, int(number))] = {
            "cpu_us": 1e6 * report["cpu_s"] / replies,
            "steps": sum(report["steps"].values()) / replies,
            "per_pass": replies / max(report["passes"], 1),
            "rate": replies / report["window_s"],
            "load": report["loadavg"],
        }
        flood = path.with_name(f"flood-{tree}-{number}.txt")
        if flood.exists():
            text = flood.read_text()
            if (match := FLOOD.search(text)) and (trip := ROUND_TRIP.search(text)):
                rows[(tree, int(number))]["flood_ms"] = float(match[1])
                rows[(tree, int(number))]["trip_ms"] = float(trip[1])
    print("round tree   Hill CPU µs/reply  steps/reply  replies/pass  replies/s  flood median ms  IAMAT trip ms  load")
    for (tree, number), row in sorted(rows.items(), key=lambda item: (item[0][1], item[0][0])):
        flood = f"{row['flood_ms']:15.3f}" if "flood_ms" in row else f"{'':15}"
        trip = f"{row['trip_ms']:13.3f}" if "trip_ms" in row else f"{'':13}"
        print(
            f"{number:5} {tree:6} {row['cpu_us']:17.1f} {row['steps']:12.3f} {row['per_pass']:13.1f}"
            f" {row['rate']:10,.0f}  {flood}  {trip}  {row['load']:4.1f}"
        )
    trees = sorted({tree for tree, _ in rows} - {"base"})
    for tree in trees:
        for key, name in (("cpu_us", "Hill CPU per reply"), ("flood_ms", "flood median")):
            ratios = [
                rows[(tree, n)][key] / rows[("base", n)][key]
                for (t, n) in rows
                if t == tree and ("base", n) in rows and key in rows[(tree, n)] and key in rows[("base", n)]
            ]
            if ratios:
                print(
                    f"{tree}/base {name}: {statistics.median(ratios):.2f}x per round "
                    f"({min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} rounds)"
                )


if __name__ == "__main__":
    main(sys.argv[1])
