"""Turns at the CPU on asyncio (mirrors ``trioherd/turns.py``, which says why).

asyncio's loop also runs every callback that is ready in one pass. Its
``Semaphore.acquire`` does not yield when the semaphore is free, so here the
turn yields itself, once it holds the semaphore: the tasks that come next in
the same pass find it taken and queue. One turn per event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType

_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


class _Turn:
    __slots__ = ("_semaphore",)

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()
        try:
            # Held across a pass of the loop, as trio's acquire does.
            await asyncio.sleep(0)
        except BaseException:
            self._semaphore.release()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._semaphore.release()


def cpu_turn() -> _Turn:
    """``async with cpu_turn():`` around one piece of heavy work (one WHATSAT's answer)."""
    loop = asyncio.get_running_loop()
    semaphore = _TURNS.get(loop)
    if semaphore is None:
        semaphore = _TURNS[loop] = asyncio.Semaphore(1)
    return _Turn(semaphore)
