"""bench.figures_audit finds a document's numbers and the artefacts that hold them."""

from __future__ import annotations

from pathlib import Path

from bench.figures_audit import NUMBER, audit


def test_numbers_are_read_as_prose_writes_them() -> None:
    line = "trio 7,732 req/s, 0.92x asyncio, 1.7-2.2x the CPU, 88.5% of ideal, p99 28.4 ms."
    assert NUMBER.findall(line) == ["7,732", "0.92", "1.7-2.2", "88.5", "28.4"]
    assert NUMBER.findall("py3k v2 x86_64 a8965ee") == []


def test_each_number_names_the_artefacts_holding_it(tmp_path: Path) -> None:
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (results / "table.txt").write_text("iamat N=100 req/s 7,732 8,381 0.92x\n")
    (results / "big.json").write_text("7,732 " * 5000)  # too large to be searched
    doc = tmp_path / "report.md"
    doc.write_text("# Title\n\ntrio did 7,732 req/s, 0.92x asyncio,\nand 49,110 tracebacks.\n")
    assert audit([doc], root=tmp_path) == [
        f"{doc}:3: 7,732 [bench/results/table.txt]; 0.92 [bench/results/table.txt]",
        f"{doc}:4: 49,110 [-]",
    ]
