"""System calls per WHATSAT on Hill, counted by ``strace -c``.

    python -m bench.syscalls --impl trio --clients 200 --seconds 5

Starts the five servers of one implementation with our Places server
behind them (as ``bench.profile`` does), puts a closed WHATSAT load on
Hill, and attaches ``strace -c -f`` to Hill for ``--seconds``. Prints the
count of each system call per WHATSAT, taking every herd's two ``send``
calls per WHATSAT (the request to Places, the reply to the client) as the
count of WHATSATs: the load generator's own count would cover a different
window. strace slows Hill many times over, so only the counts mean
anything, not the times; and counts, unlike CPU time, are not disturbed by
other processes on a shared machine. Needs strace and ptrace permission.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.impls import IMPLEMENTATIONS
from bench.loadgen import Job
from bench.procs import bench_herd, places_url, start_places_server
from bench.workers import LoadWorkers
from trioherd.core.config import CS131_HERD

#: The calls that send bytes; two per WHATSAT on every herd.
SENDS = ("sendto", "send", "sendmsg", "write")
_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$")


def parse_strace_summary(text: str) -> dict[str, int]:
    """The call counts of a ``strace -c`` summary table."""
    counts = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match and match.group(2) != "total":
            counts[match.group(2)] = int(match.group(1))
    return counts


def per_whatsat(counts: dict[str, int]) -> dict[str, float]:
    """Each call's count per WHATSAT, two sends being one WHATSAT."""
    whatsats = sum(counts.get(name, 0) for name in SENDS) / 2
    if not whatsats:
        raise ValueError("no sends counted: no WHATSAT was answered")
    return {name: count / whatsats for name, count in counts.items()}


async def count(impl_name: str, clients: int, seconds: float) -> dict[str, int]:
    """Run the load and strace Hill; the summary's counts."""
    impl = IMPLEMENTATIONS[impl_name]
    with tempfile.TemporaryDirectory(prefix="trioherd-syscalls-") as scratch:
        workdir = Path(scratch)
        places, port = await start_places_server(workdir, (50, 150))
        herd = bench_herd(impl, CS131_HERD.names, workdir, "warning", places_url(port))
        try:
            await herd.start_all()
            host, hill_port = herd.address("Hill")
            job: Job = {
                "kind": "closed", "host": host, "port": hill_port, "clients": clients,
                "first_slot": 0, "id_prefix": "syscalls-", "message": "whatsat",
            }  # fmt: skip
            async with LoadWorkers([job], workdir) as workers:
                await workers.start()
                start_ns = time.monotonic_ns() + 2_000_000_000
                await workers.go(start_ns, start_ns + int((seconds + 4) * 1e9))
                await asyncio.sleep(3.0)
                tracer = await asyncio.create_subprocess_exec(
                    "strace", "-c", "-f", "-p", str(herd.pids()["Hill"]),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                await asyncio.sleep(seconds)
                tracer.send_signal(signal.SIGINT)
                _, err = await tracer.communicate()
                await workers.results()
        finally:
            await herd.stop()
            await places.stop()
    return parse_strace_summary(err.decode())


def main(argv: Sequence[str] | None = None) -> int:
    """Print the system calls per WHATSAT, most frequent first."""
    parser = argparse.ArgumentParser(prog="python -m bench.syscalls")
    parser.add_argument("--impl", default="trio", choices=sorted(IMPLEMENTATIONS))
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    counts = asyncio.run(count(args.impl, args.clients, args.seconds))
    command = "python -m bench.syscalls " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {command}")
    print(f"# {sum(counts.get(name, 0) for name in SENDS) // 2} WHATSATs (two sends each)")
    for name, each in sorted(per_whatsat(counts).items(), key=lambda item: -item[1]):
        print(f"  {each:6.2f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
