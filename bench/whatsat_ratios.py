"""WHATSAT, trio over another implementation, round by round.

    python -m bench.whatsat_ratios RESULTS.json [--base asyncio] [--json OUT]

Reads a ``python -m bench`` results file and prints, for each WHATSAT
concurrency, trio's throughput, p99 and Hill CPU per WHATSAT over the same
figure of ``--base`` (default ``asyncio``) in each round, and their min and
max. The rounds are interleaved, so the two figures of a ratio were measured
a minute apart at most; on a shared machine the spread across rounds is the
honest figure, not one round's ratio. Hill CPU per WHATSAT is Hill's share
of a core over the replies it sent in the window.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The figures compared, with how each is read from a run.
METRICS = ("req/s", "p99 ms", "Hill CPU µs/WHATSAT")


def _figures(run: dict[str, Any]) -> dict[str, float] | None:
    figures = run.get("figures") or {}
    throughput = figures.get("throughput")
    if run.get("error") is not None or not throughput:
        return None
    hill = (run.get("cpu") or {}).get("Hill")
    return {
        "req/s": throughput,
        "p99 ms": figures["p99_ms"],
        # Hill's CPU is a percentage of one core over the window.
        "Hill CPU µs/WHATSAT": hill * 1e4 / throughput if hill is not None else float("nan"),
    }


def ratios(runs: Sequence[dict[str, Any]], impl: str, base: str) -> list[dict[str, Any]]:
    """One row per WHATSAT case and metric: ``impl``'s figure over ``base``'s, per round."""
    seen: dict[tuple[str, str, int], dict[str, float]] = {}
    for run in runs:
        if run.get("workload") != "whatsat" or run.get("impl") not in (impl, base):
            continue
        figures = _figures(run)
        if figures is not None:
            seen[(run["case"], run["impl"], run["params"].get("round", 1))] = figures
    rows = []
    cases = sorted({c for c, _, _ in seen}, key=lambda c: int(c.split("=")[-1]))
    for case in cases:
        rounds = sorted(r for c, i, r in seen if (c, i) == (case, impl) and (case, base, r) in seen)
        for metric in METRICS:
            per_round = [
                seen[(case, impl, r)][metric] / seen[(case, base, r)][metric] for r in rounds
            ]
            if per_round:
                rows.append(
                    {
                        "case": case,
                        "metric": metric,
                        "pair": f"{impl}/{base}",
                        "rounds": per_round,
                        "min": min(per_round),
                        "max": max(per_round),
                        impl: [seen[(case, impl, r)][metric] for r in rounds],
                        base: [seen[(case, base, r)][metric] for r in rounds],
                    }
                )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; with ``--json``, write the rows there too."""
    parser = argparse.ArgumentParser(prog="python -m bench.whatsat_ratios")
    parser.add_argument("results", type=Path, help="a results.json of python -m bench")
    parser.add_argument("--impl", default="trio", help="the numerator (trio)")
    parser.add_argument("--base", default="asyncio", help="the denominator (asyncio)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the rows here")
    args = parser.parse_args(argv)
    rows = ratios(json.loads(args.results.read_text())["runs"], args.impl, args.base)
    print(f"{'case':6} {'metric':20} {'pair':22} {'min':>6} {'max':>6}  per round")
    for row in rows:
        each = " ".join(f"{r:.2f}" for r in row["rounds"])
        print(
            f"{row['case']:6} {row['metric']:20} {row['pair']:22} "
            f"{row['min']:6.2f} {row['max']:6.2f}  {each}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
