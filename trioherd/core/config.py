"""The herd's shape: server names, addresses and links.

The built-in herd is the CS 131 one (docs/protocol.md). A TOML file replaces it
whole::

    [servers.Hill]
    host = "127.0.0.1"   # optional, this is the default
    port = 8000
    peers = ["Jaquez", "Smith"]

A link listed on either side exists in both directions. A top-level
``state_dir = "DIR"`` keeps the servers' tables on disk (``--state-dir``;
relative to the file), and a top-level key names the file holding the herd
secret that peer links must prove they know (docs/peer-protocol.md),
relative to the TOML file::

    herd_secret_file = "herd.secret"

Top-level keys ``tls_cert``, ``tls_key`` and ``tls_ca`` name the TLS files
of ``--tls-cert``, ``--tls-key`` and ``--tls-ca`` (trioherd/core/tls.py),
also relative to the file; the command line's win.
"""

from __future__ import annotations

import errno
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from trioherd.core.tls import NO_TLS, TlsFiles

DEFAULT_HOST = "127.0.0.1"

# Names go on the wire (AT lines, the peer handshake) and into log file
# names, so they are one word of safe characters.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ConfigError(Exception):
    """The herd configuration is unusable; the message is one line for the user."""


class BindError(Exception):
    """A server's address cannot be listened on; the message is one line for the user."""

    @classmethod
    def from_os_error(cls, host: str, port: int, exc: OSError) -> BindError:
        """The error for failing to listen on ``host:port`` with ``exc``."""
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use"
        else:
            reason = exc.strerror or str(exc)
        return cls(f"cannot listen on {host}:{port}: {reason}")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One server of the herd."""

    name: str
    host: str
    port: int
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HerdConfig:
    """The whole herd, servers in the order they were declared."""

    servers: tuple[ServerConfig, ...]
    #: Where servers journal their tables, as the file gives it; None: memory only.
    state_dir: str | None = None
    #: The file holding the herd secret, if the configuration names one.
    secret_file: Path | None = None
    #: The TLS files the configuration names.
    tls: TlsFiles = NO_TLS

    def __getitem__(self, name: str) -> ServerConfig:
        for server in self.servers:
            if server.name == name:
                return server
        known = ", ".join(s.name for s in self.servers)
        raise ConfigError(f"unknown server {name!r}; this herd has {known}")

    @property
    def names(self) -> tuple[str, ...]:
        """The servers' names."""
        return tuple(s.name for s in self.servers)


def build_herd(spec: Mapping[str, tuple[str, int, list[str]]]) -> HerdConfig:
    """A herd from ``{name: (host, port, peers)}``, with links made symmetric.

    Raises:
        ConfigError: a bad name, port or peer, or two servers on one address.
    """
    links: dict[str, set[str]] = {name: set() for name in spec}
    for name, (host, port, peers) in spec.items():
        if not _NAME.fullmatch(name):
            raise ConfigError(f"server name {name!r} must be 1-64 letters, digits, '_', '.', '-'")
        if not host:
            raise ConfigError(f"server {name}: host must not be empty")
        # Port 0 asks the OS for a free port: tests and benchmarks use it.
        if not 0 <= port <= 65535:
            raise ConfigError(f"server {name}: port {port} is not in 0-65535")
        for peer in peers:
            if peer not in spec:
                raise ConfigError(f"server {name}: peer {peer!r} is not a server of this herd")
            if peer == name:
                raise ConfigError(f"server {name}: a server cannot be its own peer")
            links[name].add(peer)
            links[peer].add(name)
    seen: dict[tuple[str, int], str] = {}
    for name, (host, port, _) in spec.items():
        if port and (host, port) in seen:
            raise ConfigError(f"servers {seen[host, port]} and {name} both use {host}:{port}")
        seen[host, port] = name
    return HerdConfig(
        tuple(
            ServerConfig(name, host, port, tuple(sorted(links[name])))
            for name, (host, port, _) in spec.items()
        )
    )


#: The CS 131 herd: names, ports and links of docs/protocol.md.
CS131_HERD = build_herd(
    {
        "Hill": (DEFAULT_HOST, 8000, ["Jaquez", "Smith"]),
        "Jaquez": (DEFAULT_HOST, 8001, ["Hill", "Singleton"]),
        "Smith": (DEFAULT_HOST, 8002, ["Hill", "Singleton", "Campbell"]),
        "Campbell": (DEFAULT_HOST, 8003, ["Smith", "Singleton"]),
        "Singleton": (DEFAULT_HOST, 8004, ["Jaquez", "Smith", "Campbell"]),
    }
)


def parse_herd(text: str, source: str = "<config>") -> HerdConfig:
    """A herd from TOML text.

    Raises:
        ConfigError: the text is not TOML or does not describe a herd.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    files = ("herd_secret_file", "tls_cert", "tls_key", "tls_ca")
    unknown_top = set(data) - {"servers", "state_dir", *files}
    if unknown_top:
        raise ConfigError(f"{source}: unknown key {sorted(unknown_top)[0]!r}")
    for key in files:
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{source}: {key} must be a file name")
    secret_file = data.get("herd_secret_file")
    servers = data.get("servers")
    state_dir = data.get("state_dir")
    if state_dir is not None and (not isinstance(state_dir, str) or not state_dir):
        raise ConfigError(f"{source}: state_dir must be a directory name")
    if not isinstance(servers, dict) or not servers:
        raise ConfigError(f"{source}: no [servers.NAME] tables")
    spec: dict[str, tuple[str, int, list[str]]] = {}
    for name, table in servers.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: servers.{name} must be a table")
        unknown = set(table) - {"host", "port", "peers"}
        if unknown:
            raise ConfigError(f"{source}: servers.{name}: unknown key {sorted(unknown)[0]!r}")
        host = table.get("host", DEFAULT_HOST)
        port = table.get("port")
        peers = table.get("peers", [])
        if not isinstance(host, str):
            raise ConfigError(f"{source}: servers.{name}.host must be a string")
        if isinstance(port, bool) or not isinstance(port, int):
            raise ConfigError(f"{source}: servers.{name}.port must be an integer")
        if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
            raise ConfigError(f"{source}: servers.{name}.peers must be a list of names")
        spec[name] = (host, port, peers)
    try:
        herd = build_herd(spec)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    # Files are relative to the configuration file, not to wherever the server starts.
    base = Path(source).parent if source != "<config>" else Path()

    def path(key: str) -> Path | None:
        value = data.get(key)
        return None if value is None else base / value

    tls = TlsFiles(path("tls_cert"), path("tls_key"), path("tls_ca"))
    herd = HerdConfig(herd.servers, state_dir, tls=tls)
    if secret_file is None:
        return herd
    return replace(herd, secret_file=base / secret_file)


def load_herd(path: Path) -> HerdConfig:
    """A herd from a TOML file.

    Raises:
        ConfigError: the file cannot be read or does not describe a herd.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read {path}: {reason}") from None
    return parse_herd(text, str(path))
