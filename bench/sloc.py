"""Lines of code of the I/O layers, as compare_asyncio.md counts them.

    python -m bench.sloc

A line counts if it holds a token of code: blank lines, comments and
docstrings (of modules, classes and functions) do not. Each module of the
trio layer is put beside its asyncio and anyio mirrors.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from collections.abc import Sequence
from pathlib import Path

#: The trio layer's modules and their asyncio and anyio mirrors, side by side.
MODULES = ("server", "peers", "places", "herd", "cli", "stream")
ROOT = Path(__file__).resolve().parent.parent
TRIO = ROOT / "trioherd"
ASYNCIO = ROOT / "bench" / "asyncio_herd"
ANYIO = ROOT / "bench" / "anyio_herd"
LAYERS = {"trio": TRIO, "asyncio": ASYNCIO, "anyio": ANYIO}

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
    totals = dict.fromkeys(LAYERS, 0)
    print(f"{'module':12}" + "".join(f" {layer:>8}" for layer in LAYERS))
    for module in MODULES:
        counts = {
            layer: code_lines((folder / f"{module}.py").read_text())
            for layer, folder in LAYERS.items()
        }
        for layer, count in counts.items():
            totals[layer] += count
        print(f"{module + '.py':12}" + "".join(f" {counts[layer]:8}" for layer in LAYERS))
    print(f"{'total':12}" + "".join(f" {totals[layer]:8}" for layer in LAYERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
