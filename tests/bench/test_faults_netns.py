"""Partitions between hosts: the herd in five network namespaces, a link cut with ``ip link``.

Needs root and iproute2 (CI machines that lack them skip these tests, with
the reason). Each test makes its namespaces, named after this process, and
checks that none is left afterwards, also when the herd fails to start.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from bench import netns, procs
from bench.faults import run_faults
from bench.impls import IMPLEMENTATIONS, Implementation


def _ours() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    mine = f"{netns.PREFIX}-{os.getpid()}-"
    return [line.split()[0] for line in listed.stdout.splitlines() if line.startswith(mine)]


@pytest.fixture(autouse=True)
def namespaces_possible() -> None:
    try:
        netns.check()
    except netns.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("impl", ["trio", "asyncio"])
def test_a_partition_between_hosts_heals_with_nothing_lost(impl: str, tmp_path: Path) -> None:
    results = asyncio.run(
        run_faults(
            IMPLEMENTATIONS[impl], ["partition"], tmp_path, cycles=0, seconds=1.5, use_netns=True
        )
    )
    partition = results["partition"]
    assert partition["links_cut"] == 2  # Hill-Smith and Jaquez-Singleton
    assert partition["acknowledged"] > 50
    # The cut held: some server lacked updates the other side acknowledged.
    assert partition["apart_at_heal_each"][0] > 0, partition
    assert partition["lost"] == 0, partition
    assert partition["converged_s"] is not None, partition
    assert partition["crashed"] == []
    assert _ours() == []


def test_namespaces_are_removed_when_the_herd_fails_to_start(tmp_path: Path) -> None:
    broken = Implementation("broken", "trioherd", args=("--no-such-option",))
    with pytest.raises(procs.StartError):
        asyncio.run(run_faults(broken, ["partition"], tmp_path, 0, 1.0, use_netns=True))
    assert _ours() == []
