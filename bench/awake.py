"""Run a command with every CPU kept out of its idle state by idle-priority spinners.

    python -m bench.awake [--spinners N] -- COMMAND [ARGS...]

On this machine (a virtual machine whose idle CPUs halt at once: cpuidle
driver ``haltpoll`` with ``guest_halt_poll_ns`` 0), waking a process on an
idle CPU costs the host's wake-up of that virtual CPU, tens of microseconds.
A latency measured one line at a time pays it at every hop. This starts N
(default: one per CPU) processes that spin under ``SCHED_IDLE``, the policy
that yields to any ordinary process at once, so no CPU halts while COMMAND
runs; comparing a figure with and without it shows what the idle wake-ups
cost. The spinners burn CPU: use it only for short, unloaded latency runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence


def spin() -> None:
    """Spin forever at the lowest scheduling priority there is."""
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    while True:
        pass


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.awake", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--spinners", type=int, default=os.cpu_count() or 1, help="spinners (default: CPUs)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; COMMAND's exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["spin"]:
        spin()
    args = build_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise SystemExit("python -m bench.awake: no command")
    spinners = [
        subprocess.Popen([sys.executable, "-m", "bench.awake", "spin"])
        for _ in range(args.spinners)
    ]
    try:
        return subprocess.call(command)
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
