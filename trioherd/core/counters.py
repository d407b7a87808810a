"""What a server has done, counted where it is decided: plain ints, no I/O.

The core and the I/O layers increment these as they act; nothing else runs
on the hot path. An exporter (``trioherd.metrics``) reads them when it is
asked, so a server nobody watches pays for a few integer additions a line.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from trioherd.core.messages import NS_PER_SECOND, At, Record

#: Upper bounds, in seconds, of the flood lag histogram's buckets: a hop on
#: loopback takes well under a millisecond, a link that was down seconds.
FLOOD_LAG_BOUNDS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0)


class Histogram:
    """Counts of observations per bucket (not cumulative), and their sum.

    Args:
        bounds: the buckets' inclusive upper bounds, ascending; one more
            bucket holds everything above the last.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_many(self, values: list[float]) -> None:
        """:meth:`observe` each value in turn (the sum adds them in the same order)."""
        counts = self.counts
        bounds = self.bounds
        total = self.sum
        for value in values:
            counts[bisect.bisect_left(bounds, value)] += 1
            total += value
        self.sum = total

    @property
    def count(self) -> int:
        """How many observations there were."""
        return sum(self.counts)


def origin_ns(at: At) -> int:
    """When the server that took the IAMAT received it: client time plus skew."""
    return at.client_time_ns + skew_ns(at.skew)


def skew_ns(skew: bytes) -> int:
    """An AT line's time difference as signed nanoseconds."""
    # The parsers have checked the skew's form: a sign, digits, a point and
    # exactly nine decimals; without the point it is signed nanoseconds.
    return int(skew.replace(b".", b""))


class Counters:
    """One server's counters; see ``trioherd.metrics`` for what each means."""

    __slots__ = (
        "connections_closed",
        "connections_opened",
        "flood_lag",
        "lines_at",
        "lines_iamat",
        "lines_invalid",
        "lines_other",
        "lines_peer",
        "lines_whatsat",
        "link_connects",
        "replies_at",
        "replies_whatsat",
        "stored_from_clients",
        "stored_from_peers",
    )

    def __init__(self) -> None:
        # Connections: counted by the I/O layer, which accepts and closes them.
        self.connections_opened = 0
        self.connections_closed = 0
        # Lines received, by their first word; AT lines come on peer links.
        self.lines_iamat = 0
        self.lines_whatsat = 0
        self.lines_peer = 0
        self.lines_at = 0
        self.lines_other = 0
        #: Lines of any kind answered with ``? ...``.
        self.lines_invalid = 0
        self.replies_at = 0
        #: WHATSATs owed an answer (the Places source fills them in).
        self.replies_whatsat = 0
        self.stored_from_clients = 0
        self.stored_from_peers = 0
        #: How long an update took to reach us from the server that took it.
        self.flood_lag = Histogram(FLOOD_LAG_BOUNDS_S)
        #: Connections made by our link to each neighbour (resyncs).
        self.link_connects: dict[str, int] = {}

    def observe_flood(self, at: At, received_ns: int) -> None:
        """Count an update from a peer that changed our table."""
        self.stored_from_peers += 1
        self.flood_lag.observe((received_ns - origin_ns(at)) / NS_PER_SECOND)

    def observe_floods(self, stored: list[Record], received_ns: int) -> None:
        """:meth:`observe_flood` for each of a run of records from a peer."""
        self.stored_from_peers += len(stored)
        self.flood_lag.observe_many(
            [
                # skew_ns, inlined: a call per record is a tenth of this.
                (received_ns - client_time_ns - int(skew.replace(b".", b""))) / NS_PER_SECOND
                for _, client_time_ns, _, skew in stored
            ]
        )
