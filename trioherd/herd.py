"""Running herd servers on trio: bind, serve, stop on a signal.

:func:`run_herd` runs one or more servers of a herd in this process, each in
a nursery of its own::

    run_herd
    ├── signal watcher           SIGINT/SIGTERM -> graceful stop, SIGHUP -> reopen logs
    └── HerdServer.run  × N      (see trioherd.server)

Every listener is bound before any server starts, so servers configured with
port 0 (the OS picks) can still be linked to each other: a link uses the
port a listener really got.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import trio

from trioherd import serving
from trioherd.core.config import HerdConfig
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.limits import DEFAULT_LIMITS, Limits
from trioherd.core.places import PlacesSource
from trioherd.durable import journaling
from trioherd.logs import HerdLogs
from trioherd.server import SHUTDOWN_GRACE, HerdServer
from trioherd.serving import bind_herd
from trioherd.stream import LEAN_STREAMS, StreamFactory

#: What :func:`run_herd` reports once every server is listening.
RunningHerd = serving.RunningHerd[HerdServer]


async def run_herd(
    herd: HerdConfig,
    names: Sequence[str],
    places: PlacesSource,
    logs: HerdLogs,
    *,
    max_line: int = DEFAULT_MAX_LINE,
    streams: StreamFactory = LEAN_STREAMS,
    limits: Limits = DEFAULT_LIMITS,
    secret: bytes | None = None,
    handle_signals: bool = True,
    state_dir: Path | None = None,
    task_status: trio.TaskStatus[RunningHerd] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the servers ``names`` of ``herd`` until a signal or cancellation.

    Args:
        herd: the whole herd, for addresses and links.
        names: the servers to run here.
        places: the Places source they share.
        logs: their log files.
        max_line: the longest line a connection may send.
        streams: where the servers' streams come from.
        limits: bounds on what clients may cost each server.
        secret: the herd secret peer links must prove they know, if any.
        handle_signals: stop gracefully on SIGINT and SIGTERM, and end
            the process if that takes more than the grace period; reopen
            the log files on SIGHUP.
        state_dir: keep each server's table in a journal there (trioherd.durable).
        task_status: for ``nursery.start``; reports a :class:`RunningHerd`.

    Raises:
        BindError: a server's address cannot be listened on.
        StateDirError: a journal in ``state_dir`` is unusable.
    """
    # Signals are caught from before the port opens: a supervisor may send
    # SIGTERM the moment it sees the server listening.
    with (
        trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        if handle_signals
        else contextlib.nullcontext()
    ) as signals:
        listeners, addresses = bind_herd(herd, names)
        servers = {
            name: HerdServer(
                name,
                {peer: addresses[peer] for peer in herd[name].peers},
                places,
                logs.logger(name),
                logs.lines(name),
                max_line=max_line,
                streams=streams,
                limits=limits,
                secret=secret,
            )
            for name in names
        }
        running = RunningHerd(servers, {name: addresses[name] for name in names})
        # Loaded before any connection is accepted: no client sees an empty table.
        with journaling(state_dir, [(s.state, s.log) for s in servers.values()]):
            async with trio.open_nursery() as nursery:
                if signals is not None:
                    nursery.start_soon(_watch_signals, running, logs, signals)
                async with trio.open_nursery() as server_nursery:
                    for name, server in servers.items():
                        serving.announce(
                            server,
                            name,
                            addresses[name],
                            herd[name].peers,
                            places.description,
                            open_door=secret is None,
                        )
                        await server_nursery.start(server.run, listeners[name])
                    task_status.started(running)
                # Every server has stopped: nothing left to watch for.
                nursery.cancel_scope.cancel()


async def _watch_signals(running: RunningHerd, logs: HerdLogs, signals: AsyncIterator[int]) -> None:
    async for signum in signals:
        if running.on_signal(signum, logs, SHUTDOWN_GRACE):
            return
