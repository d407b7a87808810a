"""Herd servers as subprocesses, started with ``python -m ...``, for black-box tests.

The processes themselves are the benchmark's harness (:mod:`bench.procs`),
so tests and benchmarks start, wait for and stop servers the same way.
Everything here talks to servers over TCP and through their command line, so
the same tests run against any implementation of the herd: add its module
(and the flags that pick a variant of it) to :data:`IMPLEMENTATIONS`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.procs import Herd
from trioherd.core.config import CS131_HERD

from support import WAIT

#: ``python -m MODULE [FLAGS]`` for each implementation under test.
IMPLEMENTATIONS = [
    "trioherd",
    "bench.asyncio_herd",
    "bench.asyncio_herd.protocol",
    "bench.anyio_herd --backend trio",
    "bench.anyio_herd --backend asyncio",
]

#: One implementation per event loop. The wire protocol is tested on every
#: implementation; what is not the wire protocol (the command line, log
#: files) on these only, which keeps the suite short: the other
#: implementations share their command line and log files with one of
#: these (``bench.asyncio_herd.protocol``) or are contrasts for the bench
#: whose options have tests of their own (tests/test_anyio_options.py).
PER_LOOP = ["trioherd", "bench.asyncio_herd"]

#: Those whose command line is tested.
CLI_IMPLEMENTATIONS = PER_LOOP


def with_anyio_on(backend: str, among: Sequence[str] = IMPLEMENTATIONS) -> list[str]:
    """``among`` without the anyio herd, then the anyio herd on ``backend`` only.

    For the tests that take seconds per run (attacks, log files): the anyio
    herd's code is one for both backends, so such a test runs it on one,
    and the tests share the backends out between them. Use it as
    ``@pytest.mark.parametrize("implementation", with_anyio_on("trio"))``.
    """
    return [i for i in among if "anyio" not in i] + [f"bench.anyio_herd --backend {backend}"]


def command(implementation: str) -> list[str]:
    """The words after ``python`` that run ``implementation``."""
    return ["-m", *implementation.split()]


def make_herd(implementation: str, tmp_path: Path) -> Herd:
    """The CS 131 herd of ``implementation`` on free ports, none started yet."""
    return Herd(command(implementation), CS131_HERD.names, tmp_path, label=implementation)


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
