"""Black-box fixtures: each test runs once per implementation of the herd."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from bench.procs import Herd

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


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def herd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Herd]:
    """The five-server CS 131 herd, each server its own process, shared by a module's tests.

    Started once per implementation and module, not once per test: the
    tests that take it only talk to it, each about clients of its own, and
    none stops or kills a server (those take :func:`processes`). The herd
    is plain child processes, so a synchronous fixture starts and stops it,
    each in a short event loop of its own (pytest-trio's fixtures are
    function-scoped).
    """
    herd = make_herd(str(request.param), tmp_path_factory.mktemp("herd"))
    try:
        anyio.run(herd.start_all, backend="trio")
        yield herd
    finally:
        anyio.run(herd.stop, backend="trio")
