"""One accepted connection's conversation, with no I/O.

A :class:`Connection` owns what a connection's protocol state is: its line
buffer, whether it has identified itself as a neighbour's link, and whether
it is finished. The I/O layer feeds it what each read brought and pulls
:class:`Exchange` objects out of it, in the manner of h11::

    connection.receive(data, time.time_ns())       # b"" at EOF
    while (exchange := connection.next_exchange()) is not None:
        hand exchange.flooded to the peer links     # first hop first
        ask Places for exchange.queries, exchange.answer(slot, response)
        write exchange.output()
    if connection.finished: close

An exchange is a run of consecutive lines answered with one write. It holds
at most :data:`MAX_QUERIES` WHATSATs and about :data:`MAX_REPLY_BYTES` of
other replies, and the layer reads no more from the connection until every
exchange is written: that is the connection's backpressure. A client that
pipelines thousands of WHATSATs and never reads its replies costs the
server one exchange's replies and a socket buffer, not one reply per
request, and its requests are still answered in order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from trioherd.core.framing import DEFAULT_MAX_LINE, LineBuffer
from trioherd.core.messages import invalid
from trioherd.core.places import PlacesQuery, whatsat_reply
from trioherd.core.state import PeerJoined, ServerState

#: The most WHATSATs answered in one exchange: the bound on Places requests
#: in flight for one connection, and (at about 17 KB for 20 places) on the
#: WHATSAT replies it holds unwritten.
MAX_QUERIES = 16
#: An exchange ends once its other replies pass this many bytes.
MAX_REPLY_BYTES = 64 * 1024


@dataclass(slots=True)
class Exchange:
    """Lines received and what they are owed, in the order they came."""

    #: The lines, without their endings (for the log).
    received: list[bytes] = field(default_factory=list)
    #: The replies, in order; a WHATSAT's slot is empty until :meth:`answer`.
    replies: list[bytes] = field(default_factory=list)
    #: The WHATSATs to ask Places about, with their slots in :attr:`replies`.
    queries: list[tuple[int, PlacesQuery]] = field(default_factory=list)
    #: Neighbours owed new records because of these lines: hand them to the
    #: links before writing the replies.
    flooded: list[str] = field(default_factory=list)
    #: Set if the connection identified itself as this neighbour's link.
    joined: str | None = None
    #: Set if the connection sent a line over the limit (for the log); the
    #: last reply answers it and the connection is finished.
    too_long: int | None = None

    def answer(self, slot: int, response: dict[str, Any]) -> str | None:
        """Fill a WHATSAT's slot from a Places response.

        Returns:
            What went wrong with the Places source, for the log, or ``None``.
        """
        query = next(q for s, q in self.queries if s == slot)
        self.replies[slot] = whatsat_reply(query.at_line, response, query.bound)
        status = response.get("status")
        if status in ("OK", "ZERO_RESULTS"):
            return None
        return f"{status}: {response.get('error_message', '')}"

    def output(self) -> bytes:
        """Everything to write, in one buffer."""
        return b"".join(self.replies)


class Connection:
    """The protocol state of one accepted connection.

    Args:
        state: the server's state and rules.
        max_line: the longest line accepted, in bytes.
    """

    __slots__ = ("_buffer", "_eof", "_lines", "_received_ns", "_state", "_too_long", "peer")

    def __init__(self, state: ServerState, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._state = state
        self._buffer = LineBuffer(max_line)
        self._lines: deque[bytes] = deque()
        self._received_ns = 0
        self._eof = False
        self._too_long: bytes | None = None
        #: The neighbour this connection is the link of, or ``None`` for a client.
        self.peer: str | None = None

    @property
    def max_line(self) -> int:
        """The longest line accepted, in bytes."""
        return self._buffer.max_line

    @property
    def finished(self) -> bool:
        """Nothing more will be read: EOF or an over-long line, and all answered."""
        return (self._eof or self._too_long is not None) and not self._lines

    def receive(self, data: bytes, received_ns: int) -> None:
        """What one read brought: bytes, or ``b""`` at EOF.

        Args:
            data: the bytes read.
            received_ns: when they arrived, in POSIX nanoseconds: the time an
                IAMAT among them is stamped with.
        """
        if self._eof or self._too_long is not None:
            return
        lines, too_long = self._buffer.receive(data)
        self._lines.extend(lines)
        self._received_ns = received_ns
        if not data:
            self._eof = True
        if too_long is not None:
            self._too_long = too_long.prefix
            # Answered after the lines before it, as the last reply.
            self._lines.append(b"")

    def next_exchange(self) -> Exchange | None:
        """The next lines to answer with one write, or ``None`` if none wait."""
        lines = self._lines
        if not lines:
            return None
        state = self._state
        exchange = Exchange()
        replies = exchange.replies
        reply_bytes = 0
        while lines and len(exchange.queries) < MAX_QUERIES and reply_bytes < MAX_REPLY_BYTES:
            line = lines.popleft()
            if not lines and self._too_long is not None:
                # The placeholder for the over-long line: the last thing owed.
                replies.append(invalid(self._too_long))
                exchange.too_long = self.max_line
                break
            exchange.received.append(line)
            outcome = state.handle(line, self._received_ns, self.peer)
            if isinstance(outcome, bytes):
                replies.append(outcome)
                reply_bytes += len(outcome)
            elif isinstance(outcome, PlacesQuery):
                exchange.queries.append((len(replies), outcome))
                replies.append(b"")
            elif isinstance(outcome, PeerJoined):
                self.peer = exchange.joined = outcome.peer
        exchange.flooded = state.flooded()
        # Before any reply goes out: the durable journal writes what was stored.
        state.lines_handled()
        return exchange
