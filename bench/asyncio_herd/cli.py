"""``python -m bench.asyncio_herd``: run herd servers on asyncio (mirrors ``trioherd/cli.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import TYPE_CHECKING

from bench.asyncio_herd.herd import RunningHerd, run_herd
from bench.asyncio_herd.places import OfflinePlaces, open_places
from bench.asyncio_herd.server import HerdServer
from trioherd.logs import HerdLogs, note
from trioherd.options import Options, exit_status, parse_options
from trioherd.serving import size_young_generation

if TYPE_CHECKING:
    from trioherd.metrics import MetricsBoard

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


def _announce(logs: HerdLogs, board: MetricsBoard | None, running: RunningHerd) -> None:
    if board is not None:
        board.servers = running.servers
    running.say_listening(logs)


async def serve(
    options: Options, logs: HerdLogs, server_class: type[HerdServer] = HerdServer
) -> None:
    """Run the servers ``options`` names until SIGINT or SIGTERM."""
    async with contextlib.AsyncExitStack() as stack:
        url = None
        if options.places.local_server:
            url = await stack.enter_async_context(places_server_process())
        places = await stack.enter_async_context(open_places(options.places, url))
        offline = places if isinstance(places, OfflinePlaces) else None
        board = None
        if options.metrics is not None:
            # Imported only here, as in trioherd/cli.py: prometheus_client is a
            # tenth of a server's start-up CPU.
            from bench.asyncio_herd.metrics_server import serve_metrics
            from trioherd.metrics import MeteredPlaces, MetricsBoard

            places = metered = MeteredPlaces(places)
            board = MetricsBoard("asyncio", metered, logs.dropped_records)
            host, port = options.metrics
            # Closed on the way out: asyncio.Server is its own context manager.
            metrics = await stack.enter_async_context(await serve_metrics(board, host, port))
            port = metrics.sockets[0].getsockname()[1]
            print(f"Metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
        warm_ups: list[asyncio.Task[None]] = []

        def started(running: RunningHerd) -> None:
            _announce(logs, board, running)
            if offline is not None:
                # Read the index now, not at the first WHATSAT; not before
                # the servers listen, so a start that fails says only why.
                warm_up = offline.warm_up(partial(note, logs, options.names))
                warm_ups.append(asyncio.create_task(warm_up))

        try:
            await run_herd(
                options.herd,
                options.names,
                places,
                logs,
                max_line=options.max_line,
                state_dir=options.state_dir,
                server_class=server_class,
                limits=options.limits,
                secret=options.herd_secret,
                tls=options.tls.contexts(),
                started=started,
            )
        finally:
            # Not in a TaskGroup: nothing would cancel it but us.
            for task in warm_ups:
                task.cancel()


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
    size_young_generation(options.limits)
    if options.uvloop:
        try:
            import uvloop
        except ModuleNotFoundError:
            print(f"{prog}: --uvloop needs uvloop: pip install -e '.[bench]'", file=sys.stderr)
            return 1
    try:
        with options.open_logs() as logs:
            if options.uvloop:
                uvloop.run(serve(options, logs, server_class))
            else:
                asyncio.run(serve(options, logs, server_class))
    except BaseException as exc:
        return exit_status(exc, prog)
    return 0
