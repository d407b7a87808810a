"""What anyio costs: each anyio variant over its native herd, round by round.

    python -m bench.anyio_ratios RESULTS.json [--json OUT]

Reads a ``python -m bench`` results file with ``anyio-*`` implementations
beside their native ones and prints, for IAMAT N=100 and WHATSAT C=200,
the throughput ratio anyio/native in each round (the rounds are
interleaved, so each round's two figures were measured minutes apart at
most), their median and their spread. A ratio of 0.90 is anyio 10% slower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Each anyio variant and the native herd on the same event loop.
PAIRS = (("anyio-trio", "trio"), ("anyio-asyncio", "asyncio"), ("anyio-uvloop", "uvloop"))
#: The cases the target names: (workload kind, case).
CASES = (("iamat", "N=100"), ("whatsat", "C=200"))


def ratios(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per pair and case that the runs hold: the per-round ratios."""
    throughput: dict[tuple[str, str, str, int], float] = {}
    for run in runs:
        figures = run.get("figures") or {}
        if run.get("error") is None and "throughput" in figures:
            key = (run["kind"], run["case"], run["impl"], run["params"].get("round", 1))
            throughput[key] = figures["throughput"]
    rows = []
    for anyio_impl, native in PAIRS:
        for kind, case in CASES:
            rounds = sorted({r for (k, c, i, r) in throughput if (k, c, i) == (kind, case, native)})
            per_round = [
                throughput[(kind, case, anyio_impl, r)] / throughput[(kind, case, native, r)]
                for r in rounds
                if (kind, case, anyio_impl, r) in throughput
            ]
            if per_round:
                rows.append(
                    {
                        "pair": f"{anyio_impl}/{native}",
                        "case": f"{kind} {case}",
                        "rounds": per_round,
                        "median": statistics.median(per_round),
                        "min": min(per_round),
                        "max": max(per_round),
                    }
                )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; with ``--json``, write the rows there too."""
    parser = argparse.ArgumentParser(prog="python -m bench.anyio_ratios")
    parser.add_argument("results", type=Path, help="a results.json of python -m bench")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the rows here")
    args = parser.parse_args(argv)
    rows = ratios(json.loads(args.results.read_text())["runs"])
    print(f"{'pair':22} {'case':16} {'median':>7} {'min':>6} {'max':>6}  rounds")
    for row in rows:
        each = " ".join(f"{r:.2f}" for r in row["rounds"])
        print(
            f"{row['pair']:22} {row['case']:16} {row['median']:7.2f} "
            f"{row['min']:6.2f} {row['max']:6.2f}  {each}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
