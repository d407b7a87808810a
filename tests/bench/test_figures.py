"""The report's tables come from a committed results file, round by round."""

import json
from pathlib import Path

from bench.figures import main, ratio_spread, rounds_by_impl

RESULTS = Path(__file__).parents[2] / "bench/results/2026-12-02/results.json"


def test_ratios_are_per_round_with_their_range() -> None:
    runs = json.loads(RESULTS.read_text())["runs"]
    found = rounds_by_impl(runs, "iamat", "N=100", "throughput")
    assert sorted(found["trio"]) == [1, 2]
    trio, asyncio = found["trio"], found["asyncio"]
    ratios = sorted(trio[r] / asyncio[r] for r in (1, 2))
    assert ratio_spread(trio, asyncio) == (
        f"{sum(ratios) / 2:.2f}x ({ratios[0]:.2f}-{ratios[1]:.2f})"
    )
    # A round the other implementation lacks is not compared.
    assert ratio_spread(trio, {}) == "-"


def test_the_command_prints_a_table_and_refuses_a_missing_file(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert main([str(RESULTS), "--impls", "trio,asyncio"]) == 0
    out = capsys.readouterr().out
    assert "| iamat | N=100 | req/s ↑ |" in out
    assert "trio/asyncio" in out
    assert main([str(RESULTS), "--pairs", "trio+logs/trio"]) == 0
    assert "| trio+logs / trio | iamat | N=100 | req/s ↑ |" in capsys.readouterr().out
    assert main([str(tmp_path / "none.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
