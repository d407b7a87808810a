"""Fixtures shared by every test: the places cache, in-process herds."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from trioherd.core.config import CS131_HERD
from trioherd.herd import RunningHerd
from trioherd.offline.cache import load_index
from trioherd.places import OfflinePlaces

from support import cs131_herd_on, herd_running


@pytest.fixture(scope="session", autouse=True)
def places_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One places cache for the whole run, never the user's ~/.cache."""
    path = tmp_path_factory.mktemp("places-cache")
    old = os.environ.get("TRIOHERD_CACHE_DIR")
    os.environ["TRIOHERD_CACHE_DIR"] = str(path)
    # Build the cache once now, so server subprocesses started together read
    # it rather than each building it from the JSON.
    load_index(path)
    yield path
    if old is None:
        del os.environ["TRIOHERD_CACHE_DIR"]
    else:
        os.environ["TRIOHERD_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def offline_places() -> OfflinePlaces:
    """One offline source for every in-process herd: the index loads once."""
    return OfflinePlaces()


@pytest.fixture
async def herd(tmp_path: Path, offline_places: OfflinePlaces) -> AsyncIterator[RunningHerd]:
    """The five-server CS 131 herd on OS-chosen ports, in this process."""
    async with herd_running(
        cs131_herd_on([0] * 5), CS131_HERD.names, tmp_path / "logs", offline_places
    ) as running:
        yield running
