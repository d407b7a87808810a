"""The command line of a herd server, shared by the trio herd and the asyncio contrast.

Both ``python -m trioherd`` and ``python -m bench.asyncio_herd`` parse the
same flags with :func:`parse_options`, so one can stand in for the other.
A bad command line ends in one line on standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from trioherd.core.config import CS131_HERD, ConfigError, HerdConfig, load_herd
from trioherd.core.framing import DEFAULT_MAX_LINE


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


@dataclass(frozen=True)
class Options:
    """What a herd server process was asked to do."""

    herd: HerdConfig
    names: tuple[str, ...]
    log_dir: Path
    log_level: int
    max_line: int


def build_parser(prog: str, implementation: str) -> OneLineParser:
    """The argument parser; ``implementation`` names the event loop in ``--help``."""
    herd = ", ".join(f"{s.name} {s.port}" for s in CS131_HERD.servers)
    parser = OneLineParser(
        prog=prog,
        description=(
            f"Run servers of the CS 131 proxy herd ({implementation}). Clients send "
            "IAMAT and WHATSAT lines over TCP; servers flood locations to their "
            "neighbours over long-lived peer links."
        ),
        epilog=(f"The built-in herd (all on 127.0.0.1): {herd}. Stop with Ctrl-C or SIGTERM."),
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="the server(s) to run, e.g. Jaquez",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="run every server of the herd in this one process",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a TOML file describing the herd; replaces the built-in CS 131 herd",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=Path("logs"),
        metavar="DIR",
        help="where each server writes NAME.log (default: ./logs)",
    )
    parser.add_argument(
        "--log-level",
        choices=sorted(_LEVELS),
        default="info",
        help="info logs every line in and out (default); warning logs only trouble",
    )
    parser.add_argument(
        "--max-line",
        type=int,
        default=DEFAULT_MAX_LINE,
        metavar="BYTES",
        help=f"longest message line accepted (default: {DEFAULT_MAX_LINE})",
    )
    return parser


def parse_options(argv: Sequence[str] | None, prog: str, implementation: str = "trio") -> Options:
    """Parse a herd server's command line; exit with a one-line error if it is bad."""
    parser = build_parser(prog, implementation)
    args = parser.parse_args(argv)
    try:
        herd = CS131_HERD if args.config is None else load_herd(args.config)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.all and args.names:
        parser.error("give server names or --all, not both")
    if not args.all and not args.names:
        parser.error(f"name a server to run ({', '.join(herd.names)}) or give --all")
    names = herd.names if args.all else tuple(dict.fromkeys(args.names))
    for name in names:
        try:
            herd[name]
        except ConfigError as exc:
            parser.error(str(exc))
    if args.max_line < 16:
        parser.error("--max-line must be at least 16 bytes")
    return Options(herd, names, args.log_dir, _LEVELS[args.log_level], args.max_line)
