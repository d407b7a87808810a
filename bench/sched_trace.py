"""What trio's run loop does per IAMAT at Hill: task steps, wake-ups, loop passes, latency.

    python -m bench.sched_trace --impl trio --clients 100 --seconds 5
    python -m bench.sched_trace --impl anyio-trio --clients 100 --seconds 5 --strace

Starts the five servers of a trio-based implementation (``trio`` or
``anyio-trio``) with every server run through this
module's ``serve`` wrapper, puts a closed IAMAT load on Hill, and tallies
Hill's run loop for ``--seconds`` with a :class:`trio.abc.Instrument`:

* task steps (``before_task_step``) by kind of task: connection, link
  sender, link watcher, acceptor, other;
* wake-ups (``task_scheduled``) and run-loop passes (``before_io_wait``);
* the scheduling latency of each step, from the moment the task was made
  runnable (``task_scheduled``) to the moment it ran (``before_task_step``),
  by kind: the time a ready task waits behind the others of its batch;
* the replies written (calls of :func:`trioherd.serving.finish_exchange`,
  one per answered exchange), the denominator of every "per IAMAT".

With ``--strace``, ``strace -c -f`` is attached to Hill for the same window,
for the system calls per reply (strace slows Hill several times over: only
the counts mean anything then, not the latencies).

The wrapper is bench-only: ``python -m bench.sched_trace serve MODULE ARGS``
runs ``MODULE.cli.main(ARGS)`` with the instrument added to ``trio.run``;
it records only between SIGUSR1 (start) and SIGUSR2 (stop, write
``/tmp/trioherd-sched-trace-PID.json``), so the product's code is
untouched and the other four servers run as usual.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.impls import IMPLEMENTATIONS, Implementation
from bench.procs import take_record
from bench.stats import spread_us
from bench.workers import closed_load_on_hill, merge

#: Task kinds, by a piece of the task's name (trio names a task after its function).
KINDS = (
    ("_serve_connection", "connection"),
    # The sender runs in the link's own task (PeerLink.run calls _send).
    ("PeerLink.run", "link sender"),
    ("_watch", "link watcher"),
    ("_accept", "acceptor"),
)


def trace_path(pid: int) -> Path:
    """Where the wrapper in process ``pid`` writes its tally."""
    return Path(tempfile.gettempdir()) / f"trioherd-sched-trace-{pid}.json"


def kind_of(name: str) -> str:
    """The kind of a task, from its name."""
    for piece, kind in KINDS:
        if piece in name:
            return kind
    return "other"


class Tally:
    """A trio instrument counting steps and wake-ups, and timing the wait to run.

    Records only while :attr:`recording`; cheap enough to leave installed.
    """

    def __init__(self) -> None:
        self.recording = False
        self.replies = 0
        self.passes = 0
        self.woken = 0
        self.steps: Counter[str] = Counter()
        self.waits: dict[str, list[int]] = {}
        self._woken_at: dict[object, int] = {}
        self._kinds: dict[str, str] = {}
        self.started_ns = 0
        self.stopped_ns = 0
        self.cpu_s = 0.0

    def start(self) -> None:
        self.recording = True
        self.started_ns = time.monotonic_ns()
        self.cpu_s = time.process_time()

    def stop(self) -> None:
        self.recording = False
        self.stopped_ns = time.monotonic_ns()
        self.cpu_s = time.process_time() - self.cpu_s

    # The trio.abc.Instrument hooks (duck-typed: trio calls what is there).
    def before_io_wait(self, timeout: float) -> None:
        if self.recording:
            self.passes += 1

    def task_scheduled(self, task: Any) -> None:
        if self.recording:
            self.woken += 1
            self._woken_at[task] = time.perf_counter_ns()

    def before_task_step(self, task: Any) -> None:
        if not self.recording:
            return
        name: str = task.name
        kind = self._kinds.get(name)
        if kind is None:
            kind = self._kinds[name] = kind_of(name)
        self.steps[kind] += 1
        woken = self._woken_at.pop(task, None)
        if woken is not None:
            self.waits.setdefault(kind, []).append(time.perf_counter_ns() - woken)

    def report(self) -> dict[str, Any]:
        return {
            "window_s": (self.stopped_ns - self.started_ns) / 1e9,
            "cpu_s": self.cpu_s,
            "replies": self.replies,
            "passes": self.passes,
            "woken": self.woken,
            "steps": dict(self.steps),
            "waits_us": {kind: spread_us(waits) for kind, waits in self.waits.items()},
        }


def serve(module: str, argv: list[str]) -> int:
    """Run ``module``'s herd CLI with the tally installed in ``trio.run``."""
    import trio

    import trioherd.serving

    tally = Tally()
    finish = trioherd.serving.finish_exchange

    def counted(*args: Any) -> bytes:
        tally.replies += tally.recording
        return finish(*args)

    # Before the layer's server module imports it by name.
    trioherd.serving.finish_exchange = counted  # type: ignore[assignment]
    run = trio.run

    def instrumented(*args: Any, **kwargs: Any) -> Any:
        kwargs["instruments"] = [*kwargs.get("instruments", ()), tally]
        return run(*args, **kwargs)

    trio.run = instrumented  # type: ignore[assignment]

    def stop(signum: int, frame: object) -> None:
        tally.stop()
        trace_path(os.getpid()).write_text(json.dumps(tally.report()))

    signal.signal(signal.SIGUSR1, lambda signum, frame: tally.start())
    signal.signal(signal.SIGUSR2, stop)
    main: Callable[[list[str]], int] = importlib.import_module(f"{module}.cli").main
    return main(argv)


#: The implementations this can trace: the module the wrapper runs, and its flags.
TRACEABLE = {"trio": "trioherd", "anyio-trio": "bench.anyio_herd"}


async def trace(impl_name: str, clients: int, seconds: float, strace: bool) -> dict[str, Any]:
    """Run the load, tally Hill for ``seconds``; the tally (and strace's counts)."""
    impl = IMPLEMENTATIONS[impl_name]
    wrapped = Implementation(
        f"{impl_name}-traced", "bench.sched_trace", ("serve", TRACEABLE[impl_name], *impl.args)
    )
    async with closed_load_on_hill(wrapped, clients, "sched-") as (herd, workers):
        hill = herd.pids()["Hill"]
        start_ns = time.monotonic_ns() + 2_000_000_000
        await workers.go(start_ns, start_ns + int((seconds + 3) * 1e9))
        await asyncio.sleep(3.0)
        tracer = None
        if strace:
            tracer = await asyncio.create_subprocess_exec(
                "strace", "-c", "-f", "-p", str(hill),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            await asyncio.sleep(0.5)
        os.kill(hill, signal.SIGUSR1)
        await asyncio.sleep(seconds)
        os.kill(hill, signal.SIGUSR2)
        counts: dict[str, int] = {}
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)
            _, err = await tracer.communicate()
            from bench.syscalls import parse_strace_summary

            counts = parse_strace_summary(err.decode())
        load = merge(await workers.results())
        report = await take_record(trace_path(hill))
    report["syscalls"] = counts
    report["load_rate"] = load["completed"] / load["window_s"] if load["window_s"] else 0.0
    return report


def describe(impl: str, report: dict[str, Any]) -> str:
    """The tally as text, per reply."""
    replies = report["replies"] or 1
    rate = report["replies"] / report["window_s"]
    per_pass = report["replies"] / max(report["passes"], 1)
    lines = [
        f"{impl}: {report['replies']} replies in {report['window_s']:.2f} s ({rate:,.0f}/s; "
        f"load generator {report['load_rate']:,.0f}/s), "
        f"Hill CPU {1e6 * report['cpu_s'] / replies:.1f} µs/reply (instrumented)",
        f"  loop passes {report['passes'] / replies:.3f}/reply ({per_pass:.1f} replies/pass), "
        f"wake-ups {report['woken'] / replies:.3f}/reply, "
        f"task steps {sum(report['steps'].values()) / replies:.3f}/reply",
    ]
    for kind, steps in sorted(report["steps"].items(), key=lambda item: -item[1]):
        waits = report["waits_us"].get(kind, {})
        shown = ", ".join(f"{k} {v:,.0f}" for k, v in waits.items() if k not in ("n", "max"))
        lines.append(f"    {kind:13} {steps / replies:6.3f} steps/reply; wait to run µs: {shown}")
    if report["syscalls"]:
        calls = report["syscalls"]
        top = sorted(calls.items(), key=lambda item: -item[1])[:10]
        lines.append("  syscalls/reply: " + ", ".join(f"{n} {c / replies:.2f}" for n, c in top))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: trace, or (``serve``) be a traced server."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return serve(argv[1], argv[2:])
    parser = argparse.ArgumentParser(
        prog="python -m bench.sched_trace", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--impl", default="trio", help=f"comma-separated, of {', '.join(TRACEABLE)} (trio)"
    )
    parser.add_argument("--clients", type=int, default=100, help="closed-loop IAMAT clients (100)")
    parser.add_argument("--seconds", type=float, default=5.0, help="the tallied window (5)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds, implementations interleaved (1)"
    )
    parser.add_argument("--strace", action="store_true", help="also count Hill's system calls")
    parser.add_argument("--out", type=Path, help="write every round's tally here as JSON")
    args = parser.parse_args(argv)
    command = "python -m bench.sched_trace " + " ".join(argv)
    print(f"# {command}\n# load average {os.getloadavg()[0]:.2f}", flush=True)
    rounds = []
    for round_no in range(args.rounds):
        for impl in args.impl.split(","):
            report = asyncio.run(trace(impl, args.clients, args.seconds, args.strace))
            report.update(impl=impl, round=round_no + 1, loadavg=os.getloadavg()[0])
            rounds.append(report)
            heading = f"round {round_no + 1}, load average {report['loadavg']:.2f}"
            print(f"{heading}\n{describe(impl, report)}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"command": command, "rounds": rounds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
