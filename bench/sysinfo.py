"""What the benchmark knows about processes and the machine, through psutil.

psutil ships no type information, so it is imported once, here, and every
value that leaves this module is converted to a plain ``int`` or ``float``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

#: Packages whose versions go into the results: every one a herd's hot path
#: runs through (anyio under the anyio herd and httpx's asyncio backend,
#: httptools under our HTTP client and Places server), so that runs on two
#: interpreters, whose venvs may resolve different versions, say so.
PACKAGES = (
    "trio",
    "httpx",
    "httpcore",
    "h11",
    "httptools",
    "anyio",
    "aiohttp",
    "uvloop",
    "prometheus-client",
    "matplotlib",
    "psutil",
    "trioherd",
)


def _process(pid: int) -> Any:
    return psutil.Process(pid)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used, in seconds (0 if it is gone)."""
    try:
        times = _process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user) + float(times.system)


def rss(pid: int) -> int:
    """The process's resident set size, in bytes."""
    return int(_process(pid).memory_info().rss)


def open_fds(pid: int) -> int:
    """How many file descriptors the process holds (sockets included)."""
    return int(_process(pid).num_fds())


def nofile_limit(pid: int) -> tuple[int, int]:
    """The process's ``RLIMIT_NOFILE``, ``(soft, hard)``."""
    soft, hard = _process(pid).rlimit(psutil.RLIMIT_NOFILE)
    return int(soft), int(hard)


@dataclass
class CpuMeter:
    """CPU used by named processes over a window, as a percentage of one core.

    ``start`` and ``stop`` take snapshots; :meth:`percent` gives each
    process's CPU seconds over the window divided by the window's length, so
    200 is both cores of a two-core machine.
    """

    pids: Mapping[str, int]
    _start: dict[str, float] = field(default_factory=dict)
    _stop: dict[str, float] = field(default_factory=dict)
    _t0: float = 0.0
    _t1: float = 0.0

    def start(self) -> None:
        """Snapshot now as the window's start."""
        self._t0 = time.monotonic()
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        """Snapshot now as the window's end."""
        self._t1 = time.monotonic()
        self._stop = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def percent(self) -> dict[str, float]:
        """Each process's CPU over the window, in % of one core."""
        wall = max(self._t1 - self._t0, 1e-9)
        return {
            name: round(100 * (self._stop.get(name, 0.0) - self._start[name]) / wall, 1)
            for name in self._start
        }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(root: Path, *args: str) -> str | None:
    # Read-only queries: which commit was measured, and whether it was dirty.
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def machine_info(root: Path) -> dict[str, Any]:
    """The machine, the Python and the package versions, for the results file."""
    memory = psutil.virtual_memory()
    status = _git(root, "status", "--porcelain")
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_bytes": int(memory.total),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        # Which interpreter ran it, and how it was built: the bench may be
        # run from several venvs (3.11, 3.12, 3.13) on one machine. (Not
        # its path, which names a directory outside the repository.)
        "python_build": " ".join(platform.python_build()),
        "python_compiler": platform.python_compiler(),
        "gil_disabled": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "packages": {name: _version(name) for name in PACKAGES},
        "load_average": list(os.getloadavg()),
        "git_commit": _git(root, "rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: how noisy the machine was."""
    return list(os.getloadavg())
