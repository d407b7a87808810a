from bench.anyio_ratios import ratios


def run(kind: str, case: str, impl: str, rnd: int, throughput: float) -> dict[str, object]:
    return {
        "kind": kind,
        "case": case,
        "impl": impl,
        "params": {"round": rnd},
        "figures": {"throughput": throughput},
        "error": None,
    }


def test_ratios_pair_each_round_with_its_own_native_figure() -> None:
    runs = [
        run("iamat", "N=100", "trio", 1, 1000.0),
        run("iamat", "N=100", "anyio-trio", 1, 900.0),
        run("iamat", "N=100", "trio", 2, 500.0),
        run("iamat", "N=100", "anyio-trio", 2, 500.0),
        # Another case, and a failed run: neither counts.
        run("iamat", "N=10", "anyio-trio", 1, 1.0),
        {**run("whatsat", "C=200", "asyncio", 1, 100.0), "error": "boom", "figures": {}},
        run("whatsat", "C=200", "anyio-asyncio", 1, 100.0),
    ]
    (row,) = ratios(runs)
    assert row["pair"] == "anyio-trio/trio"
    assert row["case"] == "iamat N=100"
    assert row["rounds"] == [0.9, 1.0]
    assert (row["min"], row["max"]) == (0.9, 1.0)
