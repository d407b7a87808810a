"""``python -m bench.asyncio_herd``: run herd servers on asyncio (mirrors ``trioherd/cli.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from functools import partial

from bench.asyncio_herd.herd import RunningHerd, run_herd
from bench.asyncio_herd.places import OfflinePlaces, open_places
from bench.asyncio_herd.server import HerdServer
from trioherd.logs import HerdLogs
from trioherd.options import Options, exit_status, parse_options

PROG = "python -m bench.asyncio_herd"


@contextlib.asynccontextmanager
async def places_server_process() -> AsyncIterator[str]:
    """Our Places server (a trio program) as a child process; yields its URL.

    In ``trioherd`` it runs as a task beside the herd; an asyncio process
    cannot host a trio task, so here it is a process of its own.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trioherd.places_server", "--port", "0",
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        banner = (await process.stderr.readline()).decode()
        if not banner.startswith("Places server on "):
            raise OSError(f"the Places server did not start: {banner.strip()}")
        url = banner.split()[-1]
        print(f"Places server on {url}", file=sys.stderr, flush=True)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


def _announce(logs: HerdLogs, running: RunningHerd) -> None:
    for name, (host, port) in running.addresses.items():
        print(
            f"{name} listening on {host}:{port}, log {logs.log_dir / name}.log",
            file=sys.stderr,
            flush=True,
        )


async def serve(
    options: Options, logs: HerdLogs, server_class: type[HerdServer] = HerdServer
) -> None:
    """Run the servers ``options`` names until SIGINT or SIGTERM."""
    async with contextlib.AsyncExitStack() as stack:
        url = None
        if options.places.local_server:
            url = await stack.enter_async_context(places_server_process())
        places = await stack.enter_async_context(open_places(options.places, url))
        warm_up = None
        if isinstance(places, OfflinePlaces):
            # Read the index while the herd starts, not at the first WHATSAT.
            warm_up = asyncio.create_task(places.warm_up())
        try:
            await run_herd(
                options.herd,
                options.names,
                places,
                logs,
                max_line=options.max_line,
                server_class=server_class,
                limits=options.limits,
                secret=options.herd_secret,
                started=partial(_announce, logs),
            )
        finally:
            # Not in a TaskGroup: nothing would cancel it but us.
            if warm_up is not None:
                warm_up.cancel()


def main(
    argv: Sequence[str] | None = None,
    *,
    server_class: type[HerdServer] = HerdServer,
    prog: str = PROG,
) -> int:
    """Entry point; returns the exit status.

    ``server_class`` and ``prog`` let ``bench.asyncio_herd.protocol`` run its
    server with the same command line.
    """
    options = parse_options(argv, prog, implementation="asyncio")
    try:
        with HerdLogs(options.log_dir, options.names, level=options.log_level) as logs:
            if options.uvloop:
                import uvloop

                uvloop.run(serve(options, logs, server_class))
            else:
                asyncio.run(serve(options, logs, server_class))
    except BaseException as exc:
        return exit_status(exc, prog)
    return 0
