"""Herd servers and helpers as child processes: the one harness of the bench and the tests.

Every server runs as a process of its own, as deployed: ``python -m MODULE
NAME --config ... --log-dir ...``. The benchmark drives them from asyncio,
the black-box tests (``tests/conformance/``) from trio, so nothing here is
tied to either loop: processes are plain :class:`subprocess.Popen` children,
and the few waits (for a port to listen, for a process to exit) poll with
:mod:`anyio`, which sleeps on whichever loop is running. Each child's
standard error goes to a file in the work directory (a server that fails to
start is reported with its last lines); standard output is discarded.

Ports are picked free just before the servers start: the servers of a herd
must know each other's ports before any of them runs, so the OS cannot pick
them at bind time. They are picked outside the kernel's ephemeral range
(:func:`free_ports`), where no outgoing connection can take one meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

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
# How often a wait looks again: a port or an exit cannot be waited on
# across processes, only polled.
_POLL_S = 0.01


class StartError(Exception):
    """A process did not start listening; the message says why."""


#: Where the kernel takes ports for outgoing connections (Linux).
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Below this, ports are for well-known services and are left alone.
LOWEST_PORT = 10000


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range, inclusive (Linux's default if unreadable)."""
    try:
        low, high = map(int, EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports on 127.0.0.1 that were free a moment ago.

    Port 0 would hand out a port from the ephemeral range, and releasing it
    until a server binds it leaves it open to any outgoing connection (the
    load generator opens thousands), which is how "address already in use"
    came about. So ports come from outside that range, at random (several
    benchmarks may run at once), each checked free by binding it.
    """
    low, high = ephemeral_range()
    candidates = range(LOWEST_PORT, low) if low - LOWEST_PORT >= 1000 else range(high + 1, 65536)
    picked: list[int] = []
    for port in random.sample(candidates, min(len(candidates), 50 * count + 100)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        picked.append(port)
        if len(picked) == count:
            return picked
    raise OSError(f"no {count} free ports between {candidates.start} and {candidates.stop - 1}")


def herd_toml(
    ports: Mapping[str, int],
    probe_port: int | None = None,
    *,
    probed: Collection[str] | None = None,
) -> str:
    """The CS 131 herd on ``ports``, as TOML.

    Args:
        ports: a port for each server of the CS 131 herd, or for a subset
            (a one-server herd for the memory workload); links to servers
            not in ``ports`` are left out.
        probe_port: if given, a server named :data:`PROBE` on that port,
            listed as a neighbour of the servers in ``probed`` (by default
            every server): each then opens a link to the probe and sends it
            every record it stores.
        probed: the servers that link to the probe.
    """
    lines = []
    for server in CS131_HERD.servers:
        if server.name not in ports:
            continue
        peers = [p for p in server.peers if p in ports]
        if probe_port is not None and (probed is None or server.name in probed):
            peers.append(PROBE)
        quoted = ", ".join(f'"{p}"' for p in peers)
        lines += [f"[servers.{server.name}]", f"port = {ports[server.name]}"]
        lines += [f"peers = [{quoted}]", ""]
    if probe_port is not None:
        lines += [f"[servers.{PROBE}]", f"port = {probe_port}", ""]
    return "\n".join(lines)


def _tail(path: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return ""


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: ours, with the project root importable."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


async def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` accepts a connection now."""
    try:
        stream = await anyio.connect_tcp(host, port)
    except OSError:
        return False
    await stream.aclose()
    return True


class ChildProcess:
    """One process started as ``python ARGS``.

    Args:
        label: a name for messages (``trio Hill``).
        args: the words after ``python``.
        stderr_path: where its standard error goes (appended to).
        env: variables to set in its environment, on top of ours.
        open_files: a cap on its file descriptors (``RLIMIT_NOFILE``).
        launcher: words that run ``python`` elsewhere and keep its process
            ID (``ip netns exec NS``, for a server in a network namespace).
    """

    def __init__(
        self,
        label: str,
        args: Sequence[str],
        stderr_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        open_files: int | None = None,
        launcher: Sequence[str] = (),
    ) -> None:
        self.label = label
        self.launcher = list(launcher)
        self.args = list(args)
        self.stderr_path = stderr_path
        self.env = dict(env or {})
        self.open_files = open_files
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        """The process ID."""
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        """Started and not yet exited."""
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        """Start the process (without waiting for it to listen)."""
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        open_files = self.open_files

        def limit_open_files() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        with self.stderr_path.open("ab") as stderr:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [*self.launcher, sys.executable, *self.args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=child_environment(self.env),
                preexec_fn=limit_open_files if open_files is not None else None,
            )

    async def wait_listening(self, port: int, host: str = "127.0.0.1") -> float:
        """Wait until ``port`` accepts connections; return seconds since the spawn.

        Raises:
            StartError: the process exited first, or :data:`START_TIMEOUT` passed.
        """
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running:
                raise StartError(f"{self.label} exited: {self.stderr_tail()}")
            if await port_open(port, host):
                return time.monotonic() - self.started_at
            await anyio.sleep(_POLL_S)
        raise StartError(f"{self.label} did not listen on port {port} in {START_TIMEOUT:g} s")

    def stderr_text(self) -> str:
        """Everything the process wrote to standard error."""
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")
        return ""

    def stderr_tail(self) -> str:
        """The last lines the process wrote to standard error."""
        return _tail(self.stderr_path)

    def signal(self, signum: int) -> None:
        """Send ``signum``, if the process is still running."""
        if self.running:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone."""
        self.signal(signal.SIGKILL)

    async def exited(self) -> int:
        """Wait for the process to exit (bound the wait where you call it); its exit status."""
        assert self.process is not None
        # Polling is the point: no event of ours hears another process exit.
        while (status := self.process.poll()) is None:  # noqa: ASYNC110
            await anyio.sleep(_POLL_S)
        return status

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited in :data:`STOP_TIMEOUT` seconds."""
        if self.process is None:
            return
        self.signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_TIMEOUT):
            await self.exited()
            return
        self.kill()
        with anyio.fail_after(STOP_TIMEOUT):
            await self.exited()


class Herd:
    """Servers of one herd, each its own process (or all in one, with ``--all``).

    The configuration (``herd.toml``) is written into ``workdir`` at once;
    logs go to ``workdir/logs``, each server's standard error to
    ``workdir/NAME.stderr``.

    Args:
        command: the words after ``python`` that run a server, before its
            name: ``["-m", "trioherd"]``.
        names: the servers (a subset of the CS 131 herd).
        workdir: where the configuration, logs and standard errors go.
        options: command-line options given to every server.
        label: a name for messages (the implementation's).
        probe_port: make servers neighbours of a probe on this port.
        probed: which servers (default: all) link to the probe.
    """

    def __init__(
        self,
        command: Sequence[str],
        names: Sequence[str],
        workdir: Path,
        *,
        options: Sequence[str] = (),
        label: str = "",
        probe_port: int | None = None,
        probed: Collection[str] | None = None,
    ) -> None:
        self.command = list(command)
        self.names = list(names)
        self.workdir = workdir
        self.options = list(options)
        self.label = label or " ".join(self.command)
        self.ports = dict(zip(self.names, free_ports(len(self.names)), strict=True))
        self.config = workdir / "herd.toml"
        self.log_dir = workdir / "logs"
        self.probe_port = probe_port
        self.servers: dict[str, ChildProcess] = {}
        workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(herd_toml(self.ports, probe_port, probed=probed))

    def address(self, name: str) -> tuple[str, int]:
        """Where server ``name`` listens."""
        return ("127.0.0.1", self.ports[name])

    def launcher(self, name: str) -> list[str]:
        """The words that run server ``name``'s ``python`` (none: here, on loopback)."""
        return []

    def pids(self) -> dict[str, int]:
        """Process IDs of the running servers, by name."""
        return {name: s.pid for name, s in self.servers.items() if s.running}

    def spawn(
        self,
        name: str,
        *options: str,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        open_files: int | None = None,
    ) -> ChildProcess:
        """Start server ``name`` (or ``--all``), not waiting for it to listen.

        Args:
            options: more options for this server.
            command: run it with another implementation than the herd's.
            env: variables to set in its environment.
            open_files: a cap on its file descriptors.
        """
        args = [
            *(command or self.command),
            name,
            "--config",
            str(self.config),
            "--log-dir",
            str(self.log_dir),
            *self.options,
            *options,
        ]
        label = f"{self.label} {name}"
        stderr = self.workdir / f"{name.lstrip('-')}.stderr"
        server = ChildProcess(
            label, args, stderr, env=env, open_files=open_files, launcher=self.launcher(name)
        )
        server.spawn()
        self.servers[name] = server
        return server

    async def start(
        self,
        name: str,
        *options: str,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        open_files: int | None = None,
    ) -> float:
        """:meth:`spawn` server ``name`` and wait until it listens; return the seconds it took."""
        server = self.spawn(name, *options, command=command, env=env, open_files=open_files)
        return await server.wait_listening(self.ports[name])

    async def start_all(self) -> float:
        """Start every server, then wait until all listen; return the seconds it took."""
        started = time.monotonic()
        for name in self.names:
            self.spawn(name)
        for name in self.names:
            host, port = self.address(name)
            await self.servers[name].wait_listening(port, host)
        return time.monotonic() - started

    async def start_together(self, *options: str) -> None:
        """Start the whole herd in one process (``--all``) and wait for every port."""
        process = self.spawn("--all", *options)
        for name in self.names:
            await process.wait_listening(self.ports[name])

    async def kill(self, name: str) -> None:
        """Kill server ``name`` with SIGKILL (no goodbye to its peers) and reap it."""
        server = self.servers[name]
        server.kill()
        with anyio.fail_after(STOP_TIMEOUT):
            await server.exited()

    async def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL), all at once."""
        async with anyio.create_task_group() as group:
            for server in self.servers.values():
                group.start_soon(server.stop)


def bench_herd(
    impl: Implementation,
    names: Sequence[str],
    workdir: Path,
    log_level: str,
    places_url: str,
    probe_port: int | None = None,
) -> Herd:
    """A herd of ``impl`` as the benchmark runs it (not started yet)."""
    options = [
        "--log-level",
        # The +logs implementations log every line, whatever the run's level.
        impl.log_level or log_level,
        # Always over HTTP: with no URL a server would load the offline
        # places index in the background, which costs CPU and memory that
        # belong to no workload.
        "--places-url",
        places_url,
    ]
    return Herd(
        impl.command(), names, workdir, options=options, label=impl.name, probe_port=probe_port
    )


async def take_record(path: Path, patience: float = 30.0) -> dict[str, Any]:
    """Wait for a wrapped server's JSON record at ``path``, read it and delete it.

    The bench-only wrappers (``bench.sched_trace``, ``bench.pass_trace``)
    write theirs from a signal handler, which a loaded server may take a
    while to run; the file system is polled from a worker thread.
    """
    return await anyio.to_thread.run_sync(_take_record, path, patience)


def _take_record(path: Path, patience: float) -> dict[str, Any]:
    deadline = time.monotonic() + patience
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    record: dict[str, Any] = json.loads(path.read_text())
    path.unlink()
    return record


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
    places.spawn()
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
    server.spawn()
    await server.wait_listening(port)
    return server, port
