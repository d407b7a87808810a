"""Lines of code of the two I/O layers, as compare_asyncio.md counts them.

    python -m bench.sloc

A line counts if it holds a token of code: blank lines, comments and
docstrings (of modules, classes and functions) do not. Each module of the
trio layer is put beside its asyncio mirror.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from collections.abc import Sequence
from pathlib import Path

#: The trio layer's modules and their asyncio mirrors, side by side.
MODULES = ("server", "peers", "places", "herd", "cli", "stream")
ROOT = Path(__file__).resolve().parent.parent
TRIO = ROOT / "trioherd"
ASYNCIO = ROOT / "bench" / "asyncio_herd"

_NOT_CODE = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    }
)


def code_lines(source: str) -> int:
    """How many lines of ``source`` hold code."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _NOT_CODE:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table of compare_asyncio.md."""
    if argv if argv is not None else sys.argv[1:]:
        print("usage: python -m bench.sloc (no arguments)", file=sys.stderr)
        return 2
    totals = [0, 0]
    print(f"{'module':12} {'trio':>6} {'asyncio':>8}")
    for module in MODULES:
        counts = [code_lines((folder / f"{module}.py").read_text()) for folder in (TRIO, ASYNCIO)]
        totals = [total + count for total, count in zip(totals, counts, strict=True)]
        print(f"{module + '.py':12} {counts[0]:6} {counts[1]:8}")
    print(f"{'total':12} {totals[0]:6} {totals[1]:8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
