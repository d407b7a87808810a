"""CPU per task step of each event loop: what a trip round the loop costs by itself.

    python -m bench.step_cost [--tasks 100] [--steps 2000] [--rounds 5]

``--tasks`` tasks each yield ``--steps`` times (``trio.lowlevel.checkpoint()``
on trio, ``asyncio.sleep(0)`` on asyncio): nothing but the loop's own work
of putting a task back and running it. The figure is process CPU time per
step, each loop in its own rounds, interleaved, so a shared machine's drift
touches both alike. It is the floor under every task switch the herd makes
per request (``bench.sched_trace`` counts them), which no code of ours can
lower except by switching less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import trio


def trio_steps(tasks: int, steps: int) -> float:
    """CPU seconds per step on trio."""

    async def one() -> None:
        for _ in range(steps):
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(one)

    start = time.process_time()
    trio.run(main)
    return (time.process_time() - start) / (tasks * steps)


def asyncio_steps(tasks: int, steps: int) -> float:
    """CPU seconds per step on asyncio."""

    async def one() -> None:
        for _ in range(steps):
            await asyncio.sleep(0)

    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(tasks):
                group.create_task(one())

    start = time.process_time()
    asyncio.run(main())
    return (time.process_time() - start) / (tasks * steps)


def main(argv: Sequence[str] | None = None) -> int:
    """Print each loop's CPU per step, median and range over the rounds."""
    parser = argparse.ArgumentParser(prog="python -m bench.step_cost")
    parser.add_argument("--tasks", type=int, default=100, help="tasks yielding (100)")
    parser.add_argument("--steps", type=int, default=2000, help="yields per task (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per loop (5)")
    args = parser.parse_args(argv)
    loops: dict[str, Callable[[int, int], float]] = {"trio": trio_steps, "asyncio": asyncio_steps}
    figures: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name, run in loops.items():
            figures[name].append(1e6 * run(args.tasks, args.steps))
    command = "python -m bench.step_cost " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {command}\n# load average {os.getloadavg()[0]:.2f}")
    for name, values in figures.items():
        print(
            f"{name:8} {statistics.median(values):6.2f} µs CPU per step "
            f"({min(values):.2f}-{max(values):.2f})"
        )
    ratios = [t / a for t, a in zip(figures["trio"], figures["asyncio"], strict=True)]
    print(
        f"trio/asyncio {statistics.median(ratios):.2f}x per round "
        f"({min(ratios):.2f}-{max(ratios):.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
