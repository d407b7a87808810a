"""What the core's counters cost: ``ServerState.handle`` with and without them.

    git archive 171c840 | tar -x -C /tmp/before     # a tree without counters
    python -m bench.counters_cost /tmp/before --out bench/results/counters-cost/results.json

Each round runs the same timing code twice, in fresh processes, once on the
tree given (the baseline) and once on this checkout, in alternating order,
so a slow spell of a shared machine spoils a round of both rather than
every round of one. Two cases:

* ``iamat``: IAMATs from 1,000 clients, each newer than the last, so each
  is stored and flooded to two neighbours' outboxes (the hot path of the
  iamat workload);
* ``peer-at``: AT lines from a neighbour, each new, so each is stored,
  flooded, and timed for the flood lag histogram.

Reported per case: CPU nanoseconds per line (the best of five repeats in
each process; median, min and max over the rounds) for each tree, and the
ratio this checkout / baseline per round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.procs import ROOT

#: Runs in the child: prints {case: ns per line}.
TIMING = r"""
import json, time
from trioherd.core.state import ServerState

BATCH, BATCHES, CLIENTS = 50, 400, 1000
def iamat_batches(start):
    t = start
    for b in range(BATCHES):
        lines = []
        for i in range(BATCH):
            t += 1
            lines.append(b"IAMAT c%d +34.068930-118.445127 %d.000000001" % (t % CLIENTS, t))
        yield lines
def at_batches(start):
    t = start
    for b in range(BATCHES):
        lines = []
        for i in range(BATCH):
            t += 1
            lines.append(b"AT Hill +0.000100000 c%d +34.068930-118.445127 %d.000000001"
                         % (t % CLIENTS, t))
        yield lines
def run(case):
    best = float("inf")
    for repeat in range(5):
        if case == "iamat":
            state = ServerState("Hill", ["Jaquez", "Smith"])
            batches = list(iamat_batches(1_700_000_000 + repeat * 10**6))
            peer = None
        else:
            state = ServerState("Jaquez", ["Hill", "Singleton"])
            batches = list(at_batches(1_700_000_000 + repeat * 10**6))
            peer = "Hill"
        now = time.time_ns()
        # CPU time of this thread: on a shared machine, wall time would
        # count the time other processes held the core.
        handle = state.handle
        start = time.thread_time_ns()
        for lines in batches:
            for line in lines:
                handle(line, now, peer)
        best = min(best, (time.thread_time_ns() - start) / (BATCH * BATCHES))
    return best
print(json.dumps({case: run(case) for case in ("iamat", "peer-at")}))
"""


def measure(tree: Path) -> dict[str, float]:
    """Nanoseconds per line for each case, on the trioherd in ``tree``."""
    done = subprocess.run(
        [sys.executable, "-c", TIMING],
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.counters_cost",
        description="Time ServerState.handle here and in a baseline tree, interleaved.",
    )
    parser.add_argument("baseline", type=Path, help="a trioherd source tree to compare with")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (default 7)")
    parser.add_argument("--out", type=Path, help="also write the figures here, as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints a summary line per case."""
    args = build_parser().parse_args(argv)
    trees = {"baseline": args.baseline.resolve(), "counters": ROOT}
    rounds: list[dict[str, dict[str, float]]] = []
    for number in range(args.rounds):
        order = list(trees) if number % 2 == 0 else list(reversed(trees))
        rounds.append({name: measure(trees[name]) for name in order})
    summary: dict[str, dict[str, list[float] | float]] = {}
    for case in ("iamat", "peer-at"):
        figures: dict[str, list[float] | float] = {}
        for name in trees:
            values = [r[name][case] for r in rounds]
            figures[f"{name}_ns_per_line"] = values
            figures[f"{name}_median"] = statistics.median(values)
        ratios = [r["counters"][case] / r["baseline"][case] for r in rounds]
        figures["ratio_per_round"] = ratios
        figures["ratio_median"] = statistics.median(ratios)
        summary[case] = figures
        print(
            f"{case}: baseline {figures['baseline_median']:.0f} ns/line, with counters "
            f"{figures['counters_median']:.0f} ns/line; ratio median "
            f"{figures['ratio_median']:.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}, "
            f"{args.rounds} rounds)"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        document = {"argv": sys.argv[1:] if argv is None else list(argv), "cases": summary}
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
