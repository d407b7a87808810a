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

import anyio
import httpx

from trioherd.core.places import NearbyResponse, PlacesQuery, PlacesSource
from trioherd.httpx_places import HttpxNearby
from trioherd.offline.cache import load_index
from trioherd.offline.index import PlaceIndex
from trioherd.offline.source import OfflineNearby
from trioherd.options import PlacesOptions


class OfflinePlaces(OfflineNearby):
    """The embedded offline source, on anyio: see ``OfflineNearby``."""

    lock = anyio.Lock

    async def read_index(self) -> PlaceIndex:
        # abandon_on_cancel: a shutdown need not wait for the load.
        return await anyio.to_thread.run_sync(load_index, abandon_on_cancel=True)


class HttpPlaces(HttpxNearby):
    """Nearby Search over HTTP with httpx, lending one-connection transports.

    Made as :class:`~trioherd.httpx_places.HttpxNearby`; each request, its
    wait for a transport included, is bounded by ``timeout``.
    """

    semaphore = anyio.Semaphore

    async def nearby(self, query: PlacesQuery) -> NearbyResponse:
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
