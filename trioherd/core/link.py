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
        send link.connected(); then, until the link fails:
            send link.take() whenever link.owes(),
            and feed what the neighbour says to link.receive(data)
        log link.dropped(exc); sleep link.backoff()
"""

from __future__ import annotations

import random
from collections.abc import Callable

from trioherd.core.framing import LineBuffer
from trioherd.core.messages import format_hello
from trioherd.core.resume import ASK, ASK_REFUSED, parse_resume
from trioherd.core.state import ServerState

#: Backoff between attempts: doubles from FIRST up to CAP, each sleep a
#: random 50-100% of that ("equal jitter"), so a herd restarting together
#: does not retry in lockstep.
BACKOFF_FIRST = 0.05
BACKOFF_CAP = 2.0
#: A connection attempt that neither succeeds nor fails by then is given up.
CONNECT_TIMEOUT = 5.0
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
        state: our server's state: what the link owes comes from it.
        peer: the neighbour's name.
        uniform: the random source for the backoff's jitter.
    """

    def __init__(
        self,
        state: ServerState,
        peer: str,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._state = state
        self.peer = peer
        self._uniform = uniform
        self._hello = format_hello(state.name.encode())
        self._replies = LineBuffer(_MAX_REPLY_LINE)
        #: Failed attempts since the link was last up.
        self.failures = 0
        #: Whether the handshake has been sent and the link not dropped since.
        self.up = False
        # Between the handshake and the neighbour's answer to ASK: nothing
        # is owed yet, since what is owed depends on that answer.
        self._asking = False
        # Whether the neighbour has answered this connection's RESUME.
        self._answered = False

    def cannot_connect(self, exc: BaseException) -> tuple[str, bool]:
        """A connection attempt failed.

        Returns:
            The log message, and whether it is worth saying aloud: once per
            outage, not at every attempt.
        """
        self.failures += 1
        return f"link to {self.peer}: cannot connect: {reason(exc)}", self.failures == 1

    def connected(self) -> bytes:
        """The link is connected: the bytes to send first.

        The handshake asks the neighbour how far it got (``RESUME``). If the
        neighbour is known to answer, the link waits for the answer and then
        owes what it lacks (core/resume.py); otherwise it owes the whole
        table at once (and, should an answer come, sends marks from then
        on). Either way a neighbour that restarted, or a link that was down,
        catches up.
        """
        self.failures = 0
        self.up = True
        self._replies = LineBuffer(_MAX_REPLY_LINE)
        self._asking = self._state.marks.answers(self.peer)
        self._answered = False
        if not self._asking:
            self._state.resync(self.peer)
        return self._hello + ASK

    def connected_message(self, host: str, port: int) -> str:
        """The log message for a link that is up."""
        return f"link to {self.peer}: connected to {host}:{port}"

    def owes(self) -> bool:
        """Whether records wait to be sent on the link."""
        return not self._asking and self._state.owes(self.peer)

    def take(self) -> bytes:
        """The next batch of AT lines to send (``b""`` if none wait)."""
        if self._asking:
            return b""
        return self._state.take(self.peer)

    def sent_lines(self, batch: bytes) -> list[bytes]:
        """The lines of a batch that was sent, for the log."""
        return batch.splitlines()

    def receive(self, data: bytes) -> list[str]:
        """What the neighbour said back: ``b""`` at EOF.

        A neighbour answers our ``RESUME`` first: with where to resume, or
        with ``? RESUME`` if it speaks the older protocol (then it is owed
        the whole table). After that it says nothing on a good link, and
        ``? ...`` to a line it refused. After this call, :meth:`owes` may
        have become true.

        Returns:
            Log messages (warnings) for the lines it refused.

        Raises:
            LinkRejected: it refused our handshake.
            LinkClosed: it closed the link.
        """
        lines, _ = self._replies.receive(data)
        messages = []
        for line in lines:
            if line.startswith(b"? PEER"):
                raise LinkRejected(show_line(line))
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

    def dropped(self, exc: BaseException) -> tuple[str, bool]:
        """The link failed.

        Returns:
            The log message, and whether it is an error (a rejected
            handshake) rather than a warning (a lost connection).
        """
        self.up = False
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
