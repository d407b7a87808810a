"""Black-box fixtures: each test runs once per implementation of the herd."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.procs import Herd
from trioherd.core.config import CS131_HERD

from processes import CLI_IMPLEMENTATIONS, IMPLEMENTATIONS, make_herd


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    """The module that runs a herd server."""
    return str(request.param)


@pytest.fixture(params=CLI_IMPLEMENTATIONS)
def cli_implementation(request: pytest.FixtureRequest) -> str:
    """The module of an implementation whose command line is tested without a herd."""
    return str(request.param)


@pytest.fixture
async def processes(implementation: str, tmp_path: Path) -> AsyncIterator[Herd]:
    """A herd of subprocesses, none started yet; all stopped at the end."""
    herd = make_herd(implementation, tmp_path)
    try:
        yield herd
    finally:
        await herd.stop()


@pytest.fixture
async def herd(processes: Herd) -> Herd:
    """The five-server CS 131 herd, each server its own process."""
    for name in CS131_HERD.names:
        await processes.start(name)
    return processes
