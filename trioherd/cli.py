"""``python -m trioherd``: run herd servers on trio."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import trio

from trioherd.core.logs import HerdLogs, LogSetupError
from trioherd.core.options import Options, parse_options
from trioherd.herd import BindError, RunningHerd, run_herd
from trioherd.places import OfflinePlaces

PROG = "python -m trioherd"


async def serve(options: Options, logs: HerdLogs) -> None:
    """Run the servers ``options`` names until SIGINT or SIGTERM."""
    places = OfflinePlaces()
    async with trio.open_nursery() as nursery:
        # Read the places index while the herd starts, not at the first WHATSAT.
        nursery.start_soon(places.warm_up)
        running: RunningHerd = await nursery.start(
            lambda task_status: run_herd(
                options.herd,
                options.names,
                places,
                logs,
                max_line=options.max_line,
                task_status=task_status,
            )
        )
        for name, (host, port) in running.addresses.items():
            print(
                f"{name} listening on {host}:{port}, log {logs.log_dir / name}.log",
                file=sys.stderr,
                flush=True,
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    options = parse_options(argv, PROG)
    try:
        with HerdLogs(options.log_dir, options.names, level=options.log_level) as logs:
            trio.run(serve, options, logs)
    except BaseException as exc:
        leaf = _sole_exception(exc)
        if isinstance(leaf, (LogSetupError, BindError)):
            print(f"{PROG}: error: {leaf}", file=sys.stderr)
            return 1
        if isinstance(leaf, KeyboardInterrupt):
            # Ctrl-C before the signal handler was installed.
            return 130
        raise
    return 0


def _sole_exception(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
