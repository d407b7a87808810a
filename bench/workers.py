"""Driving load generator processes from the benchmark (see :mod:`bench.loadgen`).

A step's load runs in one or more ``python -m bench.loadgen worker``
processes. Each gets its share of the clients, prepares (connects), says it
is ready; then all are told the same measurement window at once, and each
reports what completed inside it. :func:`merge` adds their reports up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bench.impls import Implementation
from bench.loadgen import Job, decode_samples
from bench.procs import Herd, bench_herd, child_environment, places_url
from trioherd.core.config import CS131_HERD

#: How long workers may take to start and prepare (10k connections, say).
READY_TIMEOUT = 120.0


class LoadError(Exception):
    """A load generator process failed; the message says how."""


def split(job: Job, procs: int) -> list[Job]:
    """Share ``job``'s clients between ``procs`` workers, each with its own client IDs."""
    clients = job.get("clients")
    if clients is None or procs <= 1:
        return [job]
    procs = min(procs, clients)
    jobs = []
    first = job.get("first_slot", 0)
    for i in range(procs):
        share = clients // procs + (1 if i < clients % procs else 0)
        jobs.append({**job, "clients": share, "first_slot": first})
        first += share
    return jobs


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several workers': counts add up, samples and lists join."""
    merged: dict[str, Any] = {}
    samples = array("q")
    for result in results:
        for key, value in result.items():
            if key == "samples":
                samples.extend(decode_samples(value))
            elif key in ("window_s", "elapsed_s", "connect_s"):
                merged[key] = max(merged.get(key, 0.0), value)
            elif isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            elif isinstance(value, (int, float)):
                merged[key] = merged.get(key, 0) + value
    merged["samples"] = samples
    return merged


class LoadWorkers:
    """Load generator processes running one job between them.

    Use as ``async with LoadWorkers(jobs, workdir) as workers:``; on leaving,
    any worker still running is killed.
    """

    def __init__(self, jobs: list[Job], workdir: Path) -> None:
        self.jobs = jobs
        self.workdir = workdir
        self.processes: list[asyncio.subprocess.Process] = []
        self.ready: list[dict[str, Any]] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in self.processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    @property
    def pids(self) -> dict[str, int]:
        """The workers' process IDs, as ``loadgen``, ``loadgen2``, ..."""
        return {
            "loadgen" if i == 0 else f"loadgen{i + 1}": p.pid for i, p in enumerate(self.processes)
        }

    async def start(self) -> list[dict[str, Any]]:
        """Start the workers and wait until each has prepared its share.

        Raises:
            LoadError: a worker failed, or was not ready in :data:`READY_TIMEOUT` seconds.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        stderr_path = self.workdir / "loadgen.stderr"
        for i, job in enumerate(self.jobs):
            job = {**job, "result_path": str(self.workdir / f"loadgen-result-{i}.json")}
            with stderr_path.open("ab") as stderr:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.loadgen",
                    "worker",
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=child_environment(),
                )
            self.processes.append(process)
            assert process.stdin is not None
            process.stdin.write(json.dumps(job).encode() + b"\n")
            await process.stdin.drain()
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                self.ready = [await self._receive(p, "ready") for p in self.processes]
        except TimeoutError:
            raise LoadError("the load generator was not ready in time") from None
        return self.ready

    async def go(self, start_ns: int, end_ns: int) -> None:
        """Start the load now; measure inside ``[start_ns, end_ns]`` (monotonic ns)."""
        line = json.dumps({"start_ns": start_ns, "end_ns": end_ns}).encode() + b"\n"
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(line)
        for process in self.processes:
            assert process.stdin is not None
            await process.stdin.drain()

    async def results(self) -> list[dict[str, Any]]:
        """Each worker's result (bound the wait with ``asyncio.timeout``)."""
        paths = [await self._receive(p, "result") for p in self.processes]
        for process in self.processes:
            await process.wait()
        return [_read_result(path) for path in paths]

    async def _receive(self, process: asyncio.subprocess.Process, key: str) -> Any:
        assert process.stdout is not None
        line = await process.stdout.readline()
        if not line.endswith(b"\n"):
            raise LoadError(f"the load generator exited before {key!r}: {self._stderr_tail()}")
        document: dict[str, Any] = json.loads(line)
        if "error" in document:
            raise LoadError(f"load generator: {document['error']}")
        return document[key]

    def _stderr_tail(self) -> str:
        try:
            text = (self.workdir / "loadgen.stderr").read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-3:])


def _read_result(path: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(Path(path).read_text())
    Path(path).unlink()
    return result


@contextlib.asynccontextmanager
async def closed_load_on_hill(
    impl: Implementation, clients: int, id_prefix: str
) -> AsyncIterator[tuple[Herd, LoadWorkers]]:
    """``impl``'s herd up, and load workers ready for a closed IAMAT load on Hill.

    The workers are started (connected, clients registered) but not yet
    told to go. What the bench's tracing tools (``bench.sched_trace``,
    ``bench.pass_trace``) share; the herd stops on leaving.
    """
    with tempfile.TemporaryDirectory(prefix="trioherd-hill-") as scratch:
        workdir = Path(scratch)
        herd = bench_herd(impl, CS131_HERD.names, workdir, "warning", places_url(9))
        try:
            await herd.start_all()
            host, port = herd.address("Hill")
            job: Job = {
                "kind": "closed", "host": host, "port": port, "clients": clients,
                "first_slot": 0, "id_prefix": id_prefix,
            }  # fmt: skip
            async with LoadWorkers([job], workdir) as workers:
                await workers.start()
                yield herd, workers
        finally:
            await herd.stop()
