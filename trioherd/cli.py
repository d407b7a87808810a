"""``python -m trioherd``: run herd servers on trio."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial

import trio

from trioherd.core.tls import PLAIN
from trioherd.herd import RunningHerd, run_herd
from trioherd.logs import HerdLogs, note
from trioherd.offline.nearby import NEARBY_PATH
from trioherd.options import Options, exit_status, parse_options
from trioherd.places import OfflinePlaces, open_places
from trioherd.places_server import PlacesServer
from trioherd.serving import size_young_generation
from trioherd.stream import LEAN_STREAMS, StreamFactory, TlsStreams

#: The program's name as the console script; ``python -m trioherd`` passes its own.
PROG = "trioherd"


async def serve(options: Options, logs: HerdLogs, streams: StreamFactory = LEAN_STREAMS) -> None:
    """Run the servers ``options`` names until SIGINT or SIGTERM."""
    tls = options.tls.contexts()
    if tls != PLAIN:
        streams = TlsStreams(tls.server, tls.links, plain=streams)
    async with trio.open_nursery() as nursery:
        url = None
        if options.places.local_server:
            port = await nursery.start(PlacesServer().serve, 0)
            url = f"http://127.0.0.1:{port}{NEARBY_PATH}"
            print(f"Places server on {url}", file=sys.stderr, flush=True)
        async with open_places(options.places, url) as places:
            offline = places if isinstance(places, OfflinePlaces) else None
            board = None
            if options.metrics is not None:
                # Imported only here: prometheus_client is a tenth of a server's start-up
                # CPU, and a restarted server should answer at once.
                from trioherd.metrics import MeteredPlaces, MetricsBoard
                from trioherd.metrics_server import serve_metrics

                places = metered = MeteredPlaces(places)
                board = MetricsBoard("trio", metered, logs.dropped_records)
                host, port = options.metrics
                port = await nursery.start(serve_metrics, board, host, port)
                print(f"Metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
            async with trio.open_nursery() as herd_nursery:
                running: RunningHerd = await herd_nursery.start(
                    partial(
                        run_herd,
                        options.herd,
                        options.names,
                        places,
                        logs,
                        max_line=options.max_line,
                        state_dir=options.state_dir,
                        streams=streams,
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
                    nursery.start_soon(offline.warm_up, partial(note, logs, options.names))
        # The herd has stopped: stop what was started beside it.
        nursery.cancel_scope.cancel()


def main(
    argv: Sequence[str] | None = None,
    prog: str = PROG,
    *,
    streams: StreamFactory = LEAN_STREAMS,
) -> int:
    """Entry point; returns the exit status.

    Args:
        argv: the command line's words (default: ``sys.argv[1:]``).
        prog: the program's name in messages (``python -m trioherd`` passes its own).
        streams: where the servers' streams come from (the bench passes
            another factory to measure; users have no reason to).
    """
    options = parse_options(argv, prog)
    size_young_generation(options.limits)
    try:
        with options.open_logs() as logs:
            trio.run(serve, options, logs, streams)
    except BaseException as exc:
        return exit_status(exc, prog)
    return 0
