"""Every number in the project's prose, and where a committed artefact holds it.

    python -m bench.figures_audit compare_asyncio.md README.md bench/README.md docs/*.md

For each line of each document that holds a number, prints the line
number, the numbers, and the committed files under ``bench/results/`` whose
text contains each number as written (``7,732``, ``0.92x`` as ``0.92``,
``1.6-1.9`` as its two ends). A number found nowhere is marked ``-``.

This is a first pass for a person, not a verdict: a number can be found by
coincidence (``100`` is everywhere), and a figure derived from an artefact
(a ratio of two of its numbers) is not found although it is traceable. The
audit itself is ``bench/results/figures-audit.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.procs import ROOT

#: A number as prose writes it: 7,732 / 0.92 / 1.6-1.9 / 49,110 / 5 (not inside a word).
NUMBER = re.compile(
    r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:[-–]\d[\d,]*(?:\.\d+)?)?(?=x\b|%|[^\w.]|\.\s|\.$|$)"
)
#: Artefacts searched: text files under bench/results, small enough that a
#: rounded figure is not found in them by coincidence (the runs' full JSON
#: files hold thousands of long numbers; their tables are searched instead).
SUFFIXES = {".txt", ".json", ".md", ".log"}
LARGEST = 20_000


def artefacts(root: Path) -> dict[str, str]:
    """Committed text artefacts, by path relative to the project root."""
    found: dict[str, str] = {}
    for path in sorted((root / "bench" / "results").rglob("*")):
        if (
            path.is_file()
            and path.suffix in SUFFIXES
            and path.stat().st_size <= LARGEST
            and path.name not in ("figures-audit.md", "seed-claims.md")
        ):
            found[str(path.relative_to(root))] = path.read_text(errors="replace")
    return found


def where(number: str, texts: dict[str, str]) -> list[str]:
    """The artefacts holding every end of ``number`` as written, or without its commas."""
    ends = re.split(r"[-–]", number)
    holders = []
    for name, text in texts.items():
        if all(end in text or end.replace(",", "") in text for end in ends):
            holders.append(name)
    return holders


def audit(paths: Sequence[Path], root: Path = ROOT) -> list[str]:
    """The report's lines: ``file:line: number [holders] ...``."""
    texts = artefacts(root)
    out = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            numbers = NUMBER.findall(line)
            if not numbers:
                continue
            cells = []
            for figure in numbers:
                holders = where(figure, texts)
                shown = ", ".join(holders[:3]) + (" ..." if len(holders) > 3 else "")
                cells.append(f"{figure} [{shown or '-'}]")
            out.append(f"{path}:{number}: " + "; ".join(cells))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: prints one line per line of prose that holds a number."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.figures_audit",
        description="List the numbers in documents and the committed artefacts that hold them.",
    )
    parser.add_argument("documents", nargs="+", type=Path, help="Markdown files")
    args = parser.parse_args(argv)
    for line in audit(args.documents):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
