"""Running herd servers on anyio: bind, serve, stop on a signal.

Mirrors ``trioherd/herd.py``: every listener is bound before any server
starts, so servers on port 0 can be linked to each other::

    run_herd
    ├── signal watcher           SIGINT/SIGTERM -> graceful stop, SIGHUP -> reopen logs
    └── HerdServer.run  × N      (see bench.anyio_herd.server)

``anyio.open_signal_receiver`` is trio's signal receiver on trio and
``loop.add_signal_handler`` underneath on asyncio; the code is one.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from signal import Signals

import anyio
from anyio.abc import TaskStatus

from bench.anyio_herd.server import SHUTDOWN_GRACE, HerdServer
from trioherd import serving
from trioherd.core.config import HerdConfig
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.limits import DEFAULT_LIMITS, Limits
from trioherd.core.places import PlacesSource
from trioherd.durable import journaling
from trioherd.logs import HerdLogs

#: What :func:`run_herd` reports once every server is listening.
RunningHerd = serving.RunningHerd[HerdServer]


async def run_herd(
    herd: HerdConfig,
    names: Sequence[str],
    places: PlacesSource,
    logs: HerdLogs,
    *,
    max_line: int = DEFAULT_MAX_LINE,
    limits: Limits = DEFAULT_LIMITS,
    secret: bytes | None = None,
    handle_signals: bool = True,
    state_dir: Path | None = None,
    task_status: TaskStatus[RunningHerd] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the servers ``names`` of ``herd`` until a signal or cancellation.

    The arguments are those of ``trioherd.herd.run_herd``; ``task_status``
    reports a :class:`RunningHerd` to ``TaskGroup.start``.

    Raises:
        BindError: a server's address cannot be listened on.
        StateDirError: a journal in ``state_dir`` is unusable.
    """
    # As trio: signals are caught from before the port opens.
    with (
        anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        if handle_signals
        else contextlib.nullcontext()
    ) as signals:
        sockets, addresses = serving.bind_herd(herd, names)
        servers = {
            name: HerdServer(
                name,
                {peer: addresses[peer] for peer in herd[name].peers},
                places,
                logs.logger(name),
                logs.lines(name),
                max_line=max_line,
                limits=limits,
                secret=secret,
            )
            for name in names
        }
        running = RunningHerd(servers, {name: addresses[name] for name in names})
        # Loaded before any connection is accepted: no client sees an empty table.
        with journaling(state_dir, [(s.state, s.log) for s in servers.values()]):
            async with anyio.create_task_group() as group:
                if signals is not None:
                    group.start_soon(_watch_signals, running, logs, signals)
                async with anyio.create_task_group() as server_group:
                    for name, server in servers.items():
                        serving.announce(
                            server,
                            name,
                            addresses[name],
                            herd[name].peers,
                            places.description,
                            open_door=secret is None,
                        )
                        await server_group.start(server.run, sockets[name])
                    task_status.started(running)
                # Every server has stopped: nothing left to watch for.
                group.cancel_scope.cancel()


async def _watch_signals(
    running: RunningHerd, logs: HerdLogs, signals: AsyncIterator[Signals]
) -> None:
    async for signum in signals:
        if running.on_signal(signum, logs, SHUTDOWN_GRACE):
            return
