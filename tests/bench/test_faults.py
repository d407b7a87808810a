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
from bench.report import table_rows, targets
from bench.runner import plan
from bench.settings import QUICK, adjust
from bench.workloads import Env, faults
from trioherd.durable import SYNC_INTERVAL

#: Kill/restart cycles per herd (the issue's CI figure; 100 in the committed run).
CYCLES = 10


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


def test_the_faults_workload_reports_each_fault_in_the_table(tmp_path: Path) -> None:
    # The bench's workload around the harness, with one short fault (the
    # others cost a herd restart each; test_kill_loop_and_whole_herd_kill
    # covers them).
    settings = adjust(QUICK, fault_cycles=1)
    env = Env(settings, tmp_path, "warning", impl=IMPLEMENTATIONS["trio"])
    outcome = asyncio.run(faults(env, {"faults": ["stop"]}))
    stop = outcome.figures["stop"]
    assert stop["acknowledged"] > 0
    assert stop["lost"] == 0, stop
    assert stop["crashed"] == 0
    assert "stop: 0 lost" in outcome.summary

    record = {"kind": "faults", "workload": "faults", "case": "c", "impl": "trio"}
    rows = table_rows([{**record, "figures": outcome.figures, "error": None}], ["trio"])
    shown = {row[2]: row[3] for row in rows[1:]}
    assert shown["stop: lost updates ↓"] == "0"
    assert shown["stop: servers crashed ↓"] == "0"
    # A fault that did not run shows as missing, not as 0.
    assert shown["kill: lost updates ↓"] == "-"
    found = targets([{**record, "figures": outcome.figures, "error": None}], ["trio"])
    assert any(t["target"].startswith("faults:") and t["status"] == "met" for t in found)


def test_only_the_two_compared_herds_take_faults() -> None:
    steps = plan(QUICK, ["faults"], ["trio", "asyncio", "trio+logs", "anyio-trio", "uvloop"])
    assert sorted(step.impl for step in steps) == ["asyncio", "trio"]
    assert {step.session for step in steps} == {"faults"}
