"""The location table: for each client, the most recent AT record.

Every server applies the same total order to records, so that whatever
order floods arrive in, the herd converges on one record per client:

1. the greater client time (integer nanoseconds) wins;
2. on equal client times, the record whose AT line is greater byte for
   byte wins (the lines differ in the receiving server's name or time
   difference, so two different records never tie).

A client's IAMAT is stricter, as docs/protocol.md asks: it must be strictly newer
in client time to change anything; an equal time changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from trioherd.core.messages import At


class LocationTable:
    """Client ID to ``(client time in ns, AT line)``.

    A record is kept as a plain tuple, not an object, because the table is
    the one structure whose size grows with the herd's users.
    """

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[bytes, tuple[int, bytes]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def clients(self) -> Iterator[bytes]:
        """Client IDs, in the order they first appeared."""
        return iter(self._records)

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
        stored = self._records.get(at.client_id)
        if stored is not None:
            stored_ns, stored_line = stored
            if at.client_time_ns < stored_ns:
                return False
            if at.client_time_ns == stored_ns and (from_client or at.line <= stored_line):
                return False
        self._records[at.client_id] = (at.client_time_ns, at.line)
        return True
