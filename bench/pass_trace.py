"""Where a herd's latency tail comes from: Hill's run-loop passes, timed, on any loop.

    python -m bench.pass_trace --impl trio,asyncio --clients 1000 --seconds 4 --rounds 3

Starts the five servers of each implementation, with Hill run through this
module's ``serve`` wrapper, puts a closed IAMAT load on Hill, and records for
``--seconds``:

* every pass of Hill's event loop: the wall time and the thread's CPU time
  from the end of one wait for I/O to the start of the next (the pass's
  work), the wait itself, and the number of sockets the wait returned.
  On trio through a :class:`trio.abc.Instrument` (``before_io_wait`` and
  ``after_io_wait``), on asyncio by wrapping ``selectors.EpollSelector.select``
  (the selector asyncio's loop waits in on Linux); uvloop waits in C and
  cannot be timed this way;
* the cyclic collector's pauses (``gc.callbacks``), by generation;
* the CPU time of every process over the window (the five servers and the
  load generator's workers, from ``/proc``), and Hill's context switches;
* the load generator's latencies over the window.

A pass whose wall time exceeds its CPU time was off the CPU for the
difference (preempted, or waiting for the GIL): ``off-CPU`` below. The
tail of a closed loop of N clients is decided by how long and how uneven
the passes are, so this splits a p99 into: more work per pass, longer
passes for the same work (off-CPU), collector pauses, or the load
generator's own share of the cores.

The wrapper is bench-only: ``python -m bench.pass_trace serve MODULE ARGS``
runs ``python -m MODULE ARGS`` with the hooks installed; they record only
between SIGUSR1 (start) and SIGUSR2 (stop, write
``/tmp/trioherd-pass-trace-PID.json``), so the product's code is untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import runpy
import selectors
import signal
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.impls import IMPLEMENTATIONS, Implementation
from bench.procs import take_record
from bench.stats import spread_us
from bench.workers import closed_load_on_hill, merge

#: Clock ticks per second, for /proc/PID/stat's CPU times.
TICKS = os.sysconf("SC_CLK_TCK")


def trace_path(pid: int) -> Path:
    """Where the wrapper in process ``pid`` writes its record."""
    return Path(tempfile.gettempdir()) / f"trioherd-pass-trace-{pid}.json"


class Passes:
    """The record of a loop's passes and the collector's pauses, kept in arrays."""

    def __init__(self) -> None:
        self.recording = False
        self.work_ns = array("q")
        self.work_cpu_ns = array("q")
        self.wait_ns = array("q")
        self.events = array("q")
        self.gc_ns: dict[int, array[int]] = {0: array("q"), 1: array("q"), 2: array("q")}
        self.gc_collected = [0, 0, 0]
        #: What was in the collected generation at a collection's start (``--garbage``).
        self.young: list[dict[str, Any]] = []
        #: Keep what the collector finds (``--garbage``): its types are reported.
        self.keep_garbage = os.environ.get("TRIOHERD_PASS_TRACE_GARBAGE") == "1"
        self._work_from = 0
        self._cpu_from = 0
        self._wait_from = 0
        self._gc_from = 0
        self.window_ns = 0

    def start(self) -> None:
        self._work_from = 0
        if self.keep_garbage:
            gc.set_debug(gc.DEBUG_SAVEALL)
        self.window_ns = -time.perf_counter_ns()
        self.recording = True

    def stop(self) -> None:
        self.recording = False
        self.window_ns += time.perf_counter_ns()
        gc.set_debug(0)

    def wait_begins(self) -> None:
        now = time.perf_counter_ns()
        if self.recording and self._work_from:
            self.work_ns.append(now - self._work_from)
            self.work_cpu_ns.append(time.thread_time_ns() - self._cpu_from)
        self._wait_from = now

    def wait_ends(self, events: int) -> None:
        now = time.perf_counter_ns()
        if self.recording and self._wait_from:
            self.wait_ns.append(now - self._wait_from)
            self.events.append(events)
        self._work_from = now
        self._cpu_from = time.thread_time_ns()

    def collector(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            if self.keep_garbage and self.recording and len(self.young) < 5:
                young = gc.get_objects(info["generation"])
                self.young.append(
                    {"generation": info["generation"], "objects": len(young),
                     "threshold": gc.get_threshold(), "counts": gc.get_count(),
                     "types": Counter(type(o).__qualname__ for o in young).most_common(12)}
                )  # fmt: skip
                del young
            self._gc_from = time.perf_counter_ns()
        elif self.recording and self._gc_from:
            self.gc_ns[info["generation"]].append(time.perf_counter_ns() - self._gc_from)
            self.gc_collected[info["generation"]] += info["collected"]

    def report(self) -> dict[str, Any]:
        work = list(self.work_ns)
        cpu = list(self.work_cpu_ns)
        off = [max(0, w - c) for w, c in zip(work, cpu, strict=True)]
        return {
            "window_s": self.window_ns / 1e9,
            "passes": len(work),
            "work_s": sum(work) / 1e9,
            "work_cpu_s": sum(cpu) / 1e9,
            "wait_s": sum(self.wait_ns) / 1e9,
            "events": sum(self.events),
            "work_us": spread_us(work),
            "work_cpu_us": spread_us(cpu),
            "off_cpu_us": spread_us(off),
            "events_per_pass": spread_us([e * 1000 for e in self.events]),
            # Passes by work time, longest first, with what they did.
            "longest": [
                {"work_us": w / 1e3, "cpu_us": c / 1e3, "events": e}
                for w, c, e in sorted(zip(work, cpu, self.events, strict=False), reverse=True)[:10]
            ],
            "gc": {
                str(gen): {
                    "count": len(pauses),
                    "total_ms": sum(pauses) / 1e6,
                    "max_ms": max(pauses, default=0) / 1e6,
                    "collected": self.gc_collected[gen],
                }
                for gen, pauses in self.gc_ns.items()
            },
            "young": self.young,
            # The first 200 passes in order: ready sockets, work ms.
            "sequence": [
                [e, round(w / 1e6, 2)] for e, w in zip(self.events, work[:200], strict=False)
            ],
            "garbage": Counter(type(o).__qualname__ for o in gc.garbage).most_common(20),
        }


class _TrioHooks:
    """The two trio instrument hooks a pass needs (duck-typed, as trio allows)."""

    def __init__(self, passes: Passes) -> None:
        self.passes = passes
        self.woken = 0

    def before_io_wait(self, timeout: float) -> None:
        self.passes.wait_begins()
        self.woken = 0

    def task_scheduled(self, task: object) -> None:
        self.woken += 1

    def after_io_wait(self, timeout: float) -> None:
        # Tasks made runnable by the wait's events (trio reschedules them
        # between the two hooks).
        self.passes.wait_ends(self.woken)


def serve(module: str, argv: list[str]) -> None:
    """Run ``python -m module argv`` with the pass hooks installed for every loop."""
    import trio

    passes = Passes()
    hooks = _TrioHooks(passes)
    run = trio.run

    def instrumented(*args: Any, **kwargs: Any) -> Any:
        kwargs["instruments"] = [*kwargs.get("instruments", ()), hooks]
        return run(*args, **kwargs)

    trio.run = instrumented  # type: ignore[assignment]
    select = selectors.EpollSelector.select

    def timed_select(
        self: selectors.EpollSelector, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        passes.wait_begins()
        ready = select(self, timeout)
        passes.wait_ends(len(ready))
        return ready

    selectors.EpollSelector.select = timed_select  # type: ignore[assignment,method-assign]
    gc.callbacks.append(passes.collector)
    # An experiment's young-generation threshold (``--gen0``), in place of
    # the one every herd's command line sets.
    if threshold := os.environ.get("TRIOHERD_PASS_TRACE_GEN0"):
        import trioherd.serving

        def fixed(limits: object) -> int:
            gc.set_threshold(int(threshold), *gc.get_threshold()[1:])
            return int(threshold)

        # Before the herd's command line imports it by name.
        trioherd.serving.size_young_generation = fixed

    def stop(signum: int, frame: object) -> None:
        passes.stop()
        trace_path(os.getpid()).write_text(json.dumps(passes.report()))

    signal.signal(signal.SIGUSR1, lambda signum, frame: passes.start())
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def switches(pid: int) -> tuple[int, int]:
    """Process ``pid``'s voluntary and involuntary context switches so far."""
    counts = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.endswith("ctxt_switches"):
            counts[key] = int(value)
    return counts["voluntary_ctxt_switches"], counts["nonvoluntary_ctxt_switches"]


async def trace(impl_name: str, clients: int, seconds: float) -> dict[str, Any]:
    """Run the load on ``impl_name``'s herd, record Hill for ``seconds``; the record."""
    impl = IMPLEMENTATIONS[impl_name]
    wrapped = Implementation(
        f"{impl_name}-passes", "bench.pass_trace", ("serve", impl.module, *impl.args)
    )
    async with closed_load_on_hill(wrapped, clients, "passes-") as (herd, workers):
        pids = herd.pids()
        hill = pids["Hill"]
        start_ns = time.monotonic_ns() + 2_000_000_000
        # The load generator counts from start_ns: the recorded
        # window is its last ``seconds`` (after a 1 s warm-up).
        window_from = start_ns + 1_000_000_000
        window_to = window_from + int(seconds * 1e9)
        await workers.go(window_from, window_to)
        await asyncio.sleep((window_from - time.monotonic_ns()) / 1e9)
        loadgen = {f"loadgen-{p.pid}": p.pid for p in workers.processes}
        everyone = {**pids, **loadgen}
        cpu_before = {name: cpu_seconds(pid) for name, pid in everyone.items()}
        switched = switches(hill)
        os.kill(hill, signal.SIGUSR1)
        await asyncio.sleep((window_to - time.monotonic_ns()) / 1e9)
        os.kill(hill, signal.SIGUSR2)
        cpu = {n: cpu_seconds(pid) - cpu_before[n] for n, pid in everyone.items()}
        voluntary, involuntary = switches(hill)
        load = merge(await workers.results())
        report = await take_record(trace_path(hill))
    samples = sorted(load["samples"])
    report["latency_us"] = spread_us(samples)
    report["completed"] = load["completed"]
    report["load_window_s"] = load["window_s"]
    report["cpu_s"] = {
        "Hill": cpu.pop("Hill"),
        "other servers": sum(v for k, v in cpu.items() if not k.startswith("loadgen")),
        "load generator": sum(v for k, v in cpu.items() if k.startswith("loadgen")),
    }
    report["switches"] = {
        "voluntary": voluntary - switched[0],
        "involuntary": involuntary - switched[1],
    }
    return report


def describe(impl: str, r: dict[str, Any]) -> str:
    """One round's record as text."""
    done = r["completed"] or 1
    window = r["window_s"] or 1.0

    def dist(d: dict[str, float], unit: float = 1e3, fmt: str = "{:,.1f}") -> str:
        return ", ".join(
            f"{k} {fmt.format(d[k] / unit)}" for k in ("p50", "p90", "p99", "max") if k in d
        )

    lat = r["latency_us"]
    cpu = r["cpu_s"]
    gcs = r["gc"]
    garbage = ", ".join(f"{name} {count:,}" for name, count in r.get("garbage", ()))
    lines = [
        f"{impl}: {r['completed'] / r['load_window_s']:,.0f} IAMAT/s; latency ms "
        f"{dist(lat)}; p99/p50 {lat.get('p99', 0) / max(lat.get('p50', 1), 1):.2f}",
        f"  passes {r['passes']} ({r['passes'] / window:,.0f}/s, {done / max(r['passes'], 1):.0f}"
        f" replies/pass); busy {r['work_s'] / window:.0%} of the window, CPU in passes "
        f"{r['work_cpu_s'] / max(r['work_s'], 1e-9):.0%} of their wall time",
        f"  pass wall ms {dist(r['work_us'])}",
        f"  pass CPU ms  {dist(r['work_cpu_us'])}",
        f"  off-CPU ms   {dist(r['off_cpu_us'])}",
        f"  ready per wait {dist(r['events_per_pass'], 1, '{:,.0f}')}",
        "  collector: "
        + "; ".join(
            f"gen {g} {v['count']} x, {v['total_ms']:.1f} ms, max {v['max_ms']:.2f} ms, "
            f"{v['collected']:,} collected"
            for g, v in gcs.items()
        ),
        f"  CPU s in the window: Hill {cpu['Hill']:.2f}, other servers {cpu['other servers']:.2f}"
        f", load generator {cpu['load generator']:.2f}; Hill switches voluntary "
        f"{r['switches']['voluntary']:,}, involuntary {r['switches']['involuntary']:,}",
    ]
    if garbage:
        lines.append(f"  garbage found (kept, by type): {garbage}")
    for young in r.get("young", ()):
        lines.append(f"  at a collection's start: {young}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: trace, or (``serve``) be a traced server."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        serve(argv[1], argv[2:])
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench.pass_trace", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--impl", default="trio,asyncio",
        help="comma-separated implementations, not uvloop's (trio,asyncio)",
    )  # fmt: skip
    parser.add_argument("--clients", type=int, default=1000, help="closed-loop IAMAT clients")
    parser.add_argument("--seconds", type=float, default=4.0, help="the recorded window (4)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, implementations interleaved")
    parser.add_argument("--out", type=Path, help="write every round's record here as JSON")
    parser.add_argument(
        "--garbage", action="store_true",
        help="keep what Hill's collector finds in the window and report its types "
        "(the kept garbage changes the collector's work: not for timing)",
    )  # fmt: skip
    parser.add_argument(
        "--gen0", type=int,
        help="the servers' young-generation threshold instead of the herd's own "
        "(700: CPython's default)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    unknown = [impl for impl in args.impl.split(",") if impl not in IMPLEMENTATIONS]
    if unknown:
        parser.error(f"unknown implementation {unknown[0]!r}; known: {', '.join(IMPLEMENTATIONS)}")
    if (
        args.clients < 1
        or args.seconds <= 0
        or args.rounds < 1
        or (args.gen0 is not None and args.gen0 < 1)
    ):
        parser.error("--clients, --seconds, --rounds and --gen0 must be positive")
    if args.gen0:
        os.environ["TRIOHERD_PASS_TRACE_GEN0"] = str(args.gen0)
    if args.garbage:
        os.environ["TRIOHERD_PASS_TRACE_GARBAGE"] = "1"
    command = "python -m bench.pass_trace " + " ".join(argv)
    print(f"# {command}\n# load average {os.getloadavg()[0]:.2f}", flush=True)
    rounds = []
    for round_no in range(args.rounds):
        for impl in args.impl.split(","):
            report = asyncio.run(trace(impl, args.clients, args.seconds))
            report.update(impl=impl, round=round_no + 1, loadavg=os.getloadavg()[0])
            rounds.append(report)
            print(f"round {round_no + 1}, load average {report['loadavg']:.2f}", flush=True)
            print(describe(impl, report), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"command": command, "rounds": rounds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
