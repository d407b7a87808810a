"""The probe: a silent member of the herd that notes when each record reaches it.

The herd configuration lists a server named ``Probe`` as a neighbour of
every real server (:func:`bench.procs.herd_toml`). Each server therefore
opens a link to the probe, sends ``PEER <name> 1``, then every AT line it
stores, plus its whole table whenever the link (re)connects
(docs/peer-protocol.md). The probe only listens: it records, per link, the
moment each AT line of interest arrived. So "the probe has a record from
Smith" means "Smith stored it", at most one link hop earlier.

It runs in the benchmark's own event loop, where the IAMATs it times are
sent, so one clock (``time.monotonic_ns``) serves both ends.

Only client IDs that start with :attr:`Probe.prefix` are recorded: under
load, thousands of other lines a second pass through, and checking a whole
read for the prefix costs one ``bytes.find`` rather than a split per line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable


class _Expectation:
    """A client ID whose arrival from several servers is awaited."""

    __slots__ = ("arrivals", "done", "servers")

    def __init__(self, servers: Iterable[str], done: asyncio.Future[dict[str, int]]) -> None:
        self.servers = set(servers)
        self.arrivals: dict[str, int] = {}
        self.done = done

    def arrived(self, server: str, now: int) -> None:
        if server in self.servers and server not in self.arrivals:
            self.arrivals[server] = now
            if len(self.arrivals) == len(self.servers) and not self.done.done():
                self.done.set_result(self.arrivals)


class ProbeLink(asyncio.Protocol):
    """One server's link to the probe."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.server: str | None = None
        self.pending = b""
        #: Client ID -> when its first AT line arrived on this link.
        self.seen: dict[bytes, int] = {}
        self.connected_ns = time.monotonic_ns()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.probe.connections.add(self)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buffer = self.pending + data if self.pending else data
        if self.server is None:
            end = buffer.find(b"\n")
            if end < 0:
                self.pending = buffer
                return
            hello = buffer[:end].split()
            buffer = buffer[end + 1 :]
            if len(hello) >= 3 and hello[0] == b"PEER":
                self.server = hello[1].decode(errors="replace")
                self.probe.link_up(self)
            else:
                # Not a herd server's link: ignore the connection.
                self.server = "?"
        marker = self.probe.marker
        if not marker or buffer.find(marker) < 0:
            # Nothing of interest: keep only an unfinished last line.
            cut = buffer.rfind(b"\n")
            self.pending = buffer[cut + 1 :]
            return
        *lines, self.pending = buffer.split(b"\n")
        for line in lines:
            if marker in line:
                # "AT server skew client location time": the client is field 4.
                fields = line.split(b" ", 4)
                if len(fields) == 5 and fields[3] not in self.seen:
                    self.seen[fields[3]] = now
                    self.probe.arrived(self.server, fields[3], now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.probe.connections.discard(self)


class Probe:
    """The listening side of the probe; one per herd."""

    def __init__(self) -> None:
        #: The latest link from each server (a restarted server opens a new one).
        self.links: dict[str, ProbeLink] = {}
        #: How many links each server has opened (more than one: it relinked).
        self.link_counts: dict[str, int] = {}
        self.connections: set[ProbeLink] = set()
        self.prefix = b""
        self.marker = b""
        self._expected: dict[bytes, _Expectation] = {}
        self._server: asyncio.Server | None = None
        self._link_changed = asyncio.Event()

    async def listen(self, port: int) -> None:
        """Listen on ``127.0.0.1:port``."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: ProbeLink(self), "127.0.0.1", port)

    async def close(self) -> None:
        """Stop listening and drop every link."""
        if self._server is not None:
            self._server.close()
        for link in list(self.connections):
            if link.transport is not None:
                link.transport.close()
        if self._server is not None:
            await self._server.wait_closed()

    def watch(self, prefix: bytes) -> None:
        """Record client IDs that start with ``prefix`` from now on."""
        self.prefix = prefix
        # AT lines are written with single spaces, so an ID is always
        # preceded by one.
        self.marker = b" " + prefix

    def link_up(self, link: ProbeLink) -> None:
        """A server's link identified itself."""
        assert link.server is not None
        self.links[link.server] = link
        self.link_counts[link.server] = self.link_counts.get(link.server, 0) + 1
        self._link_changed.set()

    def arrived(self, server: str, client_id: bytes, now: int) -> None:
        """An AT line of interest arrived from ``server``."""
        expectation = self._expected.get(client_id)
        if expectation is not None:
            expectation.arrived(server, now)

    def expect(self, client_id: bytes, servers: Iterable[str]) -> asyncio.Future[dict[str, int]]:
        """A future of the arrival times of ``client_id`` from each of ``servers``."""
        done: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
        self._expected[client_id] = _Expectation(servers, done)
        done.add_done_callback(lambda _: self._expected.pop(client_id, None))
        return done

    def seen(self, server: str) -> dict[bytes, int]:
        """What the latest link from ``server`` has delivered: client ID -> arrival."""
        link = self.links.get(server)
        return link.seen if link is not None else {}

    async def wait_for_links(self, servers: Iterable[str]) -> None:
        """Wait until every one of ``servers`` has a link up to the probe."""
        wanted = set(servers)
        while not wanted <= {name for name, link in self.links.items() if link in self.connections}:
            self._link_changed.clear()
            await self._link_changed.wait()
