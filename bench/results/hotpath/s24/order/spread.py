"""p50, p99 and p99/p50 of every IAMAT round in a bench results.json, by implementation.

From the repository's root:
``python bench/results/hotpath/s24/order/spread.py RESULTS_JSON``
(here ``bench/results/hotpath/s24/order/bench/results.json``).
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

runs = json.loads(Path(sys.argv[1]).read_text())["runs"]
rounds: dict[tuple[str, str], list[str]] = defaultdict(list)
for run in runs:
    if run["workload"] != "iamat" or run["error"] or run["kind"] == "ceiling":
        continue
    fig = run["figures"]
    p50, p99 = fig.get("p50_ms"), fig.get("p99_ms")
    if p50 and p99:
        rounds[(run["case"], run["impl"])].append(f"{p50:.0f}/{p99:.0f} ({p99 / p50:.2f})")
for (case, impl), cells in sorted(rounds.items()):
    print(f"{case:12} {impl:22} p50/p99 ms (p99/p50) by round: {', '.join(cells)}")
