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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from trioherd.core.counters import Counters
from trioherd.core.limits import DEFAULT_LIMITS, Limits
from trioherd.core.messages import (
    PEER_PROTOCOL_VERSION,
    At,
    Record,
    format_at,
    invalid,
    parse_at,
    parse_at_run,
    parse_hello,
    parse_iamat,
    parse_location,
    parse_whatsat,
)
from trioherd.core.places import PlacesQuery
from trioherd.core.resume import Marks, mark_line, owed_since
from trioherd.core.table import LocationTable

#: The most AT lines an outbox hands out at once: a resync of a large table
#: goes out in pieces instead of one huge buffer.
BATCH_RECORDS = 1024
#: A neighbour that floods to us is sent a mark at least every this many
#: stores, even when it is owed no record (see ServerState._keep_level).
MARK_EVERY = 1024


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


def _nothing() -> None:
    pass


class Outbox:
    """The records owed to one neighbour, as an ordered set of client IDs.

    Holding IDs rather than lines means a client that moves ten times while
    a link is slow is sent once, with its latest record, and the outbox can
    never grow past the table.
    """

    __slots__ = ("_mark_due", "_pending", "marked", "marking")

    def __init__(self) -> None:
        self._pending: dict[bytes, None] = {}
        #: The neighbour keeps marks (core/resume.py): tell it when we are level.
        self.marking = False
        # A resync that owed nothing still owes the neighbour a mark.
        self._mark_due = False
        #: The sequence number of the last mark handed out.
        self.marked = 0

    def __len__(self) -> int:
        return len(self._pending) + self._mark_due

    def discard(self, client_id: bytes) -> None:
        """Owe nothing more for a client the table has forgotten."""
        self._pending.pop(client_id, None)

    def add(self, client_ids: Iterable[bytes]) -> None:
        """Owe the neighbour these clients' records."""
        self._pending.update(dict.fromkeys(client_ids))

    def reconnected(self, *, marking: bool) -> None:
        """The link reconnected; ``marking``: the neighbour keeps marks.

        If it does, even a resync that owes no record ends in a mark.
        """
        self.marking = self._mark_due = marking

    def mark_due(self) -> None:
        """Owe the neighbour a mark, even with no record to send."""
        self._mark_due = True

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
        if self.marking and (lines or self._mark_due) and not self._pending:
            lines.append(mark_line(table))
            self._mark_due = False
            self.marked = table.seq
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
        self.counters = Counters()
        #: How far each neighbour's link to us has got (core/resume.py).
        self.marks = Marks()
        #: Called before what was stored can leave the process: before a
        #: client's reply is made (Exchange.output), before a link takes
        #: records (take), and after each read of a neighbour's. The durable
        #: journal writes there what was stored since (none if nothing was).
        self.write_stored: Callable[[], None] = _nothing

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
        counters = self.counters
        fields = line.split()
        command = fields[0] if fields else b""
        if command == b"IAMAT":
            counters.lines_iamat += 1
            iamat = parse_iamat(fields)
            if iamat is not None and not self._too_far_ahead(iamat.client_time_ns, received_ns):
                at = format_at(self._name, received_ns, iamat)
                if self.table.offer(at, from_client=True):
                    counters.stored_from_clients += 1
                    self._flood(at, source=None)
                counters.replies_at += 1
                return at.line + b"\n"
        elif command == b"WHATSAT":
            counters.lines_whatsat += 1
            whatsat = parse_whatsat(fields)
            at_line = None if whatsat is None else self.table.line(whatsat.client_id)
            if whatsat is not None and at_line is not None:
                counters.replies_whatsat += 1
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
            counters.lines_peer += 1
            hello = parse_hello(fields)
            if (
                hello is not None
                and hello.version == PEER_PROTOCOL_VERSION
                and hello.name in self._peer_names
            ):
                return PeerJoined(self._peer_names[hello.name], hello.name, hello.options)
        else:
            counters.lines_other += 1
        counters.lines_invalid += 1
        return invalid(line)

    def handle_peer_run(self, lines: list[bytes], received_ns: int, peer: str) -> int:
        """Act on a run of lines from neighbour ``peer`` at once, if they allow it.

        A resync sends a million AT lines; one at a time through
        :meth:`handle` they cost the receiver several microseconds each.
        This takes the leading AT lines of ``lines`` (all of them but any
        ``MARK`` or other non-AT lines at the end) in one pass, if every one
        is in the form servers write and none is too far ahead, with the
        same rules and results as :meth:`handle` line by line: none of them
        is answered, and what is stored is flooded, counted and journaled
        the same way (tests/core/test_batch.py).

        Returns:
            How many lines from the start were handled: 0 if the run does
            not qualify, and the caller takes the lines one by one.
        """
        count = len(lines)
        while count and not lines[count - 1].startswith(b"AT "):
            count -= 1
        if count < 2:
            return 0
        run = lines if count == len(lines) else lines[:count]
        records = parse_at_run(run)
        if records is None:
            return 0
        if self._max_future_ns and (
            max(record[1] for record in records) - received_ns > self._max_future_ns
        ):
            return 0
        counters = self.counters
        counters.lines_at += count
        table = self.table
        # A client forgotten before and not yet discarded from the outboxes
        # (one at a time, _flood would discard it first).
        pending = table.last_evicted
        stored = table.offer_many(records)
        if stored:
            evicted = table.evicted_during
            if pending is not None:
                evicted = [(0, pending), *evicted]
            table.last_evicted = None
            counters.observe_floods(stored, received_ns)
            self._flood_many(stored, evicted, source=peer)
            self._keep_level(peer)
        return count

    def flooded(self) -> list[str]:
        """The neighbours owed new records since the last call, and forget them."""
        peers = list(self._flooded)
        self._flooded.clear()
        return peers

    def owes(self, peer: str) -> bool:
        """Whether records are waiting to be sent to ``peer``."""
        return bool(self._outboxes[peer])

    def owed(self, peer: str) -> int:
        """How many records are waiting to be sent to ``peer`` (for metrics)."""
        return len(self._outboxes[peer])

    def take(self, peer: str, limit: int = BATCH_RECORDS) -> bytes:
        """Up to ``limit`` records owed to ``peer``, as AT lines each ending in ``\\n``.

        What was stored is journaled first: a record (and its sequence
        number) never reaches a neighbour before this server's journal.
        """
        self.write_stored()
        return self._outboxes[peer].take(self.table, limit)

    def resync(self, peer: str, since: tuple[bytes, int] | None = None) -> None:
        """Owe ``peer`` what it lacks: its link has just (re)connected.

        ``since`` is where the neighbour said it got to (``RESUME``), or
        ``None`` if it speaks the older protocol: then it is owed the whole
        table, and no marks.
        """
        connects = self.counters.link_connects
        connects[peer] = connects.get(peer, 0) + 1
        outbox = self._outboxes[peer]
        outbox.reconnected(marking=since is not None)
        outbox.add(owed_since(self.table, since))

    def mark_from_now(self, peer: str) -> None:
        """``peer`` keeps marks after all: send it one whenever we are level."""
        self._outboxes[peer].reconnected(marking=True)

    def _too_far_ahead(self, client_ns: int, received_ns: int) -> bool:
        # A time far in the future would pin a record for good: no later
        # IAMAT could be newer. Such a line is an invalid command.
        return bool(self._max_future_ns) and client_ns - received_ns > self._max_future_ns

    def _peer_line(self, line: bytes, peer: str, received_ns: int) -> bytes | None:
        self.counters.lines_at += 1
        if line.startswith(b"MARK"):
            return None if self.marks.receive(peer, line.split()) else invalid(line)
        # (Split only a line that may be one: the rest are AT lines, a
        # million of them in a resync.)
        if b"RESUME" in line and line.split() == [b"RESUME"]:
            return self.marks.resume_reply(peer)
        at = parse_at(line)
        if at is None or self._too_far_ahead(at.client_time_ns, received_ns):
            self.counters.lines_invalid += 1
            return invalid(line)
        if self.table.offer(at, from_client=False):
            self.counters.observe_flood(at, received_ns)
            self._flood(at, source=peer)
            self._keep_level(peer)
        return None

    def _keep_level(self, peer: str) -> None:
        # What a neighbour floods to us is never owed back to it, so a
        # neighbour that only floods to us (a leaf, or one filling our
        # table) would never be sent a mark past it, and after our restart
        # would be resent all it gave us. Now and then, tell it we are level.
        outbox = self._outboxes[peer]
        if outbox.marking and not outbox and self.table.seq - outbox.marked >= MARK_EVERY:
            outbox.mark_due()
            self._flooded[peer] = None

    def _flood_many(
        self, stored: list[Record], evicted: list[tuple[int, bytes]], source: str
    ) -> None:
        """:meth:`_flood` for each of a run's stored records, in order.

        ``evicted``: the clients the table forgot meanwhile, each with the
        number of stored records that came before its forgetting.
        """
        for peer, outbox in self._outboxes.items():
            if peer == source:
                for _, client_id in evicted:
                    outbox.discard(client_id)
                continue
            self._flooded[peer] = None
            # As one record at a time would: forget each evicted client
            # just before the record whose store evicted it is owed.
            done = 0
            for before, client_id in evicted:
                outbox.add([record[0] for record in stored[done:before]])
                outbox.discard(client_id)
                done = before
            outbox.add([record[0] for record in stored[done:]])

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
