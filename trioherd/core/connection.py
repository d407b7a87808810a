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

The connection also decides how long the layer may wait for its next read
(:meth:`Connection.read_deadline`: the idle timeout, or the deadline for a
line already started), and, with a herd secret, runs the responder's side of
the peer handshake (:mod:`trioherd.core.auth`): a ``PEER`` line is answered
with a challenge, and the connection becomes the neighbour's link only once
a ``PROOF`` line shows it knows the secret. A wrong proof ends the
connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice

from trioherd.core import auth
from trioherd.core.framing import DEFAULT_MAX_LINE, LineBuffer
from trioherd.core.messages import format_hello, invalid
from trioherd.core.places import NearbyResponse, PlacesQuery, decoded, whatsat_reply
from trioherd.core.state import PeerJoined, ServerState

#: What a client is told when Places failed; the detail (which may name
#: internal hosts and ports) goes to the server's log only.
PLACES_FAILED = "The places service could not answer this request; try again later."

#: The most WHATSATs answered in one exchange: the bound on Places requests
#: in flight for one connection, and (at about 17 KB for 20 places) on the
#: WHATSAT replies it holds unwritten.
MAX_QUERIES = 16
#: An exchange ends once its other replies pass this many bytes.
MAX_REPLY_BYTES = 64 * 1024
#: A read of more bytes than this is heavy work for :meth:`Connection.receive`
#: (64 KiB of short lines takes 2-10 ms to split): the layers feed it in a
#: turn at the CPU (``trioherd/turns.py``), so that fifty connections' full
#: reads are not all split in one pass of the event loop while a new client
#: waits. A client's usual read, a line or a few, is far below it.
HEAVY_READ = 4096


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
    #: Whether :attr:`flooded` holds a first hop (the lines came from a
    #: client), which goes on the wire before the reply; the later hops of a
    #: flood (lines from a neighbour) have no reply to beat, and wait for
    #: the link's sender, which sends many at once.
    first_hop: bool = False
    #: Set if the connection identified itself as this neighbour's link.
    joined: str | None = None
    #: Set if the connection sent a line over the limit (for the log); the
    #: last reply answers it and the connection is finished.
    too_long: int | None = None
    #: Set if a peer handshake was refused: why, for the log.
    refused: str | None = None
    #: Called before the replies are made: the durable journal writes what
    #: is stored but not yet written (ServerState.write_stored), once for
    #: every reply ready in the same pass of the loop.
    before_output: Callable[[], None] | None = None

    def answer(self, slot: int, answer: NearbyResponse) -> str | None:
        """Fill a WHATSAT's slot from a Places response, decoding it if need be.

        The layers call this in the reply's turn at the CPU, so an HTTP
        answer is decoded there too (:class:`~trioherd.core.places.PlacesAnswer`).

        A failed response's ``error_message`` is replaced by
        :data:`PLACES_FAILED`: the client learns that Places failed, not
        where Places lives.

        Returns:
            What went wrong with the Places source, for the log, or ``None``.
        """
        query = next(q for s, q in self.queries if s == slot)
        response = decoded(answer)
        status = response.get("status")
        problem = None
        if status not in ("OK", "ZERO_RESULTS"):
            problem = f"{status}: {response.get('error_message', '')}"
            response = {**response, "error_message": PLACES_FAILED}
        self.replies[slot] = whatsat_reply(query.at_line, response, query.bound)
        return problem

    def output(self) -> bytes:
        """Everything to write, in one buffer; what it acknowledges is journaled first."""
        if self.before_output is not None:
            self.before_output()
        return b"".join(self.replies)


class Connection:
    """The protocol state of one accepted connection.

    Args:
        state: the server's state and rules.
        max_line: the longest line accepted, in bytes.
    """

    __slots__ = (
        "_buffer",
        "_candidate",
        "_eof",
        "_line_since_ns",
        "_lines",
        "_new_nonce",
        "_received_ns",
        "_refused",
        "_state",
        "_too_long",
        "peer",
    )

    def __init__(
        self,
        state: ServerState,
        max_line: int = DEFAULT_MAX_LINE,
        *,
        opened_ns: int = 0,
        new_nonce: auth.NonceSource = auth.new_nonce,
    ) -> None:
        self._state = state
        self._buffer = LineBuffer(max_line)
        self._lines: deque[bytes] = deque()
        # The last read's time: the idle timeout runs from it.
        self._received_ns = opened_ns
        # When the line now buffered began, if one is.
        self._line_since_ns: int | None = None
        self._eof = False
        self._too_long: bytes | None = None
        # A neighbour challenged and not yet proven: (peer, its name as
        # sent, its nonce, ours).
        self._candidate: tuple[str, bytes, bytes, bytes] | None = None
        self._refused = False
        self._new_nonce = new_nonce
        #: The neighbour this connection is the link of, or ``None`` for a client.
        self.peer: str | None = None

    @property
    def max_line(self) -> int:
        """The longest line accepted, in bytes."""
        return self._buffer.max_line

    @property
    def finished(self) -> bool:
        """Nothing more will be read: EOF, an over-long line or a failed proof; all answered."""
        return (self._eof or self._too_long is not None or self._refused) and not self._lines

    def read_deadline(self) -> tuple[int, str, float] | None:
        """When the layer stops waiting for reads, what for, and that timeout in seconds.

        The deadline is in POSIX nanoseconds: the start of a line already
        begun plus the line timeout, or else the last read plus the idle
        timeout. ``None`` for a neighbour's link, which is quiet whenever
        the herd is, or when the timeout is off. It moves only when a line
        starts or completes (a read that carries on an unfinished line
        leaves it be), so a layer need reset its timer only when the value
        differs from the last.
        """
        if self.peer is not None:
            return None
        limits = self._state.limits
        if self._line_since_ns is not None:
            timeout, since, what = limits.line_timeout, self._line_since_ns, "line unfinished"
        else:
            timeout, since, what = limits.idle_timeout, self._received_ns, "idle"
        if not 0 < timeout < float("inf"):
            return None
        return since + int(timeout * 1e9), what, timeout

    def timed_out(self, answering: bool, now_ns: int) -> str | None:
        """A layer's read timer fired: why the connection closes, or ``None`` to read on.

        A timer kept lazily (:meth:`deadline_to_arm`) may fire before the
        core's deadline, which has moved on since: then the layer arms a
        new one and answers what the read brought. It is a real timeout
        when the deadline has passed, or when the timer cut an answer
        short, which leaves the connection unusable.

        Args:
            answering: whether the timer cut an answer short.
            now_ns: the time now, in POSIX nanoseconds.
        """
        deadline = self.read_deadline()
        if deadline is None:
            return None
        at_ns, what, timeout = deadline
        if answering or at_ns <= now_ns:
            return f"{what} for {timeout:g} s"
        return None

    def deadline_to_arm(self, armed_ns: int | None, now_ns: int) -> int | None:
        """The read deadline a layer's timer should hold, given the one it holds.

        For a layer that keeps its timer lazily: moving a timer costs more
        than this check, and the idle deadline moves at every line. The
        timer may stay earlier than :meth:`read_deadline` (it then fires
        early, and the layer arms a new one and reads on), but never later,
        and never under half a timeout away: so an answer begun after a read
        always has half a timeout (150 s by default) before the timer could
        cut it.

        Args:
            armed_ns: the deadline the layer's timer holds (POSIX
                nanoseconds), or ``None`` if none.
            now_ns: the time now, in POSIX nanoseconds.

        Returns:
            ``armed_ns`` itself while the timer may stay as it is; else the
            deadline to move it to, ``None`` for none.
        """
        deadline = self.read_deadline()
        if deadline is None:
            return None
        at_ns, _, timeout = deadline
        if armed_ns is not None and at_ns >= armed_ns and armed_ns - now_ns >= timeout * 5e8:
            return armed_ns
        return at_ns

    def read_timeout(self, now_ns: int) -> tuple[float, str] | None:
        """How long the layer may wait for the next read from ``now_ns``, and what it waits for.

        :meth:`read_deadline` as the time left and the reason to log. Past
        it, the layer closes the connection and logs the reason.
        """
        deadline = self.read_deadline()
        if deadline is None:
            return None
        at_ns, what, timeout = deadline
        return max((at_ns - now_ns) / 1e9, 0.0), f"{what} for {timeout:g} s"

    def receive(self, data: bytes, received_ns: int) -> None:
        """What one read brought: bytes, or ``b""`` at EOF.

        Args:
            data: the bytes read.
            received_ns: when they arrived, in POSIX nanoseconds: the time an
                IAMAT among them is stamped with.
        """
        if self._eof or self._too_long is not None or self._refused:
            return
        buffer = self._buffer
        lines, too_long = buffer.receive(data)
        self._lines.extend(lines)
        self._received_ns = received_ns
        if not buffer.pending:
            self._line_since_ns = None
        elif lines or self._line_since_ns is None:
            # A new line began in this read.
            self._line_since_ns = received_ns
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
        if self.peer is not None and self._candidate is None and len(lines) > 1:
            self._peer_run(exchange)
        while lines and len(exchange.queries) < MAX_QUERIES and reply_bytes < MAX_REPLY_BYTES:
            line = lines.popleft()
            if not lines and self._too_long is not None:
                # The placeholder for the over-long line: the last thing owed.
                replies.append(invalid(self._too_long))
                exchange.too_long = self.max_line
                break
            exchange.received.append(line)
            if self._candidate is not None:
                replies.append(self._check_proof(line, exchange))
                if self._refused:
                    lines.clear()
                    break
                continue
            outcome = state.handle(line, self._received_ns, self.peer)
            if isinstance(outcome, bytes):
                replies.append(outcome)
                reply_bytes += len(outcome)
            elif isinstance(outcome, PlacesQuery):
                exchange.queries.append((len(replies), outcome))
                replies.append(b"")
            elif isinstance(outcome, PeerJoined):
                if state.secret is None:
                    self.peer = exchange.joined = outcome.peer
                else:
                    replies.append(self._challenge(line, outcome, exchange))
        exchange.flooded = state.flooded()
        exchange.first_hop = self.peer is None
        if self.peer is None:
            # A client's records are journaled before its reply is made, or
            # before a link takes them, whichever comes first: so the
            # replies of one pass of the loop share one write (a group
            # commit), and nothing leaves the process before it is written.
            exchange.before_output = state.write_stored
        else:
            # A neighbour's read is written at once: one write per read of
            # up to 64 KiB already, and it gets no reply to wait for.
            state.write_stored()
        return exchange

    def _peer_run(self, exchange: Exchange) -> None:
        """Hand the state a neighbour's lines as one run (a resync's read).

        What the state takes at once (ServerState.handle_peer_run) needs no
        reply; the lines it leaves, and an over-long line's placeholder,
        are taken one by one as any others.
        """
        assert self.peer is not None
        lines = self._lines
        run = list(lines)
        if self._too_long is not None:
            run.pop()
        handled = self._state.handle_peer_run(run, self._received_ns, self.peer)
        if not handled:
            return
        rest = list(islice(lines, handled, None))
        lines.clear()
        lines.extend(rest)
        exchange.received = run if handled == len(run) else run[:handled]

    def _challenge(self, line: bytes, hello: PeerJoined, exchange: Exchange) -> bytes:
        """Answer a neighbour's ``PEER`` line when a secret is configured."""
        secret = self._state.secret
        assert secret is not None
        their_nonce = hello.options.get(b"nonce", b"")
        if not auth.is_nonce(their_nonce):
            exchange.refused = f"{hello.peer} sent no nonce: it does not know there is a secret"
            return invalid(line)
        our_name = self._state.name.encode()
        our_nonce = self._new_nonce()
        self._candidate = (hello.peer, hello.name, their_nonce, our_nonce)
        mac = auth.proof(secret, auth.RESPONDER, hello.name, our_name, their_nonce, our_nonce)
        return format_hello(our_name, {b"nonce": our_nonce, b"proof": mac})

    def _check_proof(self, line: bytes, exchange: Exchange) -> bytes:
        """The line after our challenge: the neighbour's ``PROOF``, or the end."""
        assert self._candidate is not None
        secret = self._state.secret
        assert secret is not None
        peer, name, their_nonce, our_nonce = self._candidate
        self._candidate = None
        fields = line.split()
        our_name = self._state.name.encode()
        if (
            len(fields) == 2
            and fields[0] == b"PROOF"
            and auth.proof_holds(
                secret, fields[1], auth.INITIATOR, name, our_name, their_nonce, our_nonce
            )
        ):
            self.peer = exchange.joined = peer
            return b""
        exchange.refused = f"{peer} failed to prove it knows the herd secret"
        self._refused = True
        return invalid(line)
