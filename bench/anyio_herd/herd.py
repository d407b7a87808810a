"""Running herd servers on anyio: bind, serve, stop on a signal.

Mirrors ``trioherd/herd.py``: every listener is bound before any server
starts, so servers on port 0 can be linked to each other::

    run_herd
    ├── signal watcher           SIGINT/SIGTERM -> graceful stop
    └── HerdServer.run  × N      (see bench.anyio_herd.server)

``anyio.open_signal_receiver`` is trio's signal receiver on trio and
``loop.add_signal_handler`` underneath on asyncio; the code is one.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from bench.anyio_herd.server import HerdServer
from trioherd.core.config import HerdConfig
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.places import PlacesSource
from trioherd.logs import HerdLogs
from trioherd.serving import bind_herd


@dataclass(frozen=True)
class RunningHerd:
    """What :func:`run_herd` reports once every server is listening."""

    servers: dict[str, HerdServer]
    addresses: dict[str, tuple[str, int]]

    def stop(self) -> None:
        """Begin a graceful stop of every server."""
        for server in self.servers.values():
            server.stop()


async def run_herd(
    herd: HerdConfig,
    names: Sequence[str],
    places: PlacesSource,
    logs: HerdLogs,
    *,
    max_line: int = DEFAULT_MAX_LINE,
    handle_signals: bool = True,
    task_status: TaskStatus[RunningHerd] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the servers ``names`` of ``herd`` until a signal or cancellation.

    The arguments are those of ``trioherd.herd.run_herd``; ``task_status``
    reports a :class:`RunningHerd` to ``TaskGroup.start``.

    Raises:
        BindError: a server's address cannot be listened on.
    """
    sockets, addresses = bind_herd(herd, names)
    servers = {
        name: HerdServer(
            name,
            {peer: addresses[peer] for peer in herd[name].peers},
            places,
            logs.logger(name),
            max_line=max_line,
        )
        for name in names
    }
    running = RunningHerd(servers, {name: addresses[name] for name in names})
    async with anyio.create_task_group() as group:
        if handle_signals:
            group.start_soon(_stop_on_signal, running)
        async with anyio.create_task_group() as server_group:
            for name, server in servers.items():
                host, port = addresses[name]
                logs.logger(name).info(
                    "%s listening on %s:%d; peers %s; places: %s",
                    name,
                    host,
                    port,
                    ", ".join(herd[name].peers) or "none",
                    places.description,
                )
                await server_group.start(server.run, sockets[name])
            task_status.started(running)
        # Every server has stopped: nothing left to watch for.
        group.cancel_scope.cancel()


async def _stop_on_signal(running: RunningHerd) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            for server in running.servers.values():
                server.log.info("received %s", signal.Signals(signum).name)
            running.stop()
            return
