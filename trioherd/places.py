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
from collections.abc import AsyncIterator

import httpx
import trio

from trioherd.core.places import NearbyResponse, PlacesQuery, PlacesSource
from trioherd.http_transport import LeanTransport
from trioherd.httpx_places import HttpxNearby
from trioherd.offline.cache import load_index
from trioherd.offline.index import PlaceIndex
from trioherd.offline.source import OfflineNearby
from trioherd.options import PlacesOptions


class OfflinePlaces(OfflineNearby):
    """The embedded offline source, on trio: see :class:`OfflineNearby`."""

    lock = trio.Lock

    async def read_index(self) -> PlaceIndex:
        # abandon_on_cancel: a shutdown need not wait for the load.
        return await trio.to_thread.run_sync(load_index, abandon_on_cancel=True)


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

    Made as :class:`~trioherd.httpx_places.HttpxNearby` (its Args).
    """

    semaphore = trio.Semaphore
    free: trio.Semaphore
    # No per-phase timeouts for the transport: nearby() bounds the whole
    # request by ``timeout``, so a phase bounded by the same could never
    # end first, and each bound costs the transport a cancel scope.
    phase_timeouts = False

    async def nearby(self, query: PlacesQuery) -> NearbyResponse:
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
