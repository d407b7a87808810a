"""``python -m bench.anyio_herd``: run herd servers on anyio (mirrors ``trioherd/cli.py``)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from bench.anyio_herd.herd import RunningHerd, run_herd
from bench.anyio_herd.metrics_server import serve_metrics
from bench.anyio_herd.places import OfflinePlaces, open_places
from trioherd.logs import HerdLogs, note
from trioherd.metrics import MeteredPlaces, MetricsBoard
from trioherd.options import Options, exit_status, parse_options
from trioherd.serving import size_young_generation

PROG = "python -m bench.anyio_herd"


@contextlib.asynccontextmanager
async def places_server(wanted: bool) -> AsyncIterator[str | None]:
    """Our Places server as a child process, if ``wanted``; yields its URL.

    ``trioherd`` runs it as a task; it is a trio program, which the asyncio
    backend cannot host, and one code path for both backends is the point.
    """
    if not wanted:
        yield None
        return
    command = [sys.executable, "-m", "trioherd.places_server", "--port", "0"]
    async with await anyio.open_process(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    ) as process:
        assert process.stderr is not None
        try:
            banner = await BufferedByteReceiveStream(process.stderr).receive_until(b"\n", 4096)
        except (anyio.EndOfStream, anyio.IncompleteRead) as exc:
            raise OSError("the Places server did not start") from exc
        url = banner.decode().split()[-1]
        print(f"Places server on {url}", file=sys.stderr, flush=True)
        try:
            yield url
        finally:
            process.terminate()


async def serve(options: Options, logs: HerdLogs) -> None:
    """Run the servers ``options`` names until SIGINT or SIGTERM."""
    async with anyio.create_task_group() as group:
        async with (
            places_server(options.places.local_server) as url,
            open_places(options.places, url) as places,
        ):
            offline = places if isinstance(places, OfflinePlaces) else None
            board = None
            if options.metrics is not None:
                places = metered = MeteredPlaces(places)
                board = MetricsBoard(f"anyio-{options.backend}", metered)
                host, port = options.metrics
                port = await group.start(serve_metrics, board, host, port)
                print(f"Metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
            async with anyio.create_task_group() as herd_group:
                running: RunningHerd = await herd_group.start(
                    partial(
                        run_herd,
                        options.herd,
                        options.names,
                        places,
                        logs,
                        max_line=options.max_line,
                        state_dir=options.state_dir,
                        limits=options.limits,
                        secret=options.herd_secret,
                    )
                )
                if board is not None:
                    board.servers = running.servers
                running.say_listening(logs)
                if offline is not None:
                    # Read the index now, not at the first WHATSAT; not before
                    # the servers listen, so a start that fails says only why.
                    group.start_soon(offline.warm_up, partial(note, logs, options.names))
        # The herd has stopped: stop what was started beside it.
        group.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    options = parse_options(argv, PROG, implementation="anyio")
    size_young_generation(options.limits)
    backend_options: dict[str, Any] = {"use_uvloop": True} if options.uvloop else {}
    try:
        with options.open_logs() as logs:
            anyio.run(
                serve, options, logs, backend=options.backend, backend_options=backend_options
            )
    except BaseException as exc:
        return exit_status(exc, PROG)
    return 0
