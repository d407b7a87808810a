"""Helpers for tests: in-process herds on OS-chosen ports, clients, bounded waits.

Herds of subprocesses are :mod:`bench.procs`' (see ``conformance/processes.py``).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio

from bench.places_faults import Faults, FaultyPlacesServer
from bench.procs import free_ports as free_ports
from trioherd.client import exchange
from trioherd.core.config import CS131_HERD, HerdConfig, build_herd
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.limits import DEFAULT_LIMITS, Limits
from trioherd.herd import RunningHerd, run_herd
from trioherd.logs import HerdLogs
from trioherd.offline.nearby import NEARBY_PATH, KeyPolicy
from trioherd.places import OfflinePlaces

#: The longest any test waits for something that should take milliseconds.
WAIT = 10.0


def cs131_herd_on(ports: Sequence[int]) -> HerdConfig:
    """The CS 131 herd's names and links on other ports (0: the OS picks)."""
    return build_herd(
        {
            s.name: ("127.0.0.1", port, list(s.peers))
            for s, port in zip(CS131_HERD.servers, ports, strict=True)
        }
    )


@asynccontextmanager
async def herd_running(
    herd: HerdConfig,
    names: Sequence[str],
    log_dir: Path,
    places: OfflinePlaces,
    *,
    max_line: int = DEFAULT_MAX_LINE,
    limits: Limits = DEFAULT_LIMITS,
    secret: bytes | None = None,
) -> AsyncIterator[RunningHerd]:
    """Servers ``names`` of ``herd`` running in this process until the block ends."""
    with HerdLogs(log_dir, names, echo_errors=False) as logs:
        async with trio.open_nursery() as nursery:
            running: RunningHerd = await nursery.start(
                partial(
                    run_herd,
                    herd,
                    names,
                    places,
                    logs,
                    handle_signals=False,
                    max_line=max_line,
                    limits=limits,
                    secret=secret,
                )
            )
            yield running
            nursery.cancel_scope.cancel()


async def talk(address: tuple[str, int], payload: bytes) -> bytes:
    """Send ``payload``, half-close, return the whole reply (bounded wait)."""
    with trio.fail_after(WAIT):
        return await exchange(address, payload)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until ``check()`` is true, polling; fail after :data:`WAIT` seconds."""
    with trio.move_on_after(WAIT):
        # Polling is the point: the condition lives in another process or
        # behind a socket, where no event of ours can signal it.
        while not await check():  # noqa: ASYNC110
            await trio.sleep(0.005)
        return
    pytest.fail(f"timed out waiting for {what}")


async def whatsat_line(address: tuple[str, int], client: bytes) -> bytes:
    """The first line of a WHATSAT reply from ``address`` about ``client``."""
    reply = await talk(address, b"WHATSAT %s 10 1\n" % client)
    return reply.split(b"\n", 1)[0]


async def holds(address: tuple[str, int], client: bytes, at_line: bytes) -> bool:
    """Whether the server at ``address`` answers WHATSAT with ``at_line``."""
    return await whatsat_line(address, client) == at_line


@asynccontextmanager
async def places_server(
    faults: Faults | None = None, keys: KeyPolicy | None = None
) -> AsyncIterator[tuple[FaultyPlacesServer, str]]:
    """Our Places server, wrapped to count and misbehave, on an OS-chosen
    port; and its Nearby Search URL."""
    server = FaultyPlacesServer(faults, keys, random.Random(7))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, 0)
        yield server, f"http://127.0.0.1:{port}{NEARBY_PATH}"
        nursery.cancel_scope.cancel()
