"""Every option of every command line is in the README that documents the program."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import bench.accept_storm
import bench.awake
import bench.cli
import bench.counters_cost
import bench.cpu_split
import bench.flood_hops
import bench.flood_probe
import bench.gc_cost
import bench.hop_floor
import bench.loadgen
import bench.places_faults
import bench.places_index
import bench.places_stub
import bench.profile
import trioherd.client
import trioherd.places_server
from bench.impls import IMPLEMENTATIONS
from bench.settings import WORKLOADS
from trioherd.options import build_parser

ROOT = Path(__file__).resolve().parent.parent
#: An option as a whole word: ``--places-url``, not ``--places`` inside it.
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w-])")

#: (README, program, its parser, sub-commands whose own options count too)
PROGRAMS: list[tuple[str, str, Callable[[], argparse.ArgumentParser], tuple[str, ...]]] = [
    ("README.md", "trioherd", lambda: build_parser("trioherd", "trio"), ()),
    ("README.md", "asyncio_herd", lambda: build_parser("asyncio_herd", "asyncio"), ()),
    ("README.md", "client", trioherd.client.build_parser, ()),
    ("README.md", "places_server", trioherd.places_server.command_line, ()),
    ("README.md", "places_faults", bench.places_faults.build_parser, ()),
    ("bench/README.md", "bench", bench.cli.build_parser, ()),
    ("bench/README.md", "loadgen", bench.loadgen.build_parser, ("worker", "ceiling")),
    ("bench/README.md", "flood_probe", bench.flood_probe.build_parser, ()),
    ("bench/README.md", "flood_hops", bench.flood_hops.build_parser, ()),
    ("bench/README.md", "hop_floor", bench.hop_floor.build_parser, ()),
    ("bench/README.md", "awake", bench.awake.build_parser, ()),
    ("bench/README.md", "places_stub", bench.places_stub.build_parser, ()),
    ("bench/README.md", "places_index", bench.places_index.build_parser, ()),
    ("bench/README.md", "counters_cost", bench.counters_cost.build_parser, ()),
    ("bench/README.md", "profile", bench.profile.build_parser, ()),
    ("bench/README.md", "cpu_split", bench.cpu_split.build_parser, ()),
    ("bench/README.md", "gc_cost", bench.gc_cost.build_parser, ("core", "serve")),
    ("bench/README.md", "accept_storm", bench.accept_storm.build_parser, ()),
]


def help_text(parser: argparse.ArgumentParser, *command: str) -> str:
    """What ``--help`` prints, for the program or one of its sub-commands."""
    if not command:
        return parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--help"])
    return ""


@pytest.mark.parametrize(
    ("readme", "build", "commands"),
    [pytest.param(r, b, c, id=name) for r, name, b, c in PROGRAMS],
)
def test_readme_names_every_option(
    readme: str,
    build: Callable[[], argparse.ArgumentParser],
    commands: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (ROOT / readme).read_text()
    helps = [help_text(build())]
    for command in commands:
        help_text(build(), command)
        helps.append(capsys.readouterr().out)
        assert f" {command}" in text, command
    options = {option for help_ in helps for option in OPTION.findall(help_)} - {"--help"}
    assert options, helps
    mentioned = set(OPTION.findall(text))
    missing = sorted(options - mentioned)
    assert not missing, f"{readme} does not mention {missing}"


def test_bench_readme_names_every_implementation_and_workload() -> None:
    text = (ROOT / "bench" / "README.md").read_text()
    assert not [name for name in IMPLEMENTATIONS if f"`{name}`" not in text]
    assert not [name for name in WORKLOADS if name not in text]
