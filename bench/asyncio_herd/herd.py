"""Running herd servers on asyncio: bind, serve, stop on a signal.

Mirrors ``trioherd/herd.py``: every listener is bound before any server
starts, so servers on port 0 can be linked to each other, then each server
runs as a task of one TaskGroup. Signals come through
``loop.add_signal_handler`` rather than trio's signal receiver.
"""

from __future__ import annotations

import asyncio
import math
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.asyncio_herd.server import SHUTDOWN_GRACE, HerdServer
from trioherd import serving
from trioherd.core.config import HerdConfig
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.limits import DEFAULT_LIMITS, Limits
from trioherd.core.places import PlacesSource
from trioherd.core.tls import PLAIN, TlsContexts
from trioherd.durable import journaling
from trioherd.logs import HerdLogs
from trioherd.serving import bind_herd

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
    tls: TlsContexts = PLAIN,
    handle_signals: bool = True,
    server_class: type[HerdServer] = HerdServer,
    state_dir: Path | None = None,
    started: Callable[[RunningHerd], None] = lambda running: None,
) -> None:
    """Run the servers ``names`` of ``herd`` until a signal or cancellation.

    The arguments are those of ``trioherd.herd.run_herd``; ``started`` is
    called with a :class:`RunningHerd` once every server is listening, and
    ``server_class`` is the server to run (the bench measures two).

    Raises:
        BindError: a server's address cannot be listened on.
    """
    loop = asyncio.get_running_loop()
    # Signals are caught from before the port opens, as in trio: a
    # supervisor may send SIGTERM the moment it sees the server listening.
    stopper = _SignalStop(logs)
    if handle_signals:
        for signum in _SIGNALS:
            loop.add_signal_handler(signum, stopper, signum)
    try:
        sockets, addresses = bind_herd(herd, names)
    except BaseException:
        _remove_signal_handlers(loop, handle_signals)
        raise
    servers = {
        name: server_class(
            name,
            {peer: addresses[peer] for peer in herd[name].peers},
            places,
            logs.logger(name),
            logs.lines(name),
            max_line=max_line,
            limits=limits,
            secret=secret,
            tls=tls,
        )
        for name in names
    }
    running = RunningHerd(servers, {name: addresses[name] for name in names})
    # Left in place when the herd stops: the bug's retries outlive it.
    loop.set_exception_handler(_AcceptErrors(running))
    stopper.serve(running)
    try:
        # Loaded before any connection is accepted: no client sees an empty table.
        with journaling(state_dir, [(s.state, s.log) for s in servers.values()]):
            async with asyncio.TaskGroup() as group:
                for name, server in servers.items():
                    serving.announce(
                        server,
                        name,
                        addresses[name],
                        herd[name].peers,
                        places.description,
                        open_door=secret is None,
                    )
                    ready = asyncio.Event()
                    group.create_task(server.run(sockets[name], ready.set))
                    await ready.wait()
                started(running)
    finally:
        _remove_signal_handlers(loop, handle_signals)


def _remove_signal_handlers(loop: asyncio.AbstractEventLoop, installed: bool) -> None:
    if installed:
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)


#: SIGINT and SIGTERM stop the herd; SIGHUP reopens its logs.
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _SignalStop:
    """The signal handler: stops the herd, or remembers to once it exists.

    SIGHUP reopens the log files instead (logrotate has moved them).
    """

    def __init__(self, logs: HerdLogs) -> None:
        self._logs = logs
        self._running: RunningHerd | None = None
        self._caught: int | None = None

    def __call__(self, signum: int) -> None:
        if self._running is not None:
            self._running.on_signal(signum, self._logs, SHUTDOWN_GRACE)
        elif signum == signal.SIGHUP:
            self._logs.reopen()
        else:
            self._caught = signum

    def serve(self, running: RunningHerd) -> None:
        """The herd is made: stop it if a signal came while it was being made."""
        self._running = running
        if self._caught is not None:
            self(self._caught)


class _AcceptErrors:
    """The loop's exception handler: out of descriptors, one warning a second.

    On Python 3.11 asyncio's accept loop does not stop at EMFILE
    (CPython gh-151615, fixed upstream in 2026): it tries ``accept`` again
    as many times as the listen backlog allows, reports every failure to the
    loop's exception handler, whose default formats a traceback each time,
    and schedules a retry of the listener for each failure. With a backlog of
    4096 that stalled the loop for seconds, and the thousands of retries,
    firing after a shutdown closed the listener, each logged another
    traceback. This handler counts the first kind and drops the second,
    which is all it can do from outside. The trio herd has neither
    (``trioherd/stream.py``, ``accept_batch``).
    """

    def __init__(self, running: RunningHerd) -> None:
        self._running = running
        self._warned_at: dict[str, float] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message == "socket.accept() out of system resource":
            self._warn(context)
        elif message.startswith("Exception in callback BaseSelectorEventLoop._start_serving"):
            # A retry of a listener that has since been closed.
            pass
        else:
            loop.default_exception_handler(context)

    def _warn(self, context: dict[str, Any]) -> None:
        try:
            port = context["socket"].getsockname()[1]
        except (KeyError, OSError):
            port = None
        now = time.monotonic()
        for name, (_host, server_port) in self._running.addresses.items():
            if port in (None, server_port) and now - self._warned_at.get(name, -math.inf) >= 1.0:
                self._warned_at[name] = now
                reason = context.get("exception")
                self._running.servers[name].log.warning(
                    "cannot accept: %s; accepting again in a moment",
                    getattr(reason, "strerror", None) or reason,
                )
