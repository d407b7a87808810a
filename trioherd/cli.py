"""``python -m trioherd``: run herd servers on trio."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial

import trio

from trioherd.herd import RunningHerd, run_herd
from trioherd.logs import HerdLogs
from trioherd.offline.nearby import NEARBY_PATH
from trioherd.options import Options, exit_status, parse_options
from trioherd.places import OfflinePlaces, open_places
from trioherd.places_server import PlacesServer
from trioherd.stream import LEAN_STREAMS, StreamFactory

PROG = "python -m trioherd"


async def serve(options: Options, logs: HerdLogs, streams: StreamFactory = LEAN_STREAMS) -> None:
    """Run the servers ``options`` names until SIGINT or SIGTERM."""
    async with trio.open_nursery() as nursery:
        url = None
        if options.places.local_server:
            port = await nursery.start(PlacesServer().serve, 0)
            url = f"http://127.0.0.1:{port}{NEARBY_PATH}"
            print(f"Places server on {url}", file=sys.stderr, flush=True)
        async with open_places(options.places, url) as places:
            if isinstance(places, OfflinePlaces):
                # Read the index while the herd starts, not at the first WHATSAT.
                nursery.start_soon(places.warm_up)
            async with trio.open_nursery() as herd_nursery:
                running: RunningHerd = await herd_nursery.start(
                    partial(
                        run_herd,
                        options.herd,
                        options.names,
                        places,
                        logs,
                        max_line=options.max_line,
                        streams=streams,
                        limits=options.limits,
                        secret=options.herd_secret,
                    )
                )
                for name, (host, port) in running.addresses.items():
                    print(
                        f"{name} listening on {host}:{port}, log {logs.log_dir / name}.log",
                        file=sys.stderr,
                        flush=True,
                    )
        # The herd has stopped: stop what was started beside it.
        nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None, *, streams: StreamFactory = LEAN_STREAMS) -> int:
    """Entry point; returns the exit status.

    Args:
        argv: the command line's words (default: ``sys.argv[1:]``).
        streams: where the servers' streams come from (the bench passes
            another factory to measure; users have no reason to).
    """
    options = parse_options(argv, PROG)
    try:
        with HerdLogs(options.log_dir, options.names, level=options.log_level) as logs:
            trio.run(serve, options, logs, streams)
    except BaseException as exc:
        return exit_status(exc, PROG)
    return 0
