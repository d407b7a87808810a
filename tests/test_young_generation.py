"""The collector's young generation, sized to the connections a server may hold."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import trio

from trioherd.core.limits import Limits
from trioherd.serving import YOUNG_THRESHOLD_CAP, size_young_generation


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """CPython's thresholds as the test found them, restored after it."""
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_threshold_follows_the_connection_cap(thresholds: tuple[int, int, int]) -> None:
    assert size_young_generation(Limits(max_connections=1000)) == 4000
    assert gc.get_threshold() == (4000, *thresholds[1:])


def test_no_cap_or_a_huge_one_stops_at_the_ceiling(thresholds: tuple[int, int, int]) -> None:
    assert size_young_generation(Limits(max_connections=0)) == YOUNG_THRESHOLD_CAP
    assert size_young_generation(Limits(max_connections=10**7)) == YOUNG_THRESHOLD_CAP
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD_CAP


def test_a_small_server_keeps_cpythons_default(thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(50_000, *thresholds[1:])
    assert size_young_generation(Limits(max_connections=10)) == 700
    assert gc.get_threshold()[0] == 700


def _collections_while_waking(tasks: int) -> int:
    """Young-generation collections while ``tasks`` parked trio tasks wake in one pass."""
    collections = 0

    def count(phase: str, info: dict[str, int]) -> None:
        nonlocal collections
        if phase == "start" and info["generation"] == 0:
            collections += 1

    async def main() -> None:
        nonlocal collections
        woken = trio.Event()
        parked = 0
        all_parked = trio.Event()

        async def wait() -> None:
            nonlocal parked
            parked += 1
            if parked == tasks:
                all_parked.set()
            await woken.wait()

        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(wait)
            await all_parked.wait()
            gc.collect()
            gc.callbacks.append(count)
            try:
                # Reschedules every parked task at once, as a pass of the
                # loop does when a wait for I/O returns them all.
                woken.set()
            finally:
                gc.callbacks.remove(count)

    trio.run(main)
    return collections


def test_waking_every_connection_at_once_no_longer_collects(
    thresholds: tuple[int, int, int],
) -> None:
    gc.set_threshold(700, *thresholds[1:])
    # The premise: at CPython's default, waking 1,000 tasks collects.
    assert _collections_while_waking(1000) >= 1
    size_young_generation(Limits(max_connections=1000))
    assert _collections_while_waking(1000) == 0
