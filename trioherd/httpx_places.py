"""Nearby Search through lent one-connection httpx transports, on any event loop.

httpx runs on trio, asyncio and anyio alike, so the trio herd, the anyio
herd and the asyncio herd's ``--places-transport httpx`` share this class;
each subclass adds only its event loop's semaphore and timeout around
:meth:`HttpxNearby.ask`. Why transports are lent rather than pooled: see
:class:`trioherd.places.HttpPlaces`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from trioherd.core.places import NearbyEndpoint, PlacesAnswer, PlacesQuery, request_headers

# httpx logs each request's URL at INFO, and a Google URL holds the API key.
# Our servers log through loggers of their own, but someone else's logging
# setup (basicConfig in a script that imports us) must not leak it either.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

#: What an httpx client would send besides Host.
_HEADERS = request_headers(f"httpx/{httpx.__version__}")
#: A GET's body.
_NO_BODY = httpx.ByteStream(b"")


def target_urls(target: Callable[[PlacesQuery], str]) -> Callable[[PlacesQuery], httpx.URL]:
    """A maker of each query's :class:`httpx.URL`, from ``target``'s text.

    Every public way to make an ``httpx.URL`` parses and checks the whole
    text, 17-19 us a request, 3% of a WHATSAT's CPU on trio
    (bench/results/http/s23/micro), though only the query differs from the
    endpoint's, and :meth:`~trioherd.core.places.NearbyEndpoint.target`
    makes it already encoded. So the URL is the endpoint's parse with the
    query put in its place: httpx keeps a parsed URL as a named tuple of
    its parts (``URL._uri_reference``, httpx 0.24 and later), which the
    transport reads. That is httpx's inside, not its API: the shortcut is
    taken only if, here, it gives the same URL as parsing the text does,
    and the public parse is used otherwise.
    """
    query = PlacesQuery(b"", -12.5e-3, 1e16, 10.0, 1)  # an exponent, a sign, a fraction
    text = target(query)
    base = text.partition("?")[0]

    def parsed(query: PlacesQuery) -> httpx.URL:
        return httpx.URL(target(query))

    try:
        reference = httpx.URL(base)._uri_reference
        make_url = httpx.URL.__new__

        def made(query: PlacesQuery) -> httpx.URL:
            url = make_url(httpx.URL)
            url._uri_reference = reference._replace(query=target(query).partition("?")[2])
            return url

        sample, expected = made(query), httpx.URL(text)
        same = (
            str(sample) == str(expected)
            and sample.raw_path == expected.raw_path
            and (sample.raw_scheme, sample.raw_host, sample.port)
            == (expected.raw_scheme, expected.raw_host, expected.port)
        )
    except Exception:  # httpx's inside has changed: parse, as a client would
        return parsed
    return made if same else parsed


class HttpxNearby:
    """The loop-free half of an httpx Places source: requests, and lending transports.

    A subclass names its event loop's semaphore class (one slot per
    transport, held around :meth:`ask`) and bounds each request with its
    event loop's timeout.

    Args:
        transports: one-connection transports; the caller owns their lifetime.
        url: the Nearby Search endpoint.
        key: the API key sent as ``key=``; it appears nowhere else.
        timeout: the bound on one request, in seconds.
    """

    #: The event loop's semaphore, given the number of slots.
    semaphore: Callable[[int], AbstractAsyncContextManager[Any]]
    #: The HTTP library, named in the description where a layer has two.
    via = ""
    #: Whether the transport bounds each phase (connect, read...) by the timeout too.
    phase_timeouts = True

    def __init__(
        self,
        transports: Sequence[httpx.AsyncBaseTransport],
        url: str,
        key: str | None,
        timeout: float,
    ) -> None:
        self._idle = list(transports)
        # Transports that can give a response's status and body without an
        # httpx.Response (ours: LeanTransport.status_and_body) are asked
        # for just that; any other, as httpx's own client asks it.
        self._direct = all(hasattr(each, "status_and_body") for each in self._idle)
        self.free = self.semaphore(len(self._idle))
        # Every request is the endpoint plus our parameters; parsed once,
        # here, so that a bad URL is a start-up error, not a reply's.
        parsed = httpx.URL(url)
        self.endpoint = NearbyEndpoint(str(parsed), key, timeout, self.via)
        self.description = self.endpoint.description
        self.computed_here = False
        self.timeout = timeout
        # The headers of every request, Host included, as httpx would send
        # them. Given these and an empty body as a stream, httpx.Request
        # skips working out default headers and rebuilding its Headers on
        # every request (30 of its ~90 us); as httpx.Headers, which a
        # Request copies as they are rather than normalising each pair again.
        self._headers = httpx.Headers([(b"Host", parsed.netloc), *_HEADERS])
        self._url = target_urls(self.endpoint.target)
        # httpx's per-phase timeouts, as a client would set them, unless the
        # subclass says its overall bound is enough.
        phases = httpx.Timeout(timeout if self.phase_timeouts else None)
        self._extensions = {"timeout": phases.as_dict()}

    async def ask(self, query: PlacesQuery) -> PlacesAnswer | dict[str, Any]:
        """Send ``query``'s request on an idle transport and read the answer.

        The answer is returned undecoded (:class:`~trioherd.core.places.PlacesAnswer`);
        a failure, as its Google-shaped response.

        The caller holds a slot of :attr:`free`, so there is an idle
        transport; the most recently returned one is taken, so that warm
        connections are reused.
        """
        request = httpx.Request(
            "GET",
            self._url(query),
            headers=self._headers,
            stream=_NO_BODY,
            extensions=self._extensions,
        )
        transport = self._idle.pop()
        try:
            if self._direct:
                status, body = await transport.status_and_body(request)  # type: ignore[attr-defined]
            else:
                response = await transport.handle_async_request(request)
                try:
                    body = await response.aread()
                finally:
                    await response.aclose()
                status = response.status_code
        except httpx.HTTPError as exc:
            return self.endpoint.failed(exc)
        finally:
            self._idle.append(transport)
        return PlacesAnswer(status, body)
