"""Processes the benchmark starts: herd servers, our Places server, the ceiling server.

Every server runs as a process of its own, as deployed, started with
``asyncio.create_subprocess_exec`` from the benchmark's event loop. Their
standard error goes to a file in the work directory (a server that fails to
start is reported with its last lines); standard output is discarded.

Ports are picked free just before the servers start (bind to port 0, note
the port, close): the servers of a herd must know each other's ports before
any of them runs, so the OS cannot pick them at bind time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from bench.impls import Implementation
from trioherd.core.config import CS131_HERD

#: The project root: ``python -m bench.*`` must import from here whatever
#: directory the benchmark was started in.
ROOT = Path(__file__).resolve().parent.parent
#: The longest a server may take to start listening.
START_TIMEOUT = 30.0
#: How long a server has to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 5.0
#: The name of the benchmark's probe in a herd configuration.
PROBE = "Probe"


class StartError(Exception):
    """A process did not start listening; the message says why."""


def free_ports(count: int) -> list[int]:
    """Ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def herd_toml(ports: Mapping[str, int], probe_port: int | None = None) -> str:
    """The CS 131 herd on ``ports``, as TOML.

    Args:
        ports: a port for each server of the CS 131 herd, or for a subset
            (a one-server herd for the memory workload); links to servers
            not in ``ports`` are left out.
        probe_port: if given, a server named :data:`PROBE` on that port,
            listed as a neighbour of every server: each then opens a link to
            the probe and sends it every record it stores.
    """
    lines = []
    for server in CS131_HERD.servers:
        if server.name not in ports:
            continue
        peers = [p for p in server.peers if p in ports]
        if probe_port is not None:
            peers.append(PROBE)
        quoted = ", ".join(f'"{p}"' for p in peers)
        lines += [f"[servers.{server.name}]", f"port = {ports[server.name]}"]
        lines += [f"peers = [{quoted}]", ""]
    if probe_port is not None:
        lines += [f"[servers.{PROBE}]", f"port = {probe_port}", ""]
    return "\n".join(lines)


def _open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def _tail(path: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return ""


def child_environment() -> dict[str, str]:
    """The environment of every child: ours, with the project root importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


async def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` accepts a connection now."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class ChildProcess:
    """One process the benchmark started: ``python ARGS``.

    Args:
        label: a name for messages (``trio Hill``).
        args: the words after ``python``.
        stderr_path: where its standard error goes.
    """

    def __init__(self, label: str, args: Sequence[str], stderr_path: Path) -> None:
        self.label = label
        self.args = list(args)
        self.stderr_path = stderr_path
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        """The process ID."""
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        """Started and not yet exited."""
        return self.process is not None and self.process.returncode is None

    async def spawn(self, *, stdout_pipe: bool = False) -> None:
        """Start the process (without waiting for it to listen)."""
        log = _open_log(self.stderr_path)
        try:
            self.started_at = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else subprocess.DEVNULL,
                stderr=log,
                env=child_environment(),
            )
        finally:
            log.close()

    async def wait_listening(self, port: int) -> float:
        """Wait until ``port`` accepts connections; return seconds since the spawn.

        Raises:
            StartError: the process exited first, or :data:`START_TIMEOUT` passed.
        """
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running:
                raise StartError(f"{self.label} exited: {_tail(self.stderr_path)}")
            if await port_open(port):
                return time.monotonic() - self.started_at
            await asyncio.sleep(0.01)
        raise StartError(f"{self.label} did not listen on port {port} in {START_TIMEOUT:g} s")

    def stderr_tail(self) -> str:
        """The last lines the process wrote to standard error."""
        return _tail(self.stderr_path)

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone."""
        if self.running:
            assert self.process is not None
            self.process.kill()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited in :data:`STOP_TIMEOUT` seconds."""
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self.kill()
                await self.process.wait()


class Herd:
    """Servers of one implementation, each its own process.

    Args:
        impl: the implementation.
        names: the servers to run (a subset of the CS 131 herd).
        workdir: where the configuration, logs and standard errors go.
        log_level: the servers' ``--log-level``.
        places_url: the servers' ``--places-url``.
        probe_port: make every server a neighbour of a probe on this port.
    """

    def __init__(
        self,
        impl: Implementation,
        names: Sequence[str],
        workdir: Path,
        *,
        log_level: str,
        places_url: str,
        probe_port: int | None = None,
    ) -> None:
        self.impl = impl
        self.names = list(names)
        self.workdir = workdir
        self.ports = dict(zip(self.names, free_ports(len(self.names)), strict=True))
        self.config = workdir / "herd.toml"
        self.log_level = log_level
        self.places_url = places_url
        self.probe_port = probe_port
        self.servers: dict[str, ChildProcess] = {}

    def address(self, name: str) -> tuple[str, int]:
        """Where server ``name`` listens."""
        return ("127.0.0.1", self.ports[name])

    def pids(self) -> dict[str, int]:
        """Process IDs of the running servers, by name."""
        return {name: s.pid for name, s in self.servers.items() if s.running}

    def _server(self, name: str) -> ChildProcess:
        args = [
            *self.impl.command(),
            name,
            "--config",
            str(self.config),
            "--log-dir",
            str(self.workdir / "logs"),
            "--log-level",
            self.log_level,
            # Always over HTTP: with no URL a server would load the offline
            # places index in the background, which costs CPU and memory
            # that belong to no workload.
            "--places-url",
            self.places_url,
        ]
        return ChildProcess(f"{self.impl.name} {name}", args, self.workdir / f"{name}.stderr")

    async def start(self) -> float:
        """Start every server and wait until all listen; return the seconds it took."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(herd_toml(self.ports, self.probe_port))
        started = time.monotonic()
        for name in self.names:
            self.servers[name] = self._server(name)
            await self.servers[name].spawn()
        for name in self.names:
            await self.servers[name].wait_listening(self.ports[name])
        return time.monotonic() - started

    async def kill(self, name: str) -> None:
        """Kill server ``name`` with SIGKILL and reap it."""
        server = self.servers[name]
        server.kill()
        if server.process is not None:
            await server.process.wait()

    async def restart(self, name: str) -> ChildProcess:
        """Start server ``name`` again on its port (not waiting for it to listen)."""
        self.servers[name] = self._server(name)
        await self.servers[name].spawn()
        return self.servers[name]

    async def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL)."""
        await asyncio.gather(*(server.stop() for server in self.servers.values()))


def places_url(port: int) -> str:
    """The Nearby Search URL of our Places server on ``port``."""
    return f"http://127.0.0.1:{port}/maps/api/place/nearbysearch/json"


async def start_places_server(
    workdir: Path, latency_ms: tuple[int, int], *, stub: bool = False
) -> tuple[ChildProcess, int]:
    """Our Places server with uniform latency, on a free port; and the port.

    With ``stub``, :mod:`bench.places_stub` instead: the same answers and
    latency, at a fraction of the CPU.
    """
    (port,) = free_ports(1)
    low, high = latency_ms
    places = ChildProcess(
        "places stub" if stub else "places server",
        [
            "-m",
            "bench.places_stub" if stub else "bench.places_faults",
            "--port",
            str(port),
            "--latency",
            f"{low}-{high}",
            "--seed",
            "1",
        ],
        workdir / "places.stderr",
    )
    await places.spawn()
    await places.wait_listening(port)
    return places, port


async def start_ceiling_server(workdir: Path) -> tuple[ChildProcess, int]:
    """The load generator's trivial server (see :mod:`bench.loadgen`), and its port."""
    (port,) = free_ports(1)
    server = ChildProcess(
        "ceiling server",
        ["-m", "bench.loadgen", "ceiling", "--port", str(port)],
        workdir / "ceiling.stderr",
    )
    await server.spawn()
    await server.wait_listening(port)
    return server, port
