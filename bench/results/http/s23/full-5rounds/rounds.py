"""Per-round trio/asyncio ratios of a WHATSAT run.

python bench/results/http/s23/full-5rounds/rounds.py [results.json]
"""

import json
import sys
from collections import defaultdict

path = sys.argv[1] if len(sys.argv) > 1 else "bench/results/http/s23/full-5rounds/results.json"
with open(path) as file:
    runs = json.load(file)["runs"]
by: defaultdict[tuple[str, int | None], dict[str, dict[str, float]]] = defaultdict(dict)
for run in runs:
    if run["kind"] == "whatsat" and run["figures"]:
        by[(run["case"], run["params"].get("round"))][run["impl"]] = run["figures"]
print("| case | round | req/s | p99 | Hill CPU |")
print("| --- | --- | --- | --- | --- |")
for (case, rnd), impls in sorted(by.items(), key=lambda kv: (int(kv[0][0][2:]), kv[0][1] or 0)):
    if "trio" in impls and "asyncio" in impls:
        t, a = impls["trio"], impls["asyncio"]
        print(
            f"| {case} | {rnd} | {t['throughput'] / a['throughput']:.2f}x | "
            f"{t['p99_ms'] / a['p99_ms']:.2f}x | {t['hill_cpu_us'] / a['hill_cpu_us']:.2f}x |"
        )
