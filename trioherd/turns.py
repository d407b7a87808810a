"""Turns at the CPU: work that costs a millisecond is done one piece per pass.

trio runs every task that is ready in one pass of its run loop before it
looks at the sockets again. Answering a WHATSAT costs about a millisecond of
CPU (the offline search, or decoding the HTTP source's JSON, which is done in
the turn too: :class:`~trioherd.core.places.PlacesAnswer`; then the reply's
JSON), and an exchange holds up to
16 of them (:data:`trioherd.core.connection.MAX_QUERIES`): fifty connections
pipelining WHATSATs put some 800 answers in one pass, and a new client, which
needs a few passes to be accepted, read and answered, waited 3-4.6 s for an
IAMAT's reply (bench/results/hardening/fairness.md).

A turn is a first-come-first-served semaphore of one, held across a
schedule point (trio's ``Semaphore.acquire`` yields even when the
semaphore is free, and the task holds it while it yields). So one piece of
heavy work runs per pass, and everything light (accepting, IAMATs, floods,
the next pass's reads) runs beside it at the pace of an idle server. A task
that needs several turns queues again after each one: connections that
want many take them in rotation. One turn per run (a
:class:`trio.lowlevel.RunVar`): every server of a process shares one CPU.
``bench/asyncio_herd/turns.py`` is the asyncio mirror.
"""

from __future__ import annotations

from types import TracebackType

import trio

_TURN: trio.lowlevel.RunVar[trio.Semaphore] = trio.lowlevel.RunVar("trioherd CPU turn")


class _Turn:
    __slots__ = ("_semaphore",)

    def __init__(self, semaphore: trio.Semaphore) -> None:
        self._semaphore = semaphore

    async def __aenter__(self) -> None:
        # A schedule point even when free: the work runs in the next pass.
        await self._semaphore.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Handed straight to the first waiter, which runs in the next pass.
        self._semaphore.release()


def cpu_turn() -> _Turn:
    """``async with cpu_turn():`` around one piece of heavy work (one WHATSAT's answer)."""
    try:
        semaphore = _TURN.get()
    except LookupError:
        semaphore = trio.Semaphore(1)
        _TURN.set(semaphore)
    return _Turn(semaphore)
