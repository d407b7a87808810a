import pytest

from bench.whatsat_ratios import ratios


def run(
    impl: str, rnd: int, throughput: float, p99: float, hill: float, case: str = "C=200"
) -> dict[str, object]:
    return {
        "workload": "whatsat",
        "case": case,
        "impl": impl,
        "params": {"round": rnd},
        "figures": {"throughput": throughput, "p99_ms": p99},
        "cpu": {"Hill": hill},
        "error": None,
    }


def test_each_round_is_divided_by_the_same_rounds_base() -> None:
    runs = [
        run("trio", 1, 1000.0, 200.0, 100.0),
        run("asyncio", 1, 800.0, 250.0, 100.0),
        run("trio", 2, 400.0, 300.0, 50.0),
        run("asyncio", 2, 500.0, 300.0, 100.0),
        # A round with no base, another implementation and a failed run: ignored.
        run("trio", 3, 1.0, 1.0, 1.0),
        run("asyncio-httpx", 1, 1.0, 1.0, 1.0),
        {**run("asyncio", 3, 1.0, 1.0, 1.0), "error": "boom"},
    ]
    rows = {row["metric"]: row for row in ratios(runs, "trio", "asyncio")}
    assert rows["req/s"]["rounds"] == [1.25, 0.8]
    assert (rows["req/s"]["min"], rows["req/s"]["max"]) == (0.8, 1.25)
    assert rows["p99 ms"]["rounds"] == [0.8, 1.0]
    # Hill CPU per WHATSAT: 100% of a core over 1000/s is 1000 µs each.
    assert rows["Hill CPU µs/WHATSAT"]["trio"] == [1000.0, 1250.0]
    assert rows["Hill CPU µs/WHATSAT"]["rounds"] == pytest.approx([0.8, 0.625])


def test_cases_come_in_order_of_concurrency() -> None:
    runs = [
        run(impl, 1, 100.0, 100.0, 10.0, case)
        for case in ("C=500", "C=50", "C=200")
        for impl in ("trio", "asyncio")
    ]
    cases = [row["case"] for row in ratios(runs, "trio", "asyncio")]
    assert cases == ["C=50"] * 3 + ["C=200"] * 3 + ["C=500"] * 3
