"""Places sources for WHATSAT, on asyncio (mirrors ``trioherd/places.py``).

The same contract as the trio sources: a Google-shaped Nearby Search dict
for every query, a failure turned into an ``UNKNOWN_ERROR`` response.
HTTP goes through aiohttp, the library the course and its reports use, or
(``--places-transport httpx``, :class:`HttpxPlaces`) through httpx exactly as
the trio herd's ``--places-transport httpx`` uses it: the control that tells
the HTTP library's share of a difference from the event loop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx

from trioherd.core.places import (
    NearbyEndpoint,
    NearbyResponse,
    PlacesAnswer,
    PlacesQuery,
    PlacesSource,
)
from trioherd.httpx_places import HttpxNearby
from trioherd.offline.cache import load_index
from trioherd.offline.index import PlaceIndex
from trioherd.offline.source import OfflineNearby
from trioherd.options import PlacesOptions


class OfflinePlaces(OfflineNearby):
    """The embedded offline source, on asyncio: see ``OfflineNearby``."""

    lock = asyncio.Lock

    async def read_index(self) -> PlaceIndex:
        # Unlike trio's abandon_on_cancel, a cancelled to_thread leaves the
        # thread running: harmless here, the load ends.
        return await asyncio.to_thread(load_index)


class HttpPlaces:
    """Nearby Search over HTTP with one shared :class:`aiohttp.ClientSession`.

    The session's connector holds at most ``concurrency`` connections (the
    caller sets that up); each request, its wait for a connection included,
    is bounded by ``timeout`` seconds.
    """

    def __init__(
        self, session: aiohttp.ClientSession, url: str, key: str | None, timeout: float
    ) -> None:
        self._session = session
        self._endpoint = NearbyEndpoint(url, key, timeout)
        self._timeout = timeout
        self.description = self._endpoint.description
        self.computed_here = False

    async def nearby(self, query: PlacesQuery) -> NearbyResponse:
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session.get(
                    self._endpoint.url, params=self._endpoint.params(query)
                ) as response,
            ):
                body = await response.read()
        except TimeoutError:
            return self._endpoint.timed_out()
        except aiohttp.ClientError as exc:
            return self._endpoint.failed(exc)
        # Decoded when the reply is made, in its turn (PlacesAnswer says why).
        return PlacesAnswer(response.status, body)


class HttpxPlaces(HttpxNearby):
    """Nearby Search with httpx on asyncio: the trio herd's stock-httpx path, mirrored.

    The same :class:`~trioherd.httpx_places.HttpxNearby` as
    ``trioherd.places.HttpPlaces``, with asyncio's semaphore and timeout.
    """

    semaphore = asyncio.Semaphore
    via = "httpx"

    async def nearby(self, query: PlacesQuery) -> NearbyResponse:
        try:
            async with asyncio.timeout(self.timeout), self.free:
                return await self.ask(query)
        except TimeoutError:
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
    if options.transport == "httpx":
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        tls = ssl.create_default_context()
        async with contextlib.AsyncExitStack() as stack:
            transports = [
                await stack.enter_async_context(httpx.AsyncHTTPTransport(limits=limits, verify=tls))
                for _ in range(options.concurrency)
            ]
            yield HttpxPlaces(transports, url, options.key, options.timeout)
        return
    connector = aiohttp.TCPConnector(limit=options.concurrency, limit_per_host=0)
    # aiohttp's own timeout would be per request too; the bound is HttpPlaces'.
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout()
    ) as session:
        yield HttpPlaces(session, url, options.key, options.timeout)
