"""``python -m bench``: the herd implementations side by side (see bench/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, sysinfo
from bench.impls import DEFAULT_IMPLEMENTATIONS, IMPLEMENTATIONS, Implementation
from bench.loadgen import new_event_loop, raise_nofile_limit
from bench.procs import ROOT
from bench.runner import Progress, Runner, Step, plan
from bench.settings import FULL, QUICK, WORKLOADS, adjust

PROG = "python -m bench"
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _names(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; choose from {','.join(known)}"
        )
    return list(dict.fromkeys(names))


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Benchmark herd implementations side by side: each server its own "
        "process, the same workloads against each, ratios computed in the same run.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run (seconds per workload, small N)"
    )
    parser.add_argument(
        "--workloads",
        type=lambda text: _names(text, WORKLOADS, "workload"),
        default=list(WORKLOADS),
        metavar="LIST",
        help=f"comma-separated, from {','.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument(
        "--impls",
        type=lambda text: _names(text, list(IMPLEMENTATIONS), "implementation"),
        default=DEFAULT_IMPLEMENTATIONS,
        metavar="LIST",
        help=f"comma-separated, from {','.join(IMPLEMENTATIONS)} "
        f"(default: {','.join(DEFAULT_IMPLEMENTATIONS)}); "
        "one that does not import is skipped",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where results.json, table.txt and the PNG plots go (default: bench/results; "
        "with --quick, a new temporary directory, so a smoke run never replaces the "
        "committed full run)",
    )
    parser.add_argument(
        "--log-level",
        choices=["warning", "info"],
        default="warning",
        help="the servers' --log-level (default warning), except for the +logs "
        "implementations, which log every line as a server does by default",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        metavar="DIR",
        help="keep server logs, configurations and standard errors here "
        "(default: a temporary directory, removed at the end)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="measured time per closed-loop step (default 5, quick 0.75)",
    )
    parser.add_argument(
        "--max-clients",
        type=int,
        metavar="N",
        help="cap the memory workload's table sizes (the 1M-client case is the slowest step)",
    )
    parser.add_argument(
        "--loadgen-procs",
        type=int,
        metavar="K",
        help="load generator processes per step (default 1)",
    )
    parser.add_argument(
        "--places",
        choices=["server", "stub"],
        default="server",
        help="WHATSAT's Places source: our Places server (default), or a stub giving "
        "the same answers and latency for almost no CPU, so that WHATSAT measures the "
        "herd rather than the Places server",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        metavar="R",
        help="run each timed case (iamat, churn, whatsat, flood) R times, interleaved, "
        "and report the medians (default 3, quick 1)",
    )
    parser.add_argument(
        "--iamat-clients",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        metavar="N,...",
        help="the IAMAT workload's client counts (default 1,10,100,1000; quick 1,10,100)",
    )
    parser.add_argument(
        "--fault-cycles",
        type=int,
        metavar="C",
        help="kill/restart cycles in the faults workload (default 20, quick 1)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    return parser


def _implementations(names: Sequence[str]) -> tuple[dict[str, Implementation], dict[str, str]]:
    available, skipped = {}, {}
    for name in names:
        impl = IMPLEMENTATIONS[name]
        reason = impl.unavailable()
        if reason is None:
            available[name] = impl
        else:
            skipped[name] = reason
    return available, skipped


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1 if a step failed)."""
    args = build_parser().parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        build_parser().error("--duration must be positive")
    if args.max_clients is not None and args.max_clients < 1:
        build_parser().error("--max-clients must be at least 1")
    if args.loadgen_procs is not None and args.loadgen_procs < 1:
        build_parser().error("--loadgen-procs must be at least 1")
    if args.rounds is not None and args.rounds < 1:
        build_parser().error("--rounds must be at least 1")

    # Before any child starts: servers and load generators inherit it.
    nofile = raise_nofile_limit()
    settings = adjust(
        QUICK if args.quick else FULL,
        duration_s=args.duration,
        max_clients=args.max_clients,
        loadgen_procs=args.loadgen_procs,
        places_stub=args.places == "stub",
        rounds=args.rounds,
        iamat_clients=args.iamat_clients,
        fault_cycles=args.fault_cycles,
    )
    impls, skipped = _implementations(args.impls)
    for name, reason in skipped.items():
        print(f"{PROG}: skipping {name}: {reason}", file=sys.stderr)
    steps = plan(settings, args.workloads, list(impls))
    if args.out is None:
        args.out = (
            Path(tempfile.mkdtemp(prefix="trioherd-bench-quick-")) if args.quick else DEFAULT_OUT
        )
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        f"{PROG}: {len(steps)} steps ({'quick' if args.quick else 'full'} run), "
        f"implementations: {', '.join(impls) or 'none'}; results in {args.out}",
        file=sys.stderr,
        flush=True,
    )

    machine = sysinfo.machine_info(ROOT)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    progress = Progress(len(steps))
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="trioherd-bench-") as scratch:
        workdir = args.log_dir or Path(scratch)
        runner = Runner(settings, impls, workdir, args.log_level, progress)
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as loop:
                loop.run(_run_until_stopped(runner, steps))
        except (KeyboardInterrupt, asyncio.CancelledError):
            interrupted = True
            print(f"\n{PROG}: interrupted; writing what was measured", file=sys.stderr)
    records = runner.records
    # Table, targets and plots show the median of each case's rounds;
    # results.json keeps every round's record as well.
    combined = report.combine_rounds(records)
    names = list(impls)
    rows = report.table_rows(combined, names)
    found = report.targets(combined, names)
    text = _text_report(rows, combined, found, machine, settings.rounds, args.quick, skipped)
    print(text)
    document: dict[str, Any] = {
        "schema": report.SCHEMA,
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "duration_s": time.monotonic() - t0,
            "argv": sys.argv[1:] if argv is None else list(argv),
            "quick": args.quick,
            "interrupted": interrupted,
            "log_level": args.log_level,
            "workloads": args.workloads,
            "nofile_limit": list(nofile),
            "load_average_end": sysinfo.load_average(),
        },
        "machine": machine,
        "settings": dataclasses.asdict(settings),
        "implementations": {
            name: {
                "module": impl.module,
                "args": list(impl.args),
                "status": "skipped" if name in skipped else "ran",
                "reason": skipped.get(name),
            }
            for name, impl in ((n, IMPLEMENTATIONS[n]) for n in args.impls)
        },
        "sessions": runner.sessions,
        "runs": records,
        "combined": combined,
        "table": rows,
        "targets": found,
    }
    report.write_json(args.out / "results.json", document)
    (args.out / "table.txt").write_text(text + "\n")
    written = [args.out / "results.json", args.out / "table.txt"]
    if not args.no_plots:
        from bench.plots import plot_all  # matplotlib is slow to import: only when needed

        written += plot_all(combined, names, args.out)
    print(f"{PROG}: wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if any(r["error"] for r in records) else 0


async def _run_until_stopped(runner: Runner, steps: list[Step]) -> None:
    """Run the steps; SIGTERM stops them as Ctrl-C does, servers and all.

    Either way the run is cancelled, so every session's clean-up stops the
    processes it started before the partial results are written.
    """
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await runner.run(steps)


def _text_report(
    rows: list[list[str]],
    records: list[dict[str, Any]],
    found: list[dict[str, Any]],
    machine: dict[str, Any],
    rounds: int,
    quick: bool,
    skipped: dict[str, str],
) -> str:
    lines = [
        f"trioherd benchmarks ({'quick' if quick else 'full'} run), "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}",
        f"{machine['cpu_model']}, {machine['logical_cores']} cores, "
        f"{machine['memory_bytes'] / 2**30:.1f} GiB, {machine['os']}, Python {machine['python']}",
        "Ratios are trio / other, from this run; ↑ higher is better, ↓ lower is better.",
        *(
            [f"Timed cases (iamat, churn, whatsat, flood): the median of {rounds} rounds."]
            if rounds > 1
            else []
        ),
        "",
    ]
    if len(rows) > 1:
        lines.append(report.render(rows))
    for name, reason in skipped.items():
        lines.append(f"(skipped {name}: {reason})")
    ceiling = report.ceiling_lines(records)
    if ceiling:
        lines += [
            "",
            "Ceilings: the load generator against a trivial server; the Places source alone:",
            *ceiling,
        ]
    cpu = report.cpu_lines(records)
    if cpu:
        lines += ["", "CPU while measured (% of one core; 2 cores = 200%):", *cpu]
    lines += ["", "Targets:", report.render_targets(found)]
    return "\n".join(lines)
