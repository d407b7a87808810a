"""One herd server's state and rules, with no I/O: the part both event loops share.

The I/O layer (trio in ``trioherd``, asyncio in ``bench.asyncio_herd``) owns
sockets and tasks; it hands every received line to :meth:`ServerState.handle`
and carries out what comes back:

* ``bytes``: write this reply on the connection;
* :class:`PlacesQuery`: ask the Places source, then write
  :func:`trioherd.core.places.whatsat_reply`;
* :class:`PeerJoined`: the connection is now a peer's inbound link; a good
  moment to retry our own link to that peer;
* ``None``: nothing to write.

Flooding happens inside :meth:`ServerState.handle`, before the reply exists:
an accepted update lands in every relevant :class:`Outbox` at once, so the
first hop of a flood is handed to the peer links before the client is
answered (protocol.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
    """A connection identified itself as the neighbour ``peer``."""

    peer: str


Outcome = bytes | PlacesQuery | PeerJoined | None


@dataclass(slots=True)
class Answers:
    """What a connection owes for one read's lines, in the order they came.

    ``replies`` holds an empty placeholder at each slot listed in
    ``queries``; the I/O layer asks Places and fills it in, then writes all
    of ``replies`` at once.
    """

    replies: list[bytes]
    queries: list[tuple[int, PlacesQuery]]
    #: Who the connection is after these lines: a peer's name, or ``None``.
    peer: str | None
    #: Set if the connection identified itself as this peer in these lines.
    joined: str | None = None


def _nothing() -> None:
    pass


class Outbox:
    """The records owed to one neighbour, as an ordered set of client IDs.

    Holding IDs rather than lines means a client that moves ten times while
    a link is slow is sent once, with its latest record, and the outbox can
    never grow past the table. The I/O layer sets :attr:`wake` to rouse the
    link's sender when the outbox stops being empty.
    """

    __slots__ = ("_pending", "wake")

    def __init__(self) -> None:
        self._pending: dict[bytes, None] = {}
        self.wake: Callable[[], None] = _nothing

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, client_ids: Iterable[bytes]) -> None:
        """Owe the neighbour these clients' records."""
        was_empty = not self._pending
        self._pending.update(dict.fromkeys(client_ids))
        if was_empty and self._pending:
            self.wake()

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
    """A herd server: its location table, its rules and its outboxes.

    Args:
        name: the server's name, as it appears in AT lines.
        peers: the names of its neighbours.
    """

    def __init__(self, name: str, peers: Iterable[str]) -> None:
        self.name = name
        self._name = name.encode()
        self.table = LocationTable()
        self.outboxes: dict[str, Outbox] = {peer: Outbox() for peer in peers}
        self._peer_names = {peer.encode(): peer for peer in self.outboxes}

    def handle(self, line: bytes, received_ns: int, peer: str | None = None) -> Outcome:
        """Act on one line received from a connection.

        Args:
            line: the line, without its ending.
            received_ns: when it arrived, in POSIX nanoseconds.
            peer: the neighbour this connection identified itself as, or
                ``None`` for a client connection.
        """
        if peer is not None:
            return self._peer_line(line, peer)
        fields = line.split()
        command = fields[0] if fields else b""
        if command == b"IAMAT":
            iamat = parse_iamat(fields)
            if iamat is not None:
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
                return PeerJoined(self._peer_names[hello.name])
        return invalid(line)

    def handle_lines(
        self, lines: Iterable[bytes], received_ns: int, peer: str | None = None
    ) -> Answers:
        """:meth:`handle` each line of one read, collecting what to write back."""
        answers = Answers([], [], peer)
        for line in lines:
            outcome = self.handle(line, received_ns, answers.peer)
            if isinstance(outcome, bytes):
                answers.replies.append(outcome)
            elif isinstance(outcome, PlacesQuery):
                answers.queries.append((len(answers.replies), outcome))
                answers.replies.append(b"")
            elif isinstance(outcome, PeerJoined):
                answers.peer = answers.joined = outcome.peer
        return answers

    def resync(self, peer: str) -> None:
        """Owe ``peer`` the whole table: its link has just (re)connected."""
        self.outboxes[peer].add(self.table.clients())

    def _peer_line(self, line: bytes, peer: str) -> bytes | None:
        at = parse_at(line)
        if at is None:
            return invalid(line)
        if self.table.offer(at, from_client=False):
            self._flood(at, source=peer)
        return None

    def _flood(self, at: At, source: str | None) -> None:
        # Forward to every neighbour but the one the update came from.
        for peer, outbox in self.outboxes.items():
            if peer != source:
                outbox.add((at.client_id,))
