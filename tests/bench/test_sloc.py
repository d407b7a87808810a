import pytest

from bench.sloc import code_lines, main


def test_only_code_counts() -> None:
    source = '''"""Module docstring,
over two lines."""

import os  # a comment


def f(x: int) -> int:
    """Docstring."""
    # a comment line
    return (x +
            1)


class C:
    """Docstring."""

    text = """not a docstring:
    it is a value"""
'''
    # import, def, return (two lines), class, the two lines of text.
    assert code_lines(source) == 7


def test_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["module", "trio", "asyncio", "anyio"]
    assert [line.split()[0] for line in out[1:]] == [
        "server.py", "peers.py", "places.py", "herd.py", "cli.py", "stream.py", "total",
    ]  # fmt: skip
    assert main(["extra"]) == 2
