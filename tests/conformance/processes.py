"""Herd servers as subprocesses, started with ``python -m ...``, for black-box tests.

Everything here talks to servers over TCP and through their command line, so
the same tests run against any implementation of the herd: add its module to
:data:`IMPLEMENTATIONS`.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from trioherd.core.config import CS131_HERD

from support import WAIT, free_ports

#: ``python -m MODULE`` for each implementation under test.
IMPLEMENTATIONS = ["trioherd", "bench.asyncio_herd", "bench.asyncio_herd.protocol"]


def herd_toml(ports: Sequence[int]) -> str:
    """The CS 131 herd's names and links on ``ports``, as TOML."""
    lines = []
    for server, port in zip(CS131_HERD.servers, ports, strict=True):
        peers = ", ".join(f'"{p}"' for p in server.peers)
        lines += [f"[servers.{server.name}]", f"port = {port}", f"peers = [{peers}]", ""]
    return "\n".join(lines)


@dataclass
class HerdProcesses:
    """Herd servers running as subprocesses of one implementation."""

    implementation: str
    config: Path
    log_dir: Path
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def address(self, name: str) -> tuple[str, int]:
        return ("127.0.0.1", self.ports[name])

    async def start(
        self,
        name: str,
        *options: str,
        env: dict[str, str] | None = None,
        implementation: str | None = None,
        open_files: int | None = None,
    ) -> None:
        """Start server ``name`` and wait until it accepts connections.

        ``implementation`` runs this one server on another implementation
        than the herd's (a mixed herd); ``open_files`` caps its descriptors.
        """
        self.processes[name] = self._spawn(
            name, *options, env=env, implementation=implementation, open_files=open_files
        )
        await wait_for_port(self.address(name), self.processes[name])

    async def start_together(self, *options: str) -> None:
        """Start the whole herd in one process (``--all``) and wait for every port."""
        process = self.processes["--all"] = self._spawn("--all", *options)
        for name in self.ports:
            await wait_for_port(self.address(name), process)

    def _spawn(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        implementation: str | None = None,
        open_files: int | None = None,
    ) -> subprocess.Popen[bytes]:
        module = implementation or self.implementation
        where = ("--config", str(self.config), "--log-dir", str(self.log_dir))

        def limit_open_files() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        return subprocess.Popen(
            [sys.executable, "-m", module, *args, *where],
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=limit_open_files if open_files is not None else None,
        )

    def kill(self, name: str) -> None:
        """Kill server ``name`` with SIGKILL: no goodbye to its peers."""
        process = self.processes.pop(name)
        process.kill()
        process.wait(WAIT)
        if process.stderr:
            process.stderr.close()

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for name in list(self.processes):
            process = self.processes.pop(name)
            try:
                process.wait(WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr:
                process.stderr.close()


async def wait_for_port(address: tuple[str, int], process: subprocess.Popen[bytes]) -> None:
    """Wait (bounded) until ``address`` accepts a connection; fail if the process died."""
    with trio.move_on_after(WAIT):
        while process.poll() is None:
            try:
                stream = await trio.open_tcp_stream(*address)
            except OSError:
                await trio.sleep(0.02)
                continue
            await stream.aclose()
            return
        err = process.stderr.read().decode() if process.stderr else ""
        pytest.fail(f"server exited with {process.returncode}: {err}")
    pytest.fail(f"server did not listen on {address} within {WAIT} s")


def make_herd(implementation: str, tmp_path: Path) -> HerdProcesses:
    ports = free_ports(5)
    config = tmp_path / "herd.toml"
    config.write_text(herd_toml(ports))
    return HerdProcesses(
        implementation, config, tmp_path / "logs", dict(zip(CS131_HERD.names, ports, strict=True))
    )


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded) and capture its output."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )
