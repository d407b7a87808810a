"""The hop floor's relay chains pass every line on, intact and in order."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import hop_floor


@pytest.mark.parametrize("kind", ["python", "python-epoll", "asyncio-protocol", "asyncio", "trio"])
def test_a_chain_of_python_relays_passes_every_line_on(kind: str) -> None:
    # time_chain raises if any line arrives other than as sent.
    times, cpu, wait = hop_floor.time_chain(kind, 2, 30, 5, 0, None)
    assert len(times) == 30
    assert all(t > 0 for t in times)
    assert cpu > 0
    assert wait >= 0


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no cc")
def test_the_c_relay_builds_and_passes_lines_on(tmp_path: Path) -> None:
    binary = hop_floor.build_c_relay(tmp_path)
    assert binary is not None
    times, _, _ = hop_floor.time_chain("c", 3, 30, 5, 0, binary)
    assert len(times) == 30


def test_summary_is_median_and_nearest_rank_p99() -> None:
    figures = hop_floor.summary([i * 1_000_000 for i in range(1, 101)])
    assert figures == {"median_ms": 50.5, "p99_ms": 100.0}
