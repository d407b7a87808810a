"""One herd server's state and rules, with no I/O: the part every event loop shares.

:class:`ServerState` holds the location table and, per neighbour, the
records owed to it. Lines come in through a
:class:`~trioherd.core.connection.Connection` (one per accepted connection),
which calls :meth:`ServerState.handle`; the outbound links
(:class:`~trioherd.core.link.LinkProtocol`) pull what they owe with
:meth:`ServerState.take`.

Flooding happens inside :meth:`ServerState.handle`, before any reply
exists: an accepted update is owed to every relevant neighbour at once, and
the neighbours that got new work are reported by :meth:`ServerState.flooded`,
so an I/O layer can hand the first hop to its links before it answers the
client (docs/protocol.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from trioherd.core.limits import DEFAULT_LIMITS, Limits
from trioherd.core.messages import (
    PEER_PROTOCOL_VERSION,
    At,
    format_at,
    invalid,
    parse_at,
    parse_hello,
    parse_iamat,
    parse_location,
    parse_whatsat,
)
from trioherd.core.places import PlacesQuery
from trioherd.core.table import LocationTable

#: The most AT lines an outbox hands out at once: a resync of a large table
#: goes out in pieces instead of one huge buffer.
BATCH_RECORDS = 1024


@dataclass(frozen=True, slots=True)
class PeerJoined:
    """A connection identified itself as the neighbour ``peer``.

    With a herd secret it has yet to prove it (the
    :class:`~trioherd.core.connection.Connection` runs the challenge);
    ``options`` are its handshake's options, ``name`` its name as sent.
    """

    peer: str
    name: bytes = field(default=b"", compare=False)
    options: dict[bytes, bytes] = field(default_factory=dict, compare=False)


Outcome = bytes | PlacesQuery | PeerJoined | None


class Outbox:
    """The records owed to one neighbour, as an ordered set of client IDs.

    Holding IDs rather than lines means a client that moves ten times while
    a link is slow is sent once, with its latest record, and the outbox can
    never grow past the table.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[bytes, None] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def discard(self, client_id: bytes) -> None:
        """Owe nothing more for a client the table has forgotten."""
        self._pending.pop(client_id, None)

    def add(self, client_ids: Iterable[bytes]) -> None:
        """Owe the neighbour these clients' records."""
        self._pending.update(dict.fromkeys(client_ids))

    def take(self, table: LocationTable, limit: int = BATCH_RECORDS) -> bytes:
        """Up to ``limit`` owed records as AT lines, each ending in ``\\n``."""
        batch = list(itertools.islice(self._pending, limit))
        lines: list[bytes] = []
        for client_id in batch:
            del self._pending[client_id]
            line = table.line(client_id)
            if line is not None:
                lines.append(line)
                lines.append(b"\n")
        return b"".join(lines)


class ServerState:
    """A herd server: its location table, its rules and what it owes its neighbours.

    Args:
        name: the server's name, as it appears in AT lines.
        peers: the names of its neighbours.
        limits: the bounds on stored clients and on future client times.
        secret: the herd secret that peer links must prove they know, or
            ``None`` to accept any neighbour that names itself.
    """

    def __init__(
        self,
        name: str,
        peers: Iterable[str],
        *,
        limits: Limits = DEFAULT_LIMITS,
        secret: bytes | None = None,
    ) -> None:
        self.name = name
        self._name = name.encode()
        self.limits = limits
        self.secret = secret
        self.table = LocationTable(limits.max_clients)
        self._max_future_ns = int(limits.max_future * 1e9) if limits.max_future else 0
        self._outboxes: dict[str, Outbox] = {peer: Outbox() for peer in peers}
        self._peer_names = {peer.encode(): peer for peer in self._outboxes}
        # Neighbours owed new records since flooded() last asked, in order.
        self._flooded: dict[str, None] = {}

    @property
    def peers(self) -> list[str]:
        """The neighbours' names."""
        return list(self._outboxes)

    def handle(self, line: bytes, received_ns: int, peer: str | None = None) -> Outcome:
        """Act on one line received from a connection.

        Args:
            line: the line, without its ending.
            received_ns: when it arrived, in POSIX nanoseconds.
            peer: the neighbour this connection identified itself as, or
                ``None`` for a client connection.
        """
        if peer is not None:
            return self._peer_line(line, peer, received_ns)
        fields = line.split()
        command = fields[0] if fields else b""
        if command == b"IAMAT":
            iamat = parse_iamat(fields)
            if iamat is not None and not self._too_far_ahead(iamat.client_time_ns, received_ns):
                at = format_at(self._name, received_ns, iamat)
                if self.table.offer(at, from_client=True):
                    self._flood(at, source=None)
                return at.line + b"\n"
        elif command == b"WHATSAT":
            whatsat = parse_whatsat(fields)
            at_line = None if whatsat is None else self.table.line(whatsat.client_id)
            if whatsat is not None and at_line is not None:
                # The stored line was validated when it was stored.
                location = parse_location(at_line.split()[4])
                assert location is not None
                return PlacesQuery(
                    at_line,
                    location.latitude,
                    location.longitude,
                    whatsat.radius_km * 1000,
                    whatsat.bound,
                )
        elif command == b"PEER":
            hello = parse_hello(fields)
            if (
                hello is not None
                and hello.version == PEER_PROTOCOL_VERSION
                and hello.name in self._peer_names
            ):
                return PeerJoined(self._peer_names[hello.name], hello.name, hello.options)
        return invalid(line)

    def flooded(self) -> list[str]:
        """The neighbours owed new records since the last call, and forget them."""
        peers = list(self._flooded)
        self._flooded.clear()
        return peers

    def owes(self, peer: str) -> bool:
        """Whether records are waiting to be sent to ``peer``."""
        return bool(self._outboxes[peer])

    def take(self, peer: str, limit: int = BATCH_RECORDS) -> bytes:
        """Up to ``limit`` records owed to ``peer``, as AT lines each ending in ``\\n``."""
        return self._outboxes[peer].take(self.table, limit)

    def resync(self, peer: str) -> None:
        """Owe ``peer`` the whole table: its link has just (re)connected."""
        self._outboxes[peer].add(self.table.clients())

    def _too_far_ahead(self, client_ns: int, received_ns: int) -> bool:
        # A time far in the future would pin a record for good: no later
        # IAMAT could be newer. Such a line is an invalid command.
        return bool(self._max_future_ns) and client_ns - received_ns > self._max_future_ns

    def _peer_line(self, line: bytes, peer: str, received_ns: int) -> bytes | None:
        at = parse_at(line)
        if at is None or self._too_far_ahead(at.client_time_ns, received_ns):
            return invalid(line)
        if self.table.offer(at, from_client=False):
            self._flood(at, source=peer)
        return None

    def _flood(self, at: At, source: str | None) -> None:
        table = self.table
        if table.last_evicted is not None:
            # An outbox must not outgrow a capped table: a link that is down
            # would otherwise hold every ID ever seen.
            for outbox in self._outboxes.values():
                outbox.discard(table.last_evicted)
            table.last_evicted = None
        # Forward to every neighbour but the one the update came from.
        for peer, outbox in self._outboxes.items():
            if peer != source:
                outbox.add((at.client_id,))
                self._flooded[peer] = None
