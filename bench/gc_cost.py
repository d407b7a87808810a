"""What CPython's cyclic garbage collector costs the herd (a seed report's claim).

One of the course reports this project answers says that keeping track of
references "is a bottle neck". Reference counting cannot be switched off,
but the cyclic collector can, so this measures what it costs, two ways:

``python -m bench.gc_cost core --rounds R --out FILE``
    The shared core alone, loop-free: ``ServerState.handle`` over IAMATs
    from 1,000 clients (each stored and flooded to two neighbours, the
    iamat workload's hot path), in fresh processes with the collector as
    is (``default``), with everything allocated before the timed loop
    moved out of its sight (``freeze``: ``gc.freeze()``) and switched off
    (``disable``), the modes interleaved round by round. Per mode: CPU
    nanoseconds per line, and in ``default`` how many collections ran and
    how long they took (``gc.callbacks``).

``python -m bench.gc_cost serve --gc MODE [--impl trio|asyncio] -- SERVER ARGS``
    A real herd server (``python -m trioherd`` or ``python -m
    bench.asyncio_herd``, with the same arguments after ``--``) with the
    collector in MODE; at exit it writes one JSON line to standard error:
    collections per generation, their total and longest pause, and the CPU
    time of the process. Drive it with any load (``python -m bench`` does
    not start it; run the bench's load generator or a client against it)
    and compare the modes' CPU per request.

Both only observe or switch the collector from outside; neither server
has a knob for it.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.procs import child_environment

MODES = ("default", "freeze", "disable")

#: Runs in the child: prints {"ns_per_line": ..., "collections": ..., "pause_ns": ...}.
CORE_TIMING = r"""
import gc, json, sys, time
from trioherd.core.state import ServerState

MODE = sys.argv[1]
BATCH, BATCHES, CLIENTS = 50, 400, 1000
pauses = []
started = [0]
def watch(phase, info):
    if phase == "start":
        started[0] = time.perf_counter_ns()
    else:
        pauses.append(time.perf_counter_ns() - started[0])
def lines(start):
    t = start
    for b in range(BATCHES):
        batch = []
        for i in range(BATCH):
            t += 1
            batch.append(b"IAMAT c%d +34.068930-118.445127 %d.000000001" % (t % CLIENTS, t))
        yield batch
best = float("inf")
collections = []
pause_ns = []
for repeat in range(5):
    gc.enable()
    gc.unfreeze()
    gc.collect()
    state = ServerState("Hill", ["Jaquez", "Smith"])
    batches = list(lines(1_700_000_000 + repeat * 10**6))
    if MODE == "freeze":
        gc.freeze()
    elif MODE == "disable":
        gc.disable()
    del pauses[:]
    gc.callbacks.append(watch)
    handle = state.handle
    now = time.time_ns()
    start = time.thread_time_ns()
    for batch in batches:
        for line in batch:
            handle(line, now, None)
    elapsed = time.thread_time_ns() - start
    gc.callbacks.remove(watch)
    best = min(best, elapsed / (BATCH * BATCHES))
    collections.append(len(pauses))
    pause_ns.append(sum(pauses))
print(json.dumps({"ns_per_line": best, "collections": collections, "pause_ns": pause_ns}))
"""


def measure_core(mode: str) -> dict[str, Any]:
    """One fresh process timing the core with the collector in ``mode``."""
    done = subprocess.run(
        [sys.executable, "-c", CORE_TIMING, mode],
        env=child_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def core(rounds: int, out: Path | None) -> int:
    """The ``core`` command: modes interleaved, rotated round by round."""
    runs: list[dict[str, dict[str, Any]]] = []
    for number in range(rounds):
        order = MODES[number % len(MODES) :] + MODES[: number % len(MODES)]
        runs.append({mode: measure_core(mode) for mode in order})
    summary: dict[str, Any] = {}
    for mode in MODES:
        values = [r[mode]["ns_per_line"] for r in runs]
        ratios = [r[mode]["ns_per_line"] / r["default"]["ns_per_line"] for r in runs]
        summary[mode] = {
            "ns_per_line": values,
            "median": statistics.median(values),
            "over_default_per_round": ratios,
            "collections_per_repeat": [r[mode]["collections"] for r in runs],
            "pause_ns_per_repeat": [r[mode]["pause_ns"] for r in runs],
        }
        print(
            f"{mode:8} {summary[mode]['median']:7.0f} ns/line (median of {rounds}); "
            f"over default {min(ratios):.3f}-{max(ratios):.3f}; "
            f"collections per 20,000 lines: {runs[0][mode]['collections']}"
        )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        document = {"python": sys.version.split()[0], "rounds": rounds, "modes": summary}
        out.write_text(json.dumps(document, indent=2) + "\n")
    return 0


class PauseLog:
    """Collections and their pauses, per generation, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.pause_ns = [0, 0, 0]
        self.longest_ns = 0
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
            return
        pause = time.perf_counter_ns() - self._started
        generation = info["generation"]
        self.collections[generation] += 1
        self.pause_ns[generation] += pause
        self.longest_ns = max(self.longest_ns, pause)

    def report(self, mode: str) -> None:
        """One JSON line on standard error, at exit."""
        line = {
            "gc_mode": mode,
            "collections": self.collections,
            "pause_ms": [round(ns / 1e6, 3) for ns in self.pause_ns],
            "longest_pause_ms": round(self.longest_ns / 1e6, 3),
            "process_cpu_s": round(time.process_time(), 3),
        }
        print(json.dumps(line), file=sys.stderr, flush=True)


def serve(mode: str, impl: str, server_args: list[str]) -> int:
    """The ``serve`` command: a herd server with the collector in ``mode``."""
    pauses = PauseLog()
    atexit.register(pauses.report, mode)
    run: Callable[[Sequence[str]], int]
    if impl == "asyncio":
        from bench.asyncio_herd.cli import main as asyncio_main

        run = asyncio_main
    else:
        from trioherd.cli import main as trio_main

        run = trio_main
    if mode == "freeze":
        # Everything imported so far (modules, the offline index's code)
        # is never scanned again; what the server allocates from here is.
        gc.collect()
        gc.freeze()
    elif mode == "disable":
        gc.disable()
    # Watched from here on, so freeze's own collection is not counted.
    gc.callbacks.append(pauses)
    return run(server_args)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.gc_cost", description="What the cyclic collector costs the herd."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    core_parser = commands.add_parser("core", help="the core's handle(), per collector mode")
    core_parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    core_parser.add_argument("--out", type=Path, help="also write the figures here, as JSON")
    serve_parser = commands.add_parser("serve", help="a herd server with the collector in MODE")
    serve_parser.add_argument("--gc", choices=MODES, default="default", help="collector mode")
    serve_parser.add_argument("--impl", choices=("trio", "asyncio"), default="trio")
    serve_parser.add_argument("server_args", nargs=argparse.REMAINDER, help="-- SERVER ARGS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "core":
        return core(args.rounds, args.out)
    words: list[str] = args.server_args
    server_args = words[1:] if words[:1] == ["--"] else words
    return serve(args.gc, args.impl, server_args)


if __name__ == "__main__":
    sys.exit(main())
