"""The code's own standards: lint, types, and the sans-I/O core's independence."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What the sans-I/O core must never import: it is shared by trio and asyncio.
EVENT_LOOPS = {"trio", "asyncio", "anyio", "httpx", "aiohttp", "uvloop", "sniffio"}


@pytest.mark.parametrize("path", sorted((ROOT / "trioherd" / "core").glob("*.py")), ids=str)
def test_core_imports_no_event_loop(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & EVENT_LOOPS


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_ruff_lint() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


# [text](target) and [text]: target; images too. Code spans and fenced blocks
# are taken out first: a link written there is an example, not a link.
_MARKDOWN_LINK = re.compile(
    r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|^\s*\[[^\]]+\]:\s*(\S+)", re.M
)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def markdown_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def local_links(text: str) -> list[str]:
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    targets = [inline or reference for inline, reference in _MARKDOWN_LINK.findall(text)]
    # Web addresses and mail are not files; "#part" stays in the same file.
    return [
        target.split("#")[0]
        for target in targets
        if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("#")
    ]


def test_markdown_links_stay_in_the_repository() -> None:
    files = markdown_files()
    assert ROOT / "README.md" in files
    broken = []
    for path in files:
        for target in local_links(path.read_text()):
            resolved = (path.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken


def test_the_link_check_sees_a_link_outside() -> None:
    text = "see [the rules](../shared/protocol.md), `[not](a/link)`, [web](https://x.org)"
    assert local_links(text) == ["../shared/protocol.md"]
