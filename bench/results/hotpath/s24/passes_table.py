"""A table of `python -m bench.pass_trace` records.

    python bench/results/hotpath/s24/passes_table.py FILE...

One line per implementation and round: IAMATs a second, latency p50/p99 and
their ratio, Hill's CPU per IAMAT (from /proc over the window), the
collector's pauses, and the spread of sockets a loop pass was handed.
"""

import json
import sys
from pathlib import Path


def main(paths: list[str]) -> None:
    print(
        "| file | impl | IAMAT/s | p50 ms | p99 ms | p99/p50 | Hill CPU µs/IAMAT "
        "| collections (gen 0/1/2) | collecting ms | ready per pass p50/p90/max |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |")
    for path in paths:
        for r in json.loads(Path(path).read_text())["rounds"]:
            rate = r["completed"] / r["load_window_s"]
            lat = r["latency_us"]
            gc = r["gc"]
            counts = "/".join(str(gc[g]["count"]) for g in "012")
            paused = sum(gc[g]["total_ms"] for g in "012")
            cpu = 1e6 * r["cpu_s"]["Hill"] / max(r["completed"], 1)
            ready = r["events_per_pass"]
            print(
                f"| {Path(path).name} | {r['impl']} | {rate:,.0f} | {lat['p50'] / 1e3:.1f} "
                f"| {lat['p99'] / 1e3:.1f} | {lat['p99'] / lat['p50']:.2f} | {cpu:.1f} "
                f"| {counts} | {paused:.0f} "
                f"| {ready['p50']:.0f}/{ready['p90']:.0f}/{ready['max']:.0f} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
