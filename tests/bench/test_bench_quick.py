"""``python -m bench``: the quick run end to end, and the pieces that need no servers.

The end-to-end test checks that every workload produced figures and that the
results file and plots are written; it never asserts on a timing, since the
machine running the tests may be as slow and as busy as it likes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

from bench.impls import Implementation
from bench.loadgen import _http_complete, decode_samples, encode_samples, iamat_line
from bench.procs import herd_toml
from bench.report import combine_rounds, fmt, lookup, table_rows, targets
from bench.runner import plan
from bench.settings import QUICK, WORKLOADS, adjust
from bench.stats import latency_summary, percentile
from bench.workers import merge, split
from trioherd.core.config import parse_herd

ROOT = Path(__file__).resolve().parents[2]
QUICK_RUN = [workload for workload in WORKLOADS if workload != "faults"]
PLOTS = ["iamat.png", "churn.png", "whatsat.png", "flood.png", "recovery.png", "memory.png"]


def test_quick_run_writes_results_and_plots(tmp_path: Path) -> None:
    # The faults (a herd restarted again and again) have tests of their own.
    options = ["--impls", "trio", "--workloads", ",".join(QUICK_RUN), "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # Progress, one line per step, on standard error; the table on standard output.
    assert "[ 1/" in done.stderr
    assert "Targets:" in done.stdout

    results = json.loads((tmp_path / "results.json").read_text())
    for key in ("schema", "meta", "machine", "settings", "implementations", "runs", "targets"):
        assert key in results
    machine = results["machine"]
    for key in ("cpu_model", "logical_cores", "memory_bytes", "os", "python", "packages"):
        assert machine[key]
    assert set(machine["packages"]) >= {"trio", "httpx", "aiohttp", "uvloop"}
    assert results["implementations"]["trio"]["status"] == "ran"

    runs = results["runs"]
    assert runs
    for run in runs:
        assert run["error"] is None, run
        assert run["figures"], run
    for workload in QUICK_RUN:
        assert any(r["workload"] == workload and r["impl"] == "trio" for r in runs), workload
    by_kind = {r["kind"]: r["figures"] for r in runs}
    assert by_kind["iamat"]["throughput"] > 0
    assert by_kind["iamat"]["p99_ms"] >= by_kind["iamat"]["p50_ms"]
    assert set(by_kind["flood"]["servers"]) == {"Hill", "Jaquez", "Smith", "Singleton", "Campbell"}
    assert by_kind["recovery"]["lost"] == 0
    assert by_kind["recovery"]["acknowledged"] > 0
    assert by_kind["memory-table"]["bytes_per_client"] > 0
    assert by_kind["whatsat"]["ideal_throughput"] > 0
    assert any(t["status"] in ("met", "not met") for t in results["targets"])

    assert (tmp_path / "table.txt").read_text().startswith("trioherd benchmarks")
    for name in PLOTS:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_unimportable_implementation_is_skipped_not_fatal() -> None:
    missing = Implementation("ghost", "bench.no_such_herd")
    assert missing.unavailable() is not None
    assert Implementation("trio", "trioherd").unavailable() is None


def test_plan_rotates_who_goes_first_and_groups_sessions() -> None:
    settings = adjust(QUICK, max_clients=5000)
    steps = plan(settings, WORKLOADS, ["trio", "asyncio", "uvloop"])
    iamat = [s for s in steps if s.kind == "iamat"]
    firsts = [iamat[i].impl for i in range(0, len(iamat), 3)]
    assert firsts == ["trio", "asyncio", "uvloop"][: len(firsts)]
    sessions = [s.session for s in steps]
    # Each session's steps are contiguous, so it is set up once.
    assert sessions == sorted(sessions, key=["ceiling", "herd", "probe", "memory", "faults"].index)
    assert {s.params["clients"] for s in steps if s.kind == "memory-table"} == {5000}


def test_probe_joins_every_server_in_the_config() -> None:
    ports = {"Hill": 1, "Jaquez": 2, "Smith": 3, "Campbell": 4, "Singleton": 5}
    herd = parse_herd(herd_toml(ports, probe_port=6))
    assert set(herd["Probe"].peers) == set(ports)
    assert "Probe" in herd["Campbell"].peers
    alone = parse_herd(herd_toml({"Hill": 1}))
    assert alone["Hill"].peers == ()


def test_workers_share_clients_and_merge_results() -> None:
    jobs = split({"kind": "closed", "clients": 10, "first_slot": 0}, 3)
    assert [j["clients"] for j in jobs] == [4, 3, 3]
    assert [j["first_slot"] for j in jobs] == [0, 4, 7]
    merged = merge(
        [
            {"completed": 2, "window_s": 1.0, "samples": encode_samples(array("q", [1, 2]))},
            {"completed": 3, "window_s": 1.0, "samples": encode_samples(array("q", [3]))},
        ]
    )
    assert merged["completed"] == 5
    assert merged["window_s"] == 1.0
    assert list(merged["samples"]) == [1, 2, 3]
    assert list(decode_samples(encode_samples(array("q", [7])))) == [7]


def test_http_response_completeness() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n"
    assert not _http_complete(head[:10])
    assert not _http_complete(head + b"ab")
    assert _http_complete(head + b"abc")


def test_iamat_line_carries_nanoseconds() -> None:
    assert iamat_line(b"c1", 1_621_464_827_959_498_503) == (
        b"IAMAT c1 +34.068930-118.445127 1621464827.959498503\n"
    )


def test_statistics_and_formatting() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile([1, 2, 3, 4], 0.99) == 4
    summary = latency_summary([1_000_000, 3_000_000])
    assert summary["p50_ms"] == pytest.approx(1.0)
    assert summary["max_ms"] == pytest.approx(3.0)
    assert fmt(12345.6) == "12,346"
    assert fmt(0.1234) == "0.123"
    assert fmt(None) == "-"
    assert lookup({"servers": {"Hill": {"median_ms": 0.5}}}, "servers.Hill.median_ms") == 0.5


def test_table_ratios_are_trio_over_the_others() -> None:
    records = [
        {
            "kind": "iamat",
            "workload": "iamat",
            "case": "N=1",
            "impl": impl,
            "figures": {"throughput": tp, "p50_ms": 1.0, "p99_ms": p99},
            "error": None,
        }
        for impl, tp, p99 in (("trio", 1200.0, 2.0), ("asyncio", 1000.0, 2.0))
    ]
    rows = table_rows(records, ["trio", "asyncio"])
    assert rows[0][-1] == "trio/asyncio"
    assert rows[1][-1] == "1.20x"
    found = {t["target"]: t for t in targets(records, ["trio", "asyncio"])}
    assert found["IAMAT throughput trio/asyncio >= 1.2x, p99 no worse"]["status"] == "met"


@pytest.mark.parametrize(
    ("at_probe", "at_campbell", "within_1ms", "within_half"),
    [(0.9, 0.6, "met", "not met"), (0.45, 0.35, "met", "met"), (1.2, 1.1, "not met", "not met")],
)
def test_flood_targets_read_the_probe_and_the_estimate_at_campbell(
    at_probe: float, at_campbell: float, within_1ms: str, within_half: str
) -> None:
    campbell = {"median_ms": at_probe, "holds_estimate_ms": at_campbell}
    records = [
        {
            "kind": "flood",
            "workload": "flood",
            "case": "unloaded",
            "impl": "trio",
            "figures": {"servers": {"Campbell": campbell}},
            "error": None,
        }
    ]
    found = {t["target"]: t["status"] for t in targets(records, ["trio"])}
    probe = "flood Hill->Campbell median < 1 ms unloaded (trio; includes the probe's hop)"
    itself = "flood Hill->Campbell median < 0.5 ms unloaded at Campbell itself (trio; issue 14)"
    assert (found[probe], found[itself]) == (within_1ms, within_half)


def test_rounds_interleave_timed_cases_only() -> None:
    settings = adjust(QUICK, rounds=2)
    steps = plan(settings, WORKLOADS, ["trio", "asyncio"])
    iamat = [s for s in steps if s.kind == "iamat"]
    # Every case twice per implementation, round 1 of all before round 2.
    assert len(iamat) == 2 * 2 * len(QUICK.iamat_clients)
    assert [s.params["round"] for s in iamat] == sorted(s.params["round"] for s in iamat)
    assert "(round 2)" in iamat[-1].label
    for kind in ("churn", "whatsat", "flood", "places"):
        assert {s.params["round"] for s in steps if s.kind == kind} == {1, 2}, kind
    for kind in ("recovery", "memory-idle", "memory-table", "ceiling"):
        assert all("round" not in s.params for s in steps if s.kind == kind), kind
    single = plan(QUICK, WORKLOADS, ["trio"])
    assert all("round" not in s.params for s in single)


def test_rounds_combine_into_medians_and_keep_errors() -> None:
    def run(throughput: float | None, hill: float, error: str | None = None) -> dict[str, object]:
        figures = None
        if throughput is not None:
            figures = {"throughput": throughput, "servers": {"Hill": {"median_ms": hill}}}
        return {
            "kind": "iamat",
            "workload": "iamat",
            "case": "N=1",
            "impl": "trio",
            "figures": figures,
            "cpu": {"Hill": hill * 10},
            "error": error,
            "histogram": "first",
        }

    (combined,) = combine_rounds([run(100.0, 3.0), run(300.0, 1.0), run(200.0, 2.0)])
    assert combined["figures"] == {"throughput": 200.0, "servers": {"Hill": {"median_ms": 2.0}}}
    assert combined["cpu"] == {"Hill": 20.0}
    assert combined["rounds"] == 3
    assert combined["histogram"] == "first"
    assert combined["error"] is None
    (failed,) = combine_rounds([run(100.0, 1.0), run(None, 0.0, "boom"), run(300.0, 3.0)])
    assert failed["figures"]["throughput"] == 200.0
    assert (failed["rounds"], failed["error"]) == (2, "boom")
    alone = run(5.0, 1.0)
    assert combine_rounds([alone]) == [alone]
