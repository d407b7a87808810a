"""trio/asyncio per IAMAT round (throughput, p99, Hill CPU), unrounded, from a bench results.json.

From the repository's root: ``python bench/results/hotpath/s24/iamat-late/late_rounds.py
RESULTS_JSON`` (here ``bench/results/hotpath/s24/iamat-late/results.json``).
"""

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

runs = json.loads(Path(sys.argv[1]).read_text())["runs"]
by_round: dict[tuple[str, int], dict[str, Any]] = defaultdict(dict)
seen: dict[tuple[str, str], int] = defaultdict(int)
for run in runs:
    if run["workload"] != "iamat" or run["kind"] == "ceiling" or run["error"]:
        continue
    key = (run["case"], run["impl"])
    by_round[(run["case"], seen[key])][run["impl"]] = run["figures"]
    seen[key] += 1
for (case, index), figures in sorted(by_round.items()):
    trio, asyncio = figures["trio"], figures["asyncio"]
    print(
        f"{case} round {index + 1}: throughput {trio['throughput'] / asyncio['throughput']:.3f}, "
        f"p99 {trio['p99_ms'] / asyncio['p99_ms']:.3f}, "
        f"Hill CPU {trio['hill_cpu_us'] / asyncio['hill_cpu_us']:.3f}"
    )
