"""What a herd server holds and says whatever its event loop: state, links, limits, logs.

The trio server and the anyio and asyncio contrasts each build a
:class:`ServerBase` and add what is theirs: the listener, the connection
tasks, reads, writes and timers. Nothing here waits on an event loop;
:meth:`ServerBase._ask_one` awaits only the Places source, which each layer
gives for its own loop.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Generic

from trioherd.core.connection import Exchange
from trioherd.core.framing import DEFAULT_MAX_LINE
from trioherd.core.limits import DEFAULT_LIMITS, Admission, Limits
from trioherd.core.places import PlacesQuery, PlacesSource
from trioherd.core.state import ServerState
from trioherd.logs import LineLog
from trioherd.serving import LinkT, places_problem

#: A layer's outbound link to one neighbour, given the state, its name and address.
NewLink = Callable[[ServerState, str, tuple[str, int]], LinkT]


class ServerBase(Generic[LinkT]):
    """A herd server's state, links, limits and logs, built the same on every event loop.

    Args:
        name: the server's name.
        peers: its neighbours' addresses, ``{name: (host, port)}``.
        places: where WHATSAT gets places.
        log: the server's logger.
        lines: where every line in and out is logged.
        new_link: makes the layer's link to one neighbour.
        max_line: the longest line accepted from a connection.
        limits: bounds on what clients may cost the server.
        secret: the herd secret peer links must prove they know, if any.
    """

    def __init__(
        self,
        name: str,
        peers: Mapping[str, tuple[str, int]],
        places: PlacesSource,
        log: logging.Logger,
        lines: LineLog,
        new_link: NewLink[LinkT],
        *,
        max_line: int = DEFAULT_MAX_LINE,
        limits: Limits = DEFAULT_LIMITS,
        secret: bytes | None = None,
    ) -> None:
        self.name = name
        self.state = ServerState(name, peers, limits=limits, secret=secret)
        self.admission = Admission(limits)
        self.places = places
        self.log = log
        self.lines = lines
        self.max_line = max_line
        self.links = {peer: new_link(self.state, peer, address) for peer, address in peers.items()}
        self._connection_ids = itertools.count(1)
        self._warned_cannot_accept = -math.inf
        self._warned_refused = -math.inf

    def _connection_name(self, address: str) -> str:
        """The name a new connection from ``address`` (``host:port``) has in the log."""
        return f"conn {next(self._connection_ids)} {address}"

    def _refuse(self, address: str, reason: str) -> None:
        """Say that a connection from ``address`` was refused; once a second at most."""
        now = time.monotonic()
        if now - self._warned_refused >= 1.0:
            self._warned_refused = now
            self.log.warning(
                "refused a connection from %s: %s (%d refused so far)",
                address,
                reason,
                self.admission.refused,
            )

    def _cannot_accept(self, exc: OSError) -> None:
        # Retried every 0.1 s while it lasts: said once a second at most.
        now = time.monotonic()
        if now - self._warned_cannot_accept >= 1.0:
            self._warned_cannot_accept = now
            self.log.warning("cannot accept: %s; accepting again in a moment", exc.strerror)

    async def _ask_one(self, exchange: Exchange, slot: int, query: PlacesQuery) -> None:
        """Ask Places for one of the exchange's WHATSATs, and fill its reply slot."""
        places_problem(self.log, exchange.answer(slot, await self.places.nearby(query)))
