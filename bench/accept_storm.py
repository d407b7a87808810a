"""asyncio's accept loop out of descriptors (CPython gh-151615), by listen backlog.

    python -m bench.accept_storm --backlogs 100,4096 --connections 100 --nofile 64 \\
        --seconds 2 --out FILE

For each backlog, a fresh process runs a bare ``asyncio.start_server`` on
127.0.0.1 with its descriptor limit lowered to ``--nofile``; this process
opens ``--connections`` connections to it and holds them, so the server
runs out of descriptors with connections still waiting in its backlog.
asyncio's ``_accept_connection`` (3.11 to 3.13 at least) then calls
``accept`` up to *backlog* times per wake-up, reports each EMFILE to the
loop's exception handler, and schedules one retry of the listener per
failure. The server keeps asyncio's default handler (which logs a
traceback for each, here to ``/dev/null``) and counts what reaches it.

Reported per backlog: the handler's calls while serving (``accept_errors``)
and after the listener was closed (``errors_after_close``: the scheduled
retries firing on a closed socket), the longest gap between the wake-ups
of a task that sleeps 10 ms (``longest_stall_ms``: how long the loop was
busy with the storm) and the server's CPU seconds. Only loopback, a
bounded number of connections, a few seconds per backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.procs import child_environment

ACCEPT_ERROR = "socket.accept() out of system resource"


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # A client holds its descriptor until it closes.
    await reader.read()
    writer.close()


async def _serve(backlog: int, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    counts = {"accept_errors": 0, "errors_after_close": 0, "other": 0}
    closed = False

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if closed:
            counts["errors_after_close"] += 1
        elif message == ACCEPT_ERROR:
            counts["accept_errors"] += 1
        else:
            counts["other"] += 1
        # What an application that kept the default gets: a traceback each time.
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    server = await asyncio.start_server(_hold, "127.0.0.1", 0, backlog=backlog)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    longest = 0.0
    last = time.monotonic()
    cpu_start = time.process_time()
    deadline = last + seconds
    while (now := time.monotonic()) < deadline:
        longest = max(longest, now - last)
        last = now
        await asyncio.sleep(0.01)
    longest = max(longest, time.monotonic() - last)
    server.close()
    closed = True
    # The retries scheduled before the close fire within asyncio's retry
    # delay (1 s); wait that long, plus a margin, to count them.
    await asyncio.sleep(1.5)
    return {
        "backlog": backlog,
        **counts,
        "longest_stall_ms": round(longest * 1000, 1),
        "server_cpu_s": round(time.process_time() - cpu_start, 3),
    }


def child(backlog: int, nofile: int, seconds: float) -> int:
    """The server process: print the port, serve, print the figures as JSON."""
    logging.basicConfig(stream=open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    print(json.dumps(asyncio.run(_serve(backlog, seconds))), flush=True)
    return 0


def storm(backlog: int, connections: int, nofile: int, seconds: float) -> dict[str, Any]:
    """Run one server process and hold ``connections`` connections to it."""
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.accept_storm", "--child", str(backlog)),
            *("--nofile", str(nofile), "--seconds", str(seconds)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=child_environment(),
    )
    assert server.stdout is not None
    try:
        port = int(server.stdout.readline())
        held = []
        for _ in range(connections):
            sock = socket.socket()
            sock.setblocking(False)
            # Non-blocking: the connections past the server's limit wait in
            # its backlog, which is the point.
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", port))
            held.append(sock)
        figures: dict[str, Any] = json.loads(server.stdout.readline())
        for sock in held:
            sock.close()
        figures["connections"] = connections
        figures["nofile"] = nofile
        return figures
    finally:
        server.wait(timeout=30)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.accept_storm",
        description="asyncio's accept loop out of descriptors, by listen backlog.",
    )
    parser.add_argument("--backlogs", default="100,4096", help="listen backlogs (default 100,4096)")
    parser.add_argument("--connections", type=int, default=100, help="held (default 100)")
    parser.add_argument("--nofile", type=int, default=64, help="server's descriptor limit")
    parser.add_argument("--seconds", type=float, default=2.0, help="per backlog (default 2)")
    parser.add_argument("--out", type=Path, help="also write the figures here, as JSON")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints one line per backlog."""
    args = build_parser().parse_args(argv)
    if args.child is not None:
        return child(args.child, args.nofile, args.seconds)
    results = []
    for backlog in (int(word) for word in args.backlogs.split(",")):
        figures = storm(backlog, args.connections, args.nofile, args.seconds)
        results.append(figures)
        print(
            f"backlog {backlog}: {figures['accept_errors']} accept errors in {args.seconds} s, "
            f"{figures['errors_after_close']} after close, longest stall "
            f"{figures['longest_stall_ms']} ms, server CPU {figures['server_cpu_s']} s"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        document = {"python": sys.version.split()[0], "argv": sys.argv[1:], "results": results}
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
