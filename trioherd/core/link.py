"""Our side of an outbound peer link, with no I/O.

A :class:`LinkProtocol` decides everything about the link to one neighbour
that is not moving bytes or keeping time: the handshake line, the backoff
between attempts, what the neighbour's few replies mean, which records to
send next, and how each event is worded in the log. The I/O layer's link
task is a plain loop around it (docs/peer-protocol.md)::

    while True:
        try: connect (within CONNECT_TIMEOUT)
        except OSError as exc:
            log link.cannot_connect(exc); sleep link.backoff(); continue
        send link.connected()
        while link.handshaking (within HANDSHAKE_TIMEOUT):
            feed what the neighbour says to link.receive(data)
        then, until the link fails:
            send link.take() whenever link.owes(),
            and feed what the neighbour says to link.receive(data)
        log link.dropped(exc); sleep link.backoff()

With a herd secret, ``connected()`` sends a nonce, the neighbour's answer
must prove it knows the secret (:mod:`trioherd.core.auth`), and the first
thing :meth:`LinkProtocol.take` hands out is our own proof. Without one,
``handshaking`` is false at once and the link works as the course's herd.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from trioherd.core import auth
from trioherd.core.framing import LineBuffer
from trioherd.core.messages import PEER_PROTOCOL_VERSION, format_hello, parse_hello
from trioherd.core.resume import ASK, ASK_REFUSED, parse_resume
from trioherd.core.state import ServerState

#: Backoff between attempts: doubles from FIRST up to CAP, each sleep a
#: random 50-100% of that ("equal jitter"), so a herd restarting together
#: does not retry in lockstep. The cap bounds how long a link that comes
#: back (a healed partition, a neighbour restarted) waits before it is used
#: again: at most a second, so the herd is level again within a couple of
#: seconds. A neighbour that stays down costs one refused (or unrouted)
#: connection attempt per 0.5-1 s, and one log line per outage.
BACKOFF_FIRST = 0.05
BACKOFF_CAP = 1.0
#: A link whose sent bytes stay unacknowledged this long is dropped by the
#: OS (TCP_USER_TIMEOUT, where there is one; serving.limit_unacknowledged)
#: and reconnected with the backoff above. Without it, a link across a
#: partition between hosts keeps its connection while TCP's retransmissions
#: back off (doubling, up to two minutes apart): a 15 s cut healed only
#: 11 s after the link came back (bench/results/faults/README.md). The
#: neighbour's kernel acknowledges whatever its server is doing, so a busy
#: neighbour is not dropped for this; a reconnected link resumes where the
#: neighbour got to (RESUME), so dropping loses nothing.
UNACKNOWLEDGED_LIMIT = 2.0
#: A connection attempt that neither succeeds nor fails by then is given up.
CONNECT_TIMEOUT = 5.0
#: A neighbour that has not answered our authenticated handshake by then is
#: given up, as a connection attempt would be.
HANDSHAKE_TIMEOUT = 5.0
#: The longest line a neighbour says back that we keep whole.
_MAX_REPLY_LINE = 4096


class LinkRejected(Exception):
    """The neighbour answered our handshake with ``?``."""


class LinkClosed(Exception):
    """The neighbour closed the link."""


def reason(exc: BaseException) -> str:
    """An error as a few words for the log: the OS's words where there are some."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class LinkProtocol:
    """The outbound link from our server to the neighbour ``peer``.

    Args:
        state: our server's state: what the link owes comes from it, and
            the herd secret, if any.
        peer: the neighbour's name.
        uniform: the random source for the backoff's jitter.
        new_nonce: the source of handshake nonces.
    """

    def __init__(
        self,
        state: ServerState,
        peer: str,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
        new_nonce: auth.NonceSource = auth.new_nonce,
    ) -> None:
        self._state = state
        self.peer = peer
        self._uniform = uniform
        self._new_nonce = new_nonce
        self._name = state.name.encode()
        self._replies = LineBuffer(_MAX_REPLY_LINE)
        # Our nonce while we wait for the neighbour's proof.
        self._nonce = b""
        # Our proof, owed to the neighbour ahead of any record.
        self._proof = b""
        #: Failed attempts since the link was last up.
        self.failures = 0
        self._last_failure = ""
        #: Whether the handshake has been sent and the link not dropped since.
        self.up = False
        #: Whether the neighbour has yet to prove it knows the herd secret.
        self.handshaking = False
        # Between asking the neighbour where to resume (RESUME) and its
        # answer: nothing is owed yet, since what is owed depends on it.
        self._asking = False
        # Whether the neighbour has answered this connection's RESUME.
        self._answered = False
        #: Records taken for this link since the server started.
        self.taken = 0
        #: How many of those are on the wire (or no longer waited for): a
        #: reply held back for a first hop goes once this reaches its mark.
        self.on_wire = 0
        # The furthest mark handed out so far.
        self._furthest = 0

    def cannot_connect(self, exc: BaseException) -> tuple[str, bool]:
        """A connection attempt failed.

        Returns:
            The log message, and whether it is worth saying aloud: once per
            outage, not at every attempt, and again when the reason changes
            (a neighbour that comes up with a certificate we refuse).
        """
        self.failures += 1
        message = f"link to {self.peer}: cannot connect: {reason(exc)}"
        loud = self.failures == 1 or message != self._last_failure
        self._last_failure = message
        return message, loud

    def connected(self) -> bytes:
        """The link is connected: the bytes to send first.

        Once the handshake is done (at once without a herd secret, after
        the neighbour's proof with one) the link asks the neighbour how far
        it got (``RESUME``). If the neighbour is known to answer, the link
        waits for the answer and then owes what it lacks (core/resume.py);
        otherwise it owes the whole table at once (and, should an answer
        come, sends marks from then on). Either way a neighbour that
        restarted, or a link that was down, catches up.
        """
        self.failures = 0
        self.up = True
        self._replies = LineBuffer(_MAX_REPLY_LINE)
        self._proof = b""
        self._answered = False
        if self._state.secret is None:
            self.handshaking = False
            return format_hello(self._name) + self._ask()
        self.handshaking = True
        self._asking = False
        self._nonce = self._new_nonce()
        return format_hello(self._name, {b"nonce": self._nonce})

    def _ask(self) -> bytes:
        """Ask the neighbour where to resume; owe the whole table unless it answers."""
        self._asking = self._state.marks.answers(self.peer)
        if not self._asking:
            self._state.resync(self.peer)
        return ASK

    def connected_message(self, host: str, port: int) -> str:
        """The log message for a link that is up."""
        return f"link to {self.peer}: connected to {host}:{port}"

    def owes(self) -> bool:
        """Whether records (or our proof) wait to be sent on the link."""
        if self.handshaking:
            return False
        return bool(self._proof) or (not self._asking and self._state.owes(self.peer))

    def take(self) -> bytes:
        """The next batch of AT lines to send (``b""`` if none wait), our proof first.

        Once the batch is written, the layer calls :meth:`written` with the
        :attr:`taken` count read right after this call.
        """
        if self.handshaking:
            return b""
        batch = b""
        if not self._asking:
            owed = self._state.owed(self.peer)
            batch = self._state.take(self.peer)
            self.taken += owed - self._state.owed(self.peer)
        if self._proof:
            batch, self._proof = self._proof + batch, b""
        return batch

    def hand_over(self) -> int | None:
        """A first hop was just queued for this link: the mark its reply waits for.

        The protocol asks that a client's reply follow the first hop of its
        flood onto the wire (docs/peer-protocol.md, "Updates"). Rather than
        writing each first hop at once (one send per record per link, which
        measured 2.5x the herd's CPU), the reply waits until the link's
        sender has written everything queued before it, in one batch with
        every other first hop of the moment.

        Returns:
            The :attr:`on_wire` count the reply waits for, or ``None`` when
            it must not wait: the link is down, or still handshaking or
            waiting for the neighbour's RESUME answer (the resync then
            carries the record).
        """
        if not self.up or self.handshaking or self._asking:
            return None
        self._furthest = max(self._furthest, self.taken + self._state.owed(self.peer))
        return self._furthest

    def written(self, taken: int) -> None:
        """The batches taken up to the :attr:`taken` count ``taken`` are on the wire."""
        self.on_wire = max(self.on_wire, taken)

    def release(self) -> None:
        """Replies stop waiting for what was handed over so far.

        Called when the link backs up or drops: the records stay owed (or
        come back with the resync); only the ordering promise is given up,
        since keeping it would make clients wait on a slow neighbour. And
        called when the link owes nothing: then every record handed over is
        on the wire, or was forgotten by a capped table before it was sent.
        """
        self.on_wire = max(self.on_wire, self._furthest)

    def receive(self, data: bytes) -> list[str]:
        """What the neighbour said back: ``b""`` at EOF.

        A neighbour answers an authenticated handshake, then our ``RESUME``:
        with where to resume, or with ``? RESUME`` if it speaks the older
        protocol (then it is owed the whole table). After that it says
        nothing on a good link, and ``? ...`` to a line it refused. After
        this call, :meth:`owes` may have become true.

        Returns:
            Log messages (warnings) for the lines it refused.

        Raises:
            LinkRejected: it refused our handshake, or failed to prove it
                knows the herd secret.
            LinkClosed: it closed the link.
        """
        lines, _ = self._replies.receive(data)
        messages = []
        for line in lines:
            if line.startswith((b"? PEER", b"? PROOF")):
                raise LinkRejected(show_line(line))
            if self.handshaking:
                self._check_answer(line)
                continue
            if not self._answered:
                since = parse_resume(line)
                if since is not None or line == ASK_REFUSED:
                    self._answered = True
                    if self._asking:
                        self._asking = False
                        self._state.resync(self.peer, since)
                    elif since is not None:
                        self._state.mark_from_now(self.peer)
                    continue
            messages.append(f"link to {self.peer} < {show_line(line)}")
        if not data:
            raise LinkClosed(f"closed by {self.peer}")
        return messages

    def _check_answer(self, line: bytes) -> None:
        """The neighbour's answer to our nonce: its own, and its proof."""
        secret = self._state.secret
        assert secret is not None
        hello = parse_hello(line.split())
        peer = self.peer.encode()
        if hello is None or hello.name != peer or hello.version != PEER_PROTOCOL_VERSION:
            raise LinkRejected(f"unexpected answer to the handshake: {show_line(line[:200])}")
        their_nonce = hello.options.get(b"nonce", b"")
        claimed = hello.options.get(b"proof", b"")
        if not auth.is_nonce(their_nonce) or not auth.proof_holds(
            secret, claimed, auth.RESPONDER, self._name, peer, self._nonce, their_nonce
        ):
            raise LinkRejected(f"{self.peer} failed to prove it knows the herd secret")
        # Our proof, then the question where to resume: RESUME means
        # nothing to a neighbour before it has checked the proof.
        self._proof = b"PROOF %s\n" % auth.proof(
            secret, auth.INITIATOR, self._name, peer, self._nonce, their_nonce
        )
        self._proof += self._ask()
        self.handshaking = False

    def dropped(self, exc: BaseException) -> tuple[str, bool]:
        """The link failed.

        Returns:
            The log message, and whether it is an error (a rejected
            handshake) rather than a warning (a lost connection).
        """
        self.up = False
        self.handshaking = False
        if isinstance(exc, LinkRejected):
            return f"link to {self.peer}: rejected: {exc}", True
        if isinstance(exc, LinkClosed):
            return f"link to {self.peer}: {exc}", False
        return f"link to {self.peer}: dropped: {reason(exc)}", False

    def backoff(self) -> float:
        """How long to wait before the next attempt, in seconds."""
        failures = max(self.failures, 1)
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(failures - 1, 16))
        return float(delay * self._uniform(0.5, 1.0))


def show_line(line: bytes) -> str:
    """A line as log text: undecodable bytes escaped, not lost."""
    return line.decode("utf-8", "backslashreplace")
