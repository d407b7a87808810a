"""The command line of a herd server, shared by the trio herd and the asyncio contrast.

Both ``python -m trioherd`` and ``python -m bench.asyncio_herd`` parse the
same flags with :func:`parse_options`, so one can stand in for the other.
A bad command line ends in one line on standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from trioherd import __version__
from trioherd.core.config import CS131_HERD, BindError, ConfigError, HerdConfig, load_herd
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.limits import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LIMITS,
    DEFAULT_LINE_TIMEOUT,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_FUTURE,
    Limits,
    default_max_connections,
)
from trioherd.core.tls import NO_TLS, TlsError, TlsFiles
from trioherd.durable import StateDirError
from trioherd.logs import DEFAULT_BACKUPS, DEFAULT_MAX_BYTES, HerdLogs, LogSetupError

#: The shortest herd secret accepted, in bytes.
MIN_SECRET = 16


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not a usage dump.

    Every one of our programs answers ``--version`` with trioherd's version.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_argument(
            "--version", action="version", version=f"%(prog)s (trioherd {__version__})"
        )

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


#: Google's legacy Nearby Search endpoint.
GOOGLE_NEARBY_URL = "https://maps.googleapis.com/maps/api/place/nearbysearch/json"
#: The environment variable holding a Google Places API key.
KEY_VARIABLE = "GOOGLE_PLACES_API_KEY"


@dataclass(frozen=True)
class PlacesOptions:
    """Where WHATSAT gets places: over HTTP (a URL, a key, or our own server) or offline.

    ``key`` is a secret: it goes into requests and nowhere else.
    """

    url: str | None = None
    key: str | None = field(default=None, repr=False)
    timeout: float = 5.0
    concurrency: int = 500
    local_server: bool = False
    #: What carries the HTTP requests: on trio ``lean`` (our transport under
    #: httpx) or ``httpx`` (httpx's stock transport); on asyncio ``aiohttp``
    #: or ``httpx``.
    transport: str = "lean"

    @property
    def over_http(self) -> bool:
        """Whether WHATSAT asks an HTTP endpoint rather than the offline index."""
        return self.url is not None or self.key is not None or self.local_server


@dataclass(frozen=True)
class Options:
    """What a herd server process was asked to do."""

    herd: HerdConfig
    names: tuple[str, ...]
    log_dir: Path
    log_level: int
    max_line: int
    places: PlacesOptions = PlacesOptions()
    #: Rotate a log file before it passes this size (0: never), keeping this many.
    log_max_bytes: int = DEFAULT_MAX_BYTES
    log_backups: int = DEFAULT_BACKUPS
    #: Run on uvloop (the asyncio contrast only).
    uvloop: bool = False
    #: Where to serve /metrics and /healthz, ``(host, port)``; ``None``: nowhere.
    metrics: tuple[str, int] | None = None
    #: Where each server journals its table (trioherd/durable.py); None: memory only.
    state_dir: Path | None = None
    limits: Limits = DEFAULT_LIMITS
    #: The herd secret peer links must prove they know; never logged.
    herd_secret: bytes | None = field(default=None, repr=False)
    #: anyio's backend, ``trio`` or ``asyncio`` (the anyio herd only).
    backend: str = "trio"
    #: TLS on the servers' ports and on their links (trioherd/core/tls.py).
    tls: TlsFiles = NO_TLS

    def open_logs(self) -> HerdLogs:
        """The servers' log files as asked (a context manager, closing them)."""
        return HerdLogs(
            self.log_dir,
            self.names,
            level=self.log_level,
            max_bytes=self.log_max_bytes,
            backups=self.log_backups,
        )


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
        help="info logs every line in and out (default); warning logs only trouble "
        "(and start and stop); debug adds every failed attempt to link",
    )
    parser.add_argument(
        "--log-max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        metavar="BYTES",
        help=f"rotate NAME.log before it passes this size, 0: never (default: {DEFAULT_MAX_BYTES})",
    )
    parser.add_argument(
        "--log-backups",
        type=int,
        default=DEFAULT_BACKUPS,
        metavar="N",
        help=f"rotated files kept, NAME.log.1 the newest (default: {DEFAULT_BACKUPS})",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="keep each server's table in DIR/NAME.journal, synced every second, and "
        "load it at start (default: memory only; the TOML key state_dir sets it too)",
    )
    parser.add_argument(
        "--max-line",
        type=int,
        default=DEFAULT_MAX_LINE,
        metavar="BYTES",
        help=f"longest message line accepted (default: {DEFAULT_MAX_LINE})",
    )
    if implementation != "trio":
        parser.add_argument(
            "--uvloop", action="store_true", help="run the asyncio event loop on uvloop"
        )
    metrics = parser.add_argument_group(
        "metrics",
        "With --metrics-port, the process answers HTTP GET /metrics (Prometheus text: "
        "connections, lines, replies, table size, links, flood lag, Places requests) and "
        "/healthz (JSON: listening, links up; 200, or 503 while starting or stopping).",
    )
    metrics.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /metrics and /healthz on this port (0: any; default: no metrics)",
    )
    metrics.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address for --metrics-port (default 127.0.0.1; 0.0.0.0 for a scraper elsewhere)",
    )
    if implementation == "anyio":
        parser.add_argument(
            "--backend",
            choices=("trio", "asyncio"),
            help="anyio's event loop (default: trio; asyncio with --uvloop)",
        )
    parser.add_argument(
        "--herd-secret-file",
        type=Path,
        metavar="FILE",
        help="peer links must prove they know the secret in FILE (at least "
        f"{MIN_SECRET} bytes); without one, any process may join the herd",
    )
    # The anyio herd has no TLS (bench/anyio_herd/NOTES.md): it takes none of
    # its options rather than ignore them.
    if implementation != "anyio":
        tls = parser.add_argument_group(
            "TLS",
            "Optional, off by default (the course's herd speaks plain text). The TOML "
            "keys tls_cert, tls_key and tls_ca set the same files.",
        )
        tls.add_argument(
            "--tls-cert",
            type=Path,
            metavar="FILE",
            help="the servers' certificate chain (PEM): their ports speak only TLS, "
            "to clients and neighbours' links alike; needs --tls-key",
        )
        tls.add_argument(
            "--tls-key", type=Path, metavar="FILE", help="the private key of --tls-cert (PEM)"
        )
        tls.add_argument(
            "--tls-ca",
            type=Path,
            metavar="FILE",
            help="links to neighbours speak TLS and accept only a certificate that "
            "chains to a CA in FILE and names the neighbour's configured host",
        )
    limits = parser.add_argument_group(
        "limits", "bounds on what a client may cost a server; 0 turns a bound off"
    )
    limits.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help=f"close a client connection silent this long (default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    limits.add_argument(
        "--line-timeout",
        type=float,
        default=DEFAULT_LINE_TIMEOUT,
        metavar="SECONDS",
        help="close a client connection that takes longer to finish a line it has "
        f"started (default {DEFAULT_LINE_TIMEOUT:g})",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="connections open at once (default: 90%% of the descriptor limit)",
    )
    limits.add_argument(
        "--max-connections-per-address",
        type=int,
        metavar="N",
        help="connections open at once from one address (default: --max-connections)",
    )
    limits.add_argument(
        "--max-clients",
        type=int,
        default=DEFAULT_MAX_CLIENTS,
        metavar="N",
        help="clients stored; past it the least recently updated is forgotten "
        f"(default {DEFAULT_MAX_CLIENTS})",
    )
    limits.add_argument(
        "--max-future",
        type=float,
        default=DEFAULT_MAX_FUTURE,
        metavar="SECONDS",
        help="an IAMAT time further ahead of the server's clock is an invalid "
        f"command (default {DEFAULT_MAX_FUTURE:g})",
    )
    places = parser.add_argument_group(
        "places",
        f"WHATSAT asks Google's Nearby Search when ${KEY_VARIABLE} or --places-key-file "
        "gives a key, any Google-compatible endpoint given by --places-url, or our own "
        "Places server with --places-server; with none of these it answers from "
        "offline GeoNames data.",
    )
    places.add_argument(
        "--places-url",
        metavar="URL",
        help="a Google-compatible Nearby Search endpoint "
        f"(with a key, the default is {GOOGLE_NEARBY_URL})",
    )
    places.add_argument(
        "--places-key-file",
        type=Path,
        metavar="FILE",
        help=f"read the API key from FILE instead of ${KEY_VARIABLE}",
    )
    places.add_argument(
        "--places-server",
        action="store_true",
        help="start our own Places server and use it over HTTP: "
        + (
            "a task in this process"
            if implementation == "trio"
            else "a child process (python -m trioherd.places_server), as asyncio cannot host it"
        ),
    )
    places.add_argument(
        "--places-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="longest wait for a Places answer, queueing included (default 5)",
    )
    if implementation == "trio":
        places.add_argument(
            "--places-transport",
            choices=["lean", "httpx"],
            default="lean",
            help="what carries WHATSAT's HTTP requests under httpx: our transport on "
            "trioherd's lean sockets with the llhttp parser (default), or httpx's stock "
            "transport (httpcore, h11, trio.SocketStream)",
        )
    elif implementation == "anyio":
        places.add_argument(
            "--places-transport",
            choices=["httpx"],
            default="httpx",
            help="the HTTP client for WHATSAT: httpx's stock transport, the only one "
            "that runs on both of anyio's backends",
        )
    else:
        places.add_argument(
            "--places-transport",
            choices=["aiohttp", "httpx"],
            default="aiohttp",
            help="the HTTP client for WHATSAT: aiohttp (default) or httpx's stock transport",
        )
    places.add_argument(
        "--places-concurrency",
        type=int,
        default=500,
        metavar="N",
        help="most Places requests in flight per process, and the size of the "
        "keep-alive pool (default 500)",
    )
    return parser


def _places_options(
    parser: OneLineParser, args: argparse.Namespace, environ: Mapping[str, str]
) -> PlacesOptions:
    key = environ.get(KEY_VARIABLE) or None
    if args.places_key_file is not None:
        try:
            key = args.places_key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            parser.error(f"cannot read key file {args.places_key_file}: {reason}")
    # Never echo the key itself in an error: only what is wrong with it.
    if key is not None and (not key or not key.isprintable() or any(c.isspace() for c in key)):
        parser.error("the Places API key is empty or holds white space")
    url = args.places_url
    if url is not None:
        scheme, _, rest = url.partition("://")
        if scheme not in ("http", "https") or not rest.split("/", 1)[0]:
            parser.error(f"--places-url {url!r} is not an http:// or https:// URL")
        if args.places_server:
            parser.error("give --places-url or --places-server, not both")
    elif key is not None and not args.places_server:
        url = GOOGLE_NEARBY_URL
    if not 0 < args.places_timeout < float("inf"):
        parser.error("--places-timeout must be a positive number of seconds")
    if args.places_concurrency < 1:
        parser.error("--places-concurrency must be at least 1")
    return PlacesOptions(
        url=url,
        key=key,
        timeout=args.places_timeout,
        concurrency=args.places_concurrency,
        local_server=args.places_server,
        transport=args.places_transport,
    )


def _limits(parser: OneLineParser, args: argparse.Namespace) -> Limits:
    for flag in ("idle_timeout", "line_timeout", "max_future"):
        value = getattr(args, flag)
        if math.isnan(value) or value < 0:
            parser.error(f"--{flag.replace('_', '-')} must be a number of seconds, 0 or more")
    for flag in ("max_connections", "max_connections_per_address", "max_clients"):
        value = getattr(args, flag)
        if value is not None and value < 0:
            parser.error(f"--{flag.replace('_', '-')} must be 0 or more")
    max_connections = args.max_connections
    if max_connections is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        max_connections = 0 if soft == resource.RLIM_INFINITY else default_max_connections(soft)
    per_address = args.max_connections_per_address
    return Limits(
        idle_timeout=args.idle_timeout,
        line_timeout=args.line_timeout,
        max_connections=max_connections,
        max_per_address=max_connections if per_address is None else per_address,
        max_clients=args.max_clients,
        max_future=args.max_future,
    )


def _herd_secret(parser: OneLineParser, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        parser.error(f"cannot read herd secret file {path}: {exc.strerror}")
    # Never echo the secret itself: only what is wrong with it.
    if len(secret) < MIN_SECRET:
        parser.error(f"the herd secret in {path} is shorter than {MIN_SECRET} bytes")
    return secret


def _tls(parser: OneLineParser, args: argparse.Namespace, herd: HerdConfig) -> TlsFiles:
    # The command line's certificate and key, or else the TOML's, as a pair.
    if args.tls_cert is not None or args.tls_key is not None:
        cert, key = args.tls_cert, args.tls_key
    else:
        cert, key = herd.tls.cert, herd.tls.key
    tls = TlsFiles(cert, key, args.tls_ca or herd.tls.ca)
    if (tls.cert is None) != (tls.key is None):
        parser.error("give a TLS certificate and its key together (--tls-cert, --tls-key)")
    try:
        # Loaded once here so that a bad file is a one-line error at start.
        tls.server_context()
        tls.link_context()
    except TlsError as exc:
        parser.error(str(exc))
    return tls


def parse_options(
    argv: Sequence[str] | None,
    prog: str,
    implementation: str = "trio",
    environ: Mapping[str, str] = os.environ,
) -> Options:
    """Parse a herd server's command line; exit with a one-line error if it is bad.

    Args:
        argv: the arguments, without the program name; ``None``: ``sys.argv``.
        prog: the program's name for messages.
        implementation: the event loop, for ``--help``.
        environ: the environment, for the API key.
    """
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
    if args.log_max_bytes < 0 or args.log_backups < 0:
        parser.error("--log-max-bytes and --log-backups cannot be negative")
    if args.max_line < 16:
        parser.error("--max-line must be at least 16 bytes")
    metrics_port = getattr(args, "metrics_port", None)
    if metrics_port is not None and not 0 <= metrics_port < 65536:
        parser.error("--metrics-port must be a port number (0-65535)")
    places = _places_options(parser, args, environ)
    state_dir = getattr(args, "state_dir", None)
    if state_dir is None and herd.state_dir is not None:
        # In the TOML, a relative directory is relative to the file.
        assert args.config is not None
        state_dir = args.config.parent / herd.state_dir
    secret_file = getattr(args, "herd_secret_file", None) or herd.secret_file
    uvloop = getattr(args, "uvloop", False)
    backend = getattr(args, "backend", None) or ("asyncio" if uvloop else "trio")
    if uvloop and backend != "asyncio":
        parser.error("--uvloop needs --backend asyncio")
    return Options(
        herd,
        names,
        args.log_dir,
        _LEVELS[args.log_level],
        args.max_line,
        places,
        log_max_bytes=args.log_max_bytes,
        log_backups=args.log_backups,
        uvloop=uvloop,
        metrics=None if metrics_port is None else (args.metrics_host, metrics_port),
        state_dir=state_dir,
        limits=_limits(parser, args),
        herd_secret=_herd_secret(parser, secret_file),
        backend=backend,
        tls=_tls(parser, args, herd) if implementation != "anyio" else NO_TLS,
    )


def sole_exception(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups.

    Entry points use it to turn an error raised inside a nursery back into
    the one-line message it deserves.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def exit_status(exc: BaseException, prog: str) -> int:
    """The exit status for what ended a server, said in one line if it is the user's.

    A log directory or an address that cannot be used is the user's to fix:
    one line on standard error, status 1. Ctrl-C before the signal handler
    was installed: 130, as a shell would. Anything else is a bug, re-raised.
    """
    leaf = sole_exception(exc)
    if isinstance(leaf, (LogSetupError, BindError, StateDirError)):
        print(f"{prog}: error: {leaf}", file=sys.stderr)
        return 1
    if isinstance(leaf, KeyboardInterrupt):
        return 130
    raise exc
