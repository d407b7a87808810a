"""The location table: for each client, the most recent AT record.

Every server applies the same total order to records, so that whatever
order floods arrive in, the herd converges on one record per client:

1. the greater client time (integer nanoseconds) wins;
2. on equal client times, the record whose AT line is greater byte for
   byte wins (the lines differ in the receiving server's name or time
   difference, so two different records never tie).

A client's IAMAT is stricter, as docs/protocol.md asks: it must be strictly newer
in client time to change anything; an equal time changes nothing.

The table holds at most ``max_clients`` records: a record that changes
moves to the end of the table's order, and a new client past the cap
forgets the client least recently updated, so the table's memory is bounded
whatever IDs clients invent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from trioherd.core.messages import At, Record


class LocationTable:
    """Client ID to ``(client time in ns, AT line)``.

    A record is kept as a plain tuple, not an object, because the table is
    the one structure whose size grows with the herd's users.

    Every store takes the next sequence number of this table's life (its
    :attr:`epoch`, random per table), and the records are kept in the order
    of their last store, so "what changed since sequence number N" is a walk
    back from the newest record (:meth:`clients_since`): how a neighbour that
    was away is sent only the difference (core/resume.py). A server with a
    state directory journals both, and a restart takes up the same life
    (trioherd/durable.py), so its neighbours' marks stay good.
    """

    __slots__ = (
        "_records",
        "epoch",
        "evicted",
        "evicted_during",
        "last_evicted",
        "max_clients",
        "on_store",
        "seq",
    )

    def __init__(self, max_clients: int = 0) -> None:
        self._records: dict[bytes, tuple[int, bytes, int]] = {}
        #: Names this life of the table: sequence numbers mean nothing across lives.
        self.epoch = os.urandom(8).hex().encode()
        #: The sequence number of the latest store.
        self.seq = 0
        #: Given every AT line the table stores, when set (the durable journal).
        self.on_store: Callable[[bytes], None] | None = None
        #: The most records kept (0: no bound).
        self.max_clients = max_clients
        #: Records forgotten to keep within the bound.
        self.evicted = 0
        #: The client most recently forgotten, for whoever holds its ID too.
        self.last_evicted: bytes | None = None
        #: What :meth:`offer_many` last forgot: ``(how many records it had
        #: stored by then, client ID)``, in order.
        self.evicted_during: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return len(self._records)

    def clients(self) -> Iterator[bytes]:
        """Client IDs, least recently stored first."""
        return iter(self._records)

    def clients_since(self, seq: int) -> list[bytes]:
        """Client IDs stored after sequence number ``seq``, oldest first."""
        newer: list[bytes] = []
        for client_id in reversed(self._records):
            if self._records[client_id][2] <= seq:
                break
            newer.append(client_id)
        newer.reverse()
        return newer

    def lines(self) -> list[bytes]:
        """Every stored AT line, oldest store first.

        Safe to call from another thread while the event loop stores: the
        copy is one C-level call, which the GIL does not interleave.
        """
        return [record[1] for record in list(self._records.values())]

    def numbered_lines(self) -> list[tuple[bytes, int]]:
        """Every stored AT line with its sequence number, oldest store first.

        Thread-safe as :meth:`lines` is (a journal snapshot).
        """
        return [(record[1], record[2]) for record in list(self._records.values())]

    def line(self, client_id: bytes) -> bytes | None:
        """The stored AT line for ``client_id``, if any."""
        record = self._records.get(client_id)
        return None if record is None else record[1]

    def offer(self, at: At, *, from_client: bool) -> bool:
        """Store ``at`` if it is newer than what the table holds.

        Args:
            at: the record.
            from_client: ``True`` for a record made from a client's own IAMAT
                at this server, ``False`` for one that came from a peer.

        Returns:
            Whether the table changed, which is whether the record must be
            flooded on.
        """
        records = self._records
        stored = records.get(at.client_id)
        if stored is not None:
            stored_ns, stored_line, _ = stored
            if at.client_time_ns < stored_ns:
                return False
            if at.client_time_ns == stored_ns and (from_client or at.line <= stored_line):
                return False
            # Deleted first so that the update moves to the end of the order.
            del records[at.client_id]
        elif self.max_clients and len(records) >= self.max_clients:
            # A dict keeps insertion order: the first key is the least
            # recently updated client.
            oldest = next(iter(records))
            del records[oldest]
            self.evicted += 1
            self.last_evicted = oldest
        self.seq += 1
        records[at.client_id] = (at.client_time_ns, at.line, self.seq)
        if self.on_store is not None:
            self.on_store(at.line)
        return True

    def offer_many(self, records: list[Record], first_number: int | None = None) -> list[Record]:
        """Offer peers' records in order, as :meth:`offer` with ``from_client=False`` each.

        The same rule as :meth:`offer`, in one loop for a run of records (a
        resync's read, a journal's load): the property tests in
        tests/core/test_batch.py hold the two to the same results.

        Args:
            records: the records, as :func:`~trioherd.core.messages.parse_at_run` makes them.
            first_number: if given, record ``i`` is store number
                ``first_number + i`` whether or not it is stored (a journal's
                records keep the numbers they had); otherwise each store
                takes the next number.

        Returns:
            The records stored, in order. Clients forgotten to keep within
            the bound are in :attr:`evicted_during`.
        """
        table = self._records
        if records and (not self.max_clients or len(table) + len(records) <= self.max_clients):
            client_ids = [record[0] for record in records]
            if len(set(client_ids)) == len(client_ids) and table.keys().isdisjoint(client_ids):
                # Clients the table does not hold, each once (a fresh
                # resync, a journal's snapshot): every one is stored, so
                # the run goes in whole, in C.
                self.evicted_during = []
                start = self.seq + 1 if first_number is None else first_number
                self.seq = start + len(records) - 1
                table.update(
                    zip(
                        client_ids,
                        [
                            (record[1], record[2], seq)
                            for record, seq in zip(records, range(start, self.seq + 1), strict=True)
                        ],
                        strict=True,
                    )
                )
                if self.on_store is not None:
                    for record in records:
                        self.on_store(record[2])
                return records
        get = table.get
        stored: list[Record] = []
        keep = stored.append
        evicted_during = self.evicted_during = []
        seq = self.seq
        number = first_number
        for record in records:
            client_id, client_time_ns, line, _ = record
            if number is not None:
                seq = number - 1
                number += 1
            old = get(client_id)
            if old is not None:
                if client_time_ns < old[0] or (client_time_ns == old[0] and line <= old[1]):
                    continue
                del table[client_id]
            elif self.max_clients and len(table) >= self.max_clients:
                oldest = next(iter(table))
                del table[oldest]
                self.evicted += 1
                evicted_during.append((len(stored), oldest))
            seq += 1
            table[client_id] = (client_time_ns, line, seq)
            keep(record)
        self.seq = seq
        if evicted_during:
            self.last_evicted = evicted_during[-1][1]
        if self.on_store is not None:
            for record in stored:
                self.on_store(record[2])
        return stored
