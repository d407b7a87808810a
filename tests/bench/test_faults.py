"""The fault harness, short, in CI: kill loops and a whole-herd SIGKILL lose nothing.

Both herds, each as five processes with ``--state-dir``. The kill loop
must lose no acknowledged update at all. The whole-herd kill may lose only
updates acknowledged within the journal's sync interval before it (none
were lost in our runs: the journal is written before the replies).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.faults import run_faults
from bench.impls import IMPLEMENTATIONS
from trioherd.durable import SYNC_INTERVAL

#: Kill/restart cycles per herd: ten across the two.
CYCLES = 5


@pytest.mark.parametrize("impl", ["trio", "asyncio"])
def test_kill_loop_and_whole_herd_kill(impl: str, tmp_path: Path) -> None:
    results = asyncio.run(
        run_faults(IMPLEMENTATIONS[impl], ["kill", "killall"], tmp_path, cycles=CYCLES, seconds=1.0)
    )
    kill, killall = results["kill"], results["killall"]
    assert kill["acknowledged"] > 100
    assert kill["lost"] == 0, kill
    assert kill["crashed"] == []
    assert killall["acknowledged"] > 100
    assert killall["crashed"] == []
    if killall["lost"]:
        _youngest, oldest = killall["lost_acknowledged_s_before_kill"]
        assert oldest <= SYNC_INTERVAL, killall
