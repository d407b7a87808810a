"""``python -m bench.faults``: break the herd on purpose, then count what it lost.

Jepsen's method, on loopback: a steady IAMAT load goes to the live servers
and every IAMAT that got its AT back is noted (acknowledged); a fault is
injected; afterwards every acknowledged update is looked for at every
server. Four faults:

* ``kill``: N cycles of SIGKILL and restart of a random server;
* ``killall``: every server SIGKILLed at once, then all restarted (with
  ``--state-dir``, what survives is what their journals held);
* ``partition``: the herd cut in two ({Hill, Jaquez} | the rest) for some
  seconds, then healed;
* ``stop``: one server SIGSTOPped for some seconds, then SIGCONTinued.

Every server runs with ``--state-dir``. Reported per fault: updates
acknowledged, updates lost (missing or older at some server once the herd
has converged, or after :data:`CONVERGE_LIMIT`), seconds from the heal to
convergence (every server holding the same acknowledged updates; for a
whole-herd kill that may be without some), and servers that died on their
own.

How a server's table is read: the harness is a neighbour of every server
(``Probe`` in the configuration), answering its link's handshake with
``RESUME - 0``. The server then sends its whole table and ``MARK`` when it is
level (docs/peer-protocol.md), so the lines before the first ``MARK`` are
exactly its table. To read it again, the harness hangs up; the server
relinks within tens of milliseconds.

How a partition is made: each server gets a configuration file of its own,
in which its neighbours' ports are those of relays the harness runs, one per
direction of each link. Cutting a link closes its relay's connections and
refuses new ones (connection refused, as from a host that is down); healing
accepts again. Clients still reach every server directly.

With ``--netns`` the herd runs as five hosts instead: each server in a
network namespace of its own, its links veth pairs, a partition made by
setting both ends of the links between the sides down (:mod:`bench.netns`;
root and ``ip`` needed). The harness reaches every server over a
management link that no partition touches.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from bench import netns, procs, sysinfo
from bench.impls import IMPLEMENTATIONS, Implementation
from trioherd.core.config import CS131_HERD

PROG = "python -m bench.faults"
#: The longest the harness waits for the herd to hold every acknowledged update.
CONVERGE_LIMIT = 30.0
#: The longest a table read may take.
DUMP_LIMIT = 20.0
#: One side of the partition.
PARTITION_SIDE = frozenset({"Hill", "Jaquez"})
#: Where IAMATs claim to be.
WHERE = b"+34.068930-118.445127"


class Tables:
    """The harness as every server's neighbour: reads their tables on demand."""

    def __init__(self) -> None:
        #: Where each server listens, for :meth:`read`.
        self.address: Callable[[str], tuple[str, int]] = lambda name: ("127.0.0.1", 0)
        self._links: dict[str, asyncio.StreamWriter] = {}
        self._tables: dict[str, asyncio.Future[dict[bytes, bytes]]] = {}
        self.port = 0
        #: Per server, each AT line it sent us (its table, then its floods)
        #: and when it first did: when the update had reached that server.
        self.seen: dict[str, dict[bytes, float]] = {}

    async def start(self, hosts: Sequence[str] = ("127.0.0.1",)) -> asyncio.Server:
        """Listen, on one port at each of ``hosts``, for the servers' links."""
        server = await asyncio.start_server(self._link, hosts[0], 0)
        self.port = server.sockets[0].getsockname()[1]
        if len(hosts) > 1:
            server.close()
            server = await asyncio.start_server(self._link, list(hosts), self.port)
        return server

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello = (await reader.readline()).split()
            if len(hello) < 3 or hello[0] != b"PEER":
                return
            name = hello[1].decode()
            old = self._links.pop(name, None)
            if old is not None:
                old.close()
            self._links[name] = writer
            writer.write(b"RESUME - 0\n")
            table: dict[bytes, bytes] = {}
            seen = self.seen.setdefault(name, {})
            while line := await reader.readline():
                if line.startswith(b"MARK"):
                    break
                fields = line.split()
                if len(fields) == 6:
                    table[fields[3]] = line = line.rstrip(b"\n")
                    seen.setdefault(line, time.monotonic())
            else:
                return
            waiting = self._tables.get(name)
            if waiting is not None and not waiting.done():
                waiting.set_result(table)
            # Later lines are the updates the server stores from now on.
            while line := await reader.readline():
                seen.setdefault(line.rstrip(b"\n"), time.monotonic())
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def read(self, name: str) -> dict[bytes, bytes]:
        """Server ``name``'s whole table, as it is now.

        Raises:
            TimeoutError: no complete table within :data:`DUMP_LIMIT`.
        """
        future: asyncio.Future[dict[bytes, bytes]] = asyncio.get_running_loop().create_future()
        self._tables[name] = future
        # A server asks RESUME (and so sends MARK) only of a neighbour whose
        # link has asked it: ask, as the neighbour Probe, in its current life.
        async with asyncio.timeout(DUMP_LIMIT):
            reader, writer = await asyncio.open_connection(*self.address(name))
            try:
                writer.write(b"PEER %s 1\nRESUME\n" % procs.PROBE.encode())
                await reader.readline()
            finally:
                writer.close()
        link = self._links.pop(name, None)
        if link is not None:
            link.close()  # the server relinks and sends its table afresh
        async with asyncio.timeout(DUMP_LIMIT):
            return await future


class Relay:
    """One direction of one herd link, through the harness, so it can be cut."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = procs.free_ports(1)[0]
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        #: When each connection through the relay was accepted (time.monotonic()).
        self.accepted: list[float] = []

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def heal(self) -> None:
        await self.open()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.append(time.monotonic())
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            # The other side may be aborted under us (a partition): uvloop
            # then raises RuntimeError on write where asyncio raises OSError.
            with contextlib.suppress(OSError, RuntimeError):
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self._pipes -= {writer, up_writer}


class Cut(Protocol):
    """Something a partition cuts and heals: a relay, or a veth pair."""

    async def cut(self) -> None: ...

    async def heal(self) -> None: ...


class VethCut:
    """A herd link between two namespaces, cut by setting both its ends down."""

    def __init__(self, network: netns.Network, link: netns.HerdLink) -> None:
        self.network = network
        self.link = link

    async def cut(self) -> None:
        await asyncio.to_thread(self.network.set_link, self.link, up=False)

    async def heal(self) -> None:
        await asyncio.to_thread(self.network.set_link, self.link, up=True)


def herd_links() -> list[tuple[str, str]]:
    """The CS 131 herd's links, each once."""
    names = CS131_HERD.names
    links = set()
    for server in CS131_HERD.servers:
        for peer in server.peers:
            a, b = sorted((server.name, peer), key=names.index)
            links.add((a, b))
    return sorted(links, key=lambda link: (names.index(link[0]), names.index(link[1])))


class FaultHerd(procs.Herd):
    """The CS 131 herd, each server with its own configuration whose links go through relays.

    With ``network``, each server runs in its namespace instead, its links
    the network's veth pairs.
    """

    def __init__(
        self,
        impl: Implementation,
        workdir: Path,
        tables: Tables,
        network: netns.Network | None = None,
    ) -> None:
        options = ["--log-level", "warning", "--places-url", "http://127.0.0.1:9/nearby"]
        options += ["--state-dir", str(workdir / "state")]
        super().__init__(
            impl.command(),
            CS131_HERD.names,
            workdir,
            options=options,
            label=impl.name,
            probe_port=tables.port,
        )
        self.network = network
        tables.address = self.address
        self.relays = {
            (server.name, peer): Relay(self.ports[peer])
            for server in CS131_HERD.servers
            for peer in server.peers
            if network is None
        }
        self.crashed: list[str] = []

    def spawn(
        self,
        name: str,
        *options: str,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        open_files: int | None = None,
    ) -> procs.ChildProcess:
        # Each server reads a configuration of its own (its links' relays).
        shared, self.config = self.config, self._config_of(name)
        try:
            return super().spawn(name, *options, command=command, env=env, open_files=open_files)
        finally:
            self.config = shared

    def _config_of(self, name: str) -> Path:
        return self.workdir / f"{name}.toml"

    def address(self, name: str) -> tuple[str, int]:
        if self.network is None:
            return super().address(name)
        return self.network.server_address[name], self.ports[name]

    def launcher(self, name: str) -> list[str]:
        return [] if self.network is None else self.network.launcher(name)

    def cuts_between(self, side: frozenset[str]) -> list[Cut]:
        """What to cut to part ``side`` from the rest of the herd."""
        if self.network is not None:
            return [
                VethCut(self.network, link)
                for link in self.network.links
                if (link.a in side) != (link.b in side)
            ]
        return [relay for (a, b), relay in self.relays.items() if (a in side) != (b in side)]

    def _netns_toml(self, name: str) -> str:
        """Server ``name``'s configuration in its namespace: neighbours over their own links."""
        assert self.network is not None
        lines = []
        for server in CS131_HERD.servers:
            if server.name == name:
                host = "0.0.0.0"  # every link's address and the management one
                peers = [*server.peers, procs.PROBE]
            elif server.name in CS131_HERD[name].peers:
                host = self.network.neighbour_address(name, server.name)
                peers = list(server.peers)
            else:
                # Never linked to from here; listed so its name is known.
                host = self.network.server_address[server.name]
                peers = list(server.peers)
            quoted = ", ".join(f'"{p}"' for p in peers)
            lines += [f"[servers.{server.name}]", f'host = "{host}"']
            lines += [f"port = {self.ports[server.name]}", f"peers = [{quoted}]", ""]
        harness = self.network.harness_address[name]
        lines += [f"[servers.{procs.PROBE}]", f'host = "{harness}"', f"port = {self.probe_port}"]
        return "\n".join(lines) + "\n"

    async def start_faulty(self) -> float:
        """Open the relays, write each server's configuration, start them all."""
        if self.network is not None:
            for name in self.names:
                self._config_of(name).write_text(self._netns_toml(name))
            return await self.start_all()
        for relay in self.relays.values():
            await relay.open()
        for server in CS131_HERD.servers:
            # This server sees each neighbour at the port of the relay for its link.
            ports = dict(self.ports)
            ports.update({peer: self.relays[server.name, peer].port for peer in server.peers})
            self._config_of(server.name).write_text(procs.herd_toml(ports, self.probe_port))
        return await self.start_all()

    async def relaunch(self, names: Iterable[str]) -> list[float]:
        """Restart ``names``; the CPU seconds each had used when it listened.

        Set beside the wall time to listening, this tells a slow start
        (much CPU: imports, the journal) from a machine too busy to run it.
        """
        for name in names:
            self.spawn(name)
        cpu = []
        for name in names:
            host, port = self.address(name)
            await self.servers[name].wait_listening(port, host)
            cpu.append(sysinfo.cpu_seconds(self.servers[name].pid))
        return cpu

    def note_crashes(self) -> None:
        for name, server in self.servers.items():
            process = server.process
            if process is not None and process.poll() not in (None, -signal.SIGKILL):
                self.crashed.append(f"{name} exited {process.returncode}")


class Load:
    """A steady IAMAT load at the live servers; notes every acknowledged update."""

    def __init__(self, herd: FaultHerd, rate: float, prefix: str) -> None:
        self.herd = herd
        self.rate = rate
        self.prefix = prefix.encode()
        self.live = set(herd.names)
        #: Client ID -> (the AT line acknowledged, when: time.monotonic()).
        self.acked: dict[bytes, tuple[bytes, float]] = {}
        self._count = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(4):
                group.create_task(self._client(self.rate / 4))

    async def _client(self, rate: float) -> None:
        writer: asyncio.StreamWriter | None = None
        reader: asyncio.StreamReader | None = None
        name = ""
        while True:
            await asyncio.sleep(random.expovariate(rate))
            if name not in self.live and writer is not None:
                writer.close()
                writer = None
            if writer is None or reader is None:
                if not self.live:
                    continue
                name = random.choice(sorted(self.live))
                try:
                    reader, writer = await asyncio.open_connection(*self.herd.address(name))
                except OSError:
                    continue
            self._count += 1
            client = b"%s%d" % (self.prefix, self._count)
            line = b"IAMAT %s %s %d.%09d\n" % (client, WHERE, *divmod(time.time_ns(), 10**9))
            try:
                writer.write(line)
                async with asyncio.timeout(5):
                    reply = await reader.readline()
            except (OSError, TimeoutError):
                writer.close()
                writer = None
                continue
            if reply.startswith(b"AT "):
                self.acked[client] = (reply.rstrip(b"\n"), time.monotonic())
            else:
                writer.close()
                writer = None


async def missing(
    tables: Tables, herd: FaultHerd, acked: dict[bytes, bytes]
) -> dict[str, set[bytes]]:
    """The acknowledged updates each server lacks (or holds older)."""
    # All five at once: a round of reads is what bounds converged_s from above.
    read = await asyncio.gather(*(tables.read(name) for name in herd.names))
    return {
        name: {client for client, line in acked.items() if table.get(client) != line}
        for name, table in zip(herd.names, read, strict=True)
    }


def level_s(tables: Tables, herd: FaultHerd, acked: dict[bytes, bytes], since: float) -> float:
    """Seconds from ``since`` until the last acknowledged update reached the last server.

    As seen on each server's link to the harness (its table, then the
    updates it stores): tighter than ``converged_s``, which ends with a
    round of whole-table reads.
    """
    latest = max(
        (
            tables.seen.get(name, {}).get(line, since)
            for name in herd.names
            for line in acked.values()
        ),
        default=since,
    )
    return round(max(latest - since, 0.0), 3)


async def converge(
    tables: Tables, herd: FaultHerd, acked: dict[bytes, bytes], since: float | None = None
) -> dict[str, Any]:
    """Read every table until none lacks an update; report the time and what is lost.

    Times are from ``since`` (default: now).
    """
    started = time.monotonic() if since is None else since
    while True:
        lacking = await missing(tables, herd, acked)
        elapsed = time.monotonic() - started
        counts = {name: len(clients) for name, clients in lacking.items()}
        if not any(lacking.values()):
            return {
                "converged_s": round(elapsed, 3),
                "level_s": level_s(tables, herd, acked, started),
                "lost": 0,
                "lacking": counts,
            }
        first = next(iter(lacking.values()))
        if all(clients == first for clients in lacking.values()):
            # Every server lacks the same updates: none holds them to pass
            # on, so they are lost, and the herd has converged without them.
            return {
                "converged_s": round(elapsed, 3),
                "lost": len(first),
                "lacking": counts,
                "lost_clients": first,
            }
        if elapsed > CONVERGE_LIMIT:
            lost = set().union(*lacking.values())
            return {"converged_s": None, "lost": len(lost), "lacking": counts, "lost_clients": lost}
        await asyncio.sleep(0.05)


def spread(values: Sequence[float]) -> dict[str, float] | None:
    """The lowest, the median and the highest of ``values``, in three decimals."""
    if not values:
        return None
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def _snapshot(load: Load) -> dict[bytes, bytes]:
    return {client: line for client, (line, _) in load.acked.items()}


async def fault_kill(herd: FaultHerd, tables: Tables, cycles: int) -> dict[str, Any]:
    """SIGKILL and restart a random server, ``cycles`` times, under load."""
    load = Load(herd, rate=200, prefix="kill")
    load.start()
    await asyncio.sleep(0.5)
    restart_times: list[float] = []
    restart_cpu: list[float] = []
    for _ in range(cycles):
        victim = random.choice(herd.names)
        load.live.discard(victim)
        await herd.kill(victim)
        await asyncio.sleep(random.uniform(0.05, 0.3))
        started = time.monotonic()
        restart_cpu += await herd.relaunch([victim])
        restart_times.append(time.monotonic() - started)
        load.live.add(victim)
        await asyncio.sleep(random.uniform(0.1, 0.4))
    await load.stop()
    herd.note_crashes()
    acked = _snapshot(load)
    result = await converge(tables, herd, acked)
    result.pop("lost_clients", None)
    return {
        "cycles": cycles,
        "acknowledged": len(acked),
        "restart_to_listening_s": spread(restart_times),
        "restart_cpu_s": spread(restart_cpu),
        **result,
    }


async def fault_killall(herd: FaultHerd, tables: Tables) -> dict[str, Any]:
    """SIGKILL every server at once under load, restart all from their journals."""
    from trioherd.durable import SYNC_INTERVAL

    load = Load(herd, rate=400, prefix="all")
    load.start()
    await asyncio.sleep(2.0)
    killed_at = time.monotonic()
    load.live.clear()
    for name in herd.names:
        herd.servers[name].kill()
    for name in herd.names:
        await herd.kill(name)
    await load.stop()
    acked = _snapshot(load)
    started = time.monotonic()
    restart_cpu = await herd.relaunch(herd.names)
    listening = time.monotonic() - started
    herd.note_crashes()
    result = await converge(tables, herd, acked)
    lost = result.pop("lost_clients", set())
    lost_ages = [killed_at - at for client, (_, at) in load.acked.items() if client in lost]
    return {
        "acknowledged": len(acked),
        # How long before the kill the lost updates had been acknowledged.
        "lost_acknowledged_s_before_kill": [round(min(lost_ages), 3), round(max(lost_ages), 3)]
        if lost_ages
        else None,
        "acknowledged_in_last_sync_interval": sum(
            1 for _, at in load.acked.values() if at > killed_at - SYNC_INTERVAL
        ),
        "restart_to_listening_s": round(listening, 3),
        "restart_cpu_s": spread(restart_cpu),
        **result,
    }


async def _links_back(relays: Sequence[Relay], healed: float) -> float | None:
    """Seconds from ``healed`` until every relay had carried a connection again.

    The herd may converge over one link before the others are back: wait
    (a few seconds at most) for the rest.
    """
    deadline = time.monotonic() + 5.0
    while True:
        back = [min((t for t in r.accepted if t >= healed), default=None) for r in relays]
        if None not in back:
            return round(max(t for t in back if t is not None) - healed, 3)
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.02)


async def fault_partition(
    herd: FaultHerd, tables: Tables, seconds: float, rounds: int = 1
) -> dict[str, Any]:
    """Part the herd in two for ``seconds`` under load, then heal; ``rounds`` times.

    ``converged_s`` is the slowest round's, from the moment the last link
    was healed; ``links_back_s`` (relays only) is, per round, how long after
    the heal the last cut link carried a connection again: the links'
    reconnection, the part of the convergence that their backoff decides.
    """
    cuts = herd.cuts_between(PARTITION_SIDE)
    acknowledged = lost = 0
    converged: list[float | None] = []
    level: list[float | None] = []
    links_back: list[float | None] = []
    # Per round, the acknowledged updates some server lacked just before the heal.
    held_apart: list[int] = []
    for round_ in range(rounds):
        load = Load(herd, rate=200, prefix=f"part{round_}-")
        load.start()
        await asyncio.sleep(0.5)
        for cut in cuts:
            await cut.cut()
        await asyncio.sleep(seconds)
        await load.stop()
        acked = _snapshot(load)
        # Evidence that the cut held: updates that some server still lacks
        # (were it not cut, the herd would be level within milliseconds).
        apart = await missing(tables, herd, acked)
        held_apart.append(len(set().union(*apart.values())))
        # From the first link's return: healing the links one by one takes
        # a few `ip` commands in --netns, and updates cross meanwhile.
        healing = time.monotonic()
        for cut in cuts:
            await cut.heal()
        healed = time.monotonic()
        herd.note_crashes()
        result = await converge(tables, herd, acked, since=healing)
        acknowledged += len(acked)
        lost += result["lost"]
        converged.append(result["converged_s"])
        level.append(result.get("level_s"))
        relays = [cut for cut in cuts if isinstance(cut, Relay)]
        if relays:
            links_back.append(await _links_back(relays, healed))
    return {
        "partition_s": seconds,
        "rounds": rounds,
        "links_cut": len(cuts),
        "acknowledged": acknowledged,
        "lost": lost,
        "converged_s": None if None in converged else max(c for c in converged if c is not None),
        "converged_s_each": converged,
        "level_s_each": level,
        "links_back_s_each": links_back or None,
        "apart_at_heal_each": held_apart,
    }


async def fault_stop(herd: FaultHerd, tables: Tables, seconds: float) -> dict[str, Any]:
    """SIGSTOP one server for ``seconds`` under load at the others, then SIGCONT."""
    victim = "Campbell"
    load = Load(herd, rate=200, prefix="stop")
    load.live.discard(victim)
    load.start()
    await asyncio.sleep(0.5)
    process = herd.servers[victim]
    process.signal(signal.SIGSTOP)
    await asyncio.sleep(seconds)
    await load.stop()
    acked = _snapshot(load)
    process.signal(signal.SIGCONT)
    herd.note_crashes()
    result = await converge(tables, herd, acked)
    result.pop("lost_clients", None)
    return {"stopped": victim, "stopped_s": seconds, "acknowledged": len(acked), **result}


async def run_faults(
    impl: Implementation,
    faults: Sequence[str],
    workdir: Path,
    cycles: int,
    seconds: float,
    *,
    rounds: int = 1,
    use_netns: bool = False,
) -> dict[str, Any]:
    """Run ``faults`` against a fresh herd of ``impl``; one result per fault.

    With ``use_netns``, the herd runs in network namespaces made for the
    run and removed after it, whatever happens (:mod:`bench.netns`).

    Raises:
        netns.Unavailable: ``use_netns``, and namespaces cannot be made here.
    """
    network = None
    if use_netns:
        netns.check()
        netns.remove_stale()
        network = netns.Network(CS131_HERD.names, herd_links())
        await asyncio.to_thread(network.make)
    try:
        return await _run_faults(impl, faults, workdir, cycles, seconds, rounds, network)
    finally:
        if network is not None:
            network.remove()


async def _run_faults(
    impl: Implementation,
    faults: Sequence[str],
    workdir: Path,
    cycles: int,
    seconds: float,
    rounds: int,
    network: netns.Network | None,
) -> dict[str, Any]:
    tables = Tables()
    hosts = list(network.harness_address.values()) if network is not None else ["127.0.0.1"]
    listener = await tables.start(hosts)
    herd = FaultHerd(impl, workdir, tables, network)
    results: dict[str, Any] = {}
    try:
        await herd.start_faulty()
        for fault in faults:
            started = time.monotonic()
            if fault == "kill":
                results[fault] = await fault_kill(herd, tables, cycles)
            elif fault == "killall":
                results[fault] = await fault_killall(herd, tables)
            elif fault == "partition":
                results[fault] = await fault_partition(herd, tables, seconds, rounds)
            elif fault == "stop":
                results[fault] = await fault_stop(herd, tables, seconds)
            results[fault]["crashed"] = list(herd.crashed)
            results[fault]["wall_s"] = round(time.monotonic() - started, 1)
            results[fault]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            print(f"{impl.name} {fault}: {json.dumps(results[fault])}", file=sys.stderr)
    finally:
        await herd.stop()
        for relay in herd.relays.values():
            await relay.cut()
        listener.close()
    return results


FAULTS = ("kill", "killall", "partition", "stop")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1 if any update was lost)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--impls", default="trio,asyncio", help="implementations (default both)")
    parser.add_argument("--faults", default=",".join(FAULTS), help="faults to inject, in order")
    parser.add_argument("--cycles", type=int, default=100, help="kill/restart cycles (100)")
    parser.add_argument("--seconds", type=float, default=5.0, help="partition/stop length (5)")
    parser.add_argument(
        "--partitions", type=int, default=1, help="partition/heal rounds of the partition fault (1)"
    )
    parser.add_argument(
        "--netns",
        action="store_true",
        help="run each server in a network namespace of its own, links as veth pairs, "
        "partitions cut with `ip link set down` (needs root and iproute2; default: loopback)",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    faults = args.faults.split(",")
    for fault in faults:
        if fault not in FAULTS:
            parser.error(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    document: dict[str, Any] = {
        "command": " ".join([PROG, *(argv if argv is not None else sys.argv[1:])]),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="trioherd-faults-") as tmp:
        for name in args.impls.split(","):
            try:
                document["results"][name] = asyncio.run(
                    run_faults(
                        IMPLEMENTATIONS[name],
                        faults,
                        Path(tmp) / name,
                        args.cycles,
                        args.seconds,
                        rounds=args.partitions,
                        use_netns=args.netns,
                    )
                )
            except netns.Unavailable as exc:
                print(f"{PROG}: --netns: {exc}", file=sys.stderr)
                return 2
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(table(document))
    lost = any(r.get("lost") for impl in document["results"].values() for r in impl.values())
    return 1 if lost else 0


def table(document: dict[str, Any]) -> str:
    """The results as a text table."""
    rows = ["impl      fault      acked   lost  converged_s  crashed"]
    for impl, results in document["results"].items():
        for fault, r in results.items():
            rows.append(
                f"{impl:<9} {fault:<9} {r['acknowledged']:>6} {r['lost']:>6} "
                f"{r['converged_s'] if r['converged_s'] is not None else '-':>12}  "
                f"{len(r['crashed'])}"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
