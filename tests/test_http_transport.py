"""LeanTransport: our httpx transport, against our Places server and misbehaving ones.

The misbehaving servers are raw sockets on loopback, scripted per
connection: each test says what the server does with the request bytes it
reads, down to dropping the connection half-way through a body.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from hypothesis import given
from hypothesis import strategies as st

from trioherd.core.http1 import ResponseError, ResponseReader, request_head
from trioherd.core.places import NearbyEndpoint, PlacesAnswer, PlacesQuery, decoded
from trioherd.http_transport import LeanTransport
from trioherd.httpx_places import target_urls
from trioherd.places import HttpPlaces

from support import WAIT, free_ports, places_server

KEY = "AIzaSy-not-a-real-key-0123456789"
PATH = "/maps/api/place/nearbysearch/json"
OK_JSON = b'{"html_attributions": [], "results": [], "status": "ZERO_RESULTS"}'
QUERY = PlacesQuery(b"AT Solo +0.1 kiwi +34.1-118.4 5", 34.068930, -118.445127, 10000.0, 5)

Handler = Callable[[trio.SocketStream, int], Awaitable[None]]


async def read_request(stream: trio.SocketStream) -> bytes:
    """The request head (GETs carry no body), or ``b""`` if the client left."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return b""
        data += chunk
    return data


def answer(body: bytes, status: bytes = b"200 OK", *headers: bytes) -> bytes:
    lines = [b"HTTP/1.1 " + status, b"Content-Length: %d" % len(body), *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A scripted server on loopback; its base URL and the requests it read.

    ``handler(stream, n)`` runs for the n-th connection (from 0).
    """
    requests: list[bytes] = []
    accepted = 0

    async def serve(stream: trio.SocketStream) -> None:
        nonlocal accepted
        number, accepted = accepted, accepted + 1
        async with stream:
            with contextlib.suppress(trio.BrokenResourceError):
                await handler(RecordingStream(stream, requests), number)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}", requests
        nursery.cancel_scope.cancel()


class RecordingStream:
    """A server-side stream that notes each request head it reads."""

    def __init__(self, stream: trio.SocketStream, requests: list[bytes]) -> None:
        self.stream = stream
        self.requests = requests

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def request(self) -> bytes:
        head = await read_request(self.stream)  # type: ignore[arg-type]
        if head:
            self.requests.append(head)
        return head


async def get(
    transport: LeanTransport, url: str, http_timeout: float = WAIT
) -> tuple[httpx.Response, bytes]:
    request = httpx.Request(
        "GET", url, extensions={"timeout": httpx.Timeout(http_timeout).as_dict()}
    )
    with trio.fail_after(WAIT):
        response = await transport.handle_async_request(request)
        return response, await response.aread()


async def places_reply(handler: Handler, http_timeout: float = 0.5) -> dict[str, object]:
    """What HttpPlaces on a LeanTransport makes of ``handler``'s answers."""
    async with raw_server(handler) as (base, _), LeanTransport() as transport:
        places = HttpPlaces([transport], base + PATH, KEY, http_timeout)
        with trio.fail_after(WAIT):
            return decoded(await places.nearby(QUERY))


# Against our own Places server.


async def test_requests_reuse_one_kept_alive_connection() -> None:
    async with places_server() as (server, url), LeanTransport() as transport:
        query = "?location=34.06893,-118.445127&radius=10000"
        for _ in range(3):
            response, body = await get(transport, url + query)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/json")
            assert json.loads(body)["results"][0]["name"] == "Santa Monica"
        missing, _ = await get(transport, url.replace("nearby", "text"))
        assert missing.status_code == 404
    assert server.requests == 4
    assert server.connections == 1


async def test_places_over_the_lean_transport_against_our_server() -> None:
    async with places_server() as (server, url), LeanTransport() as transport:
        places = HttpPlaces([transport], url, None, WAIT)
        answer = await places.nearby(QUERY)
    # Handed over undecoded: the reply's turn at the CPU decodes it.
    assert isinstance(answer, PlacesAnswer)
    assert answer.status_code == 200
    assert decoded(answer)["status"] == "OK"
    assert server.requests == 1


# Bodies: Content-Length, chunked, gzip, to EOF; interim responses.


@pytest.mark.parametrize(
    "reply",
    [
        answer(OK_JSON),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(
            b"%x\r\n%s\r\n" % (len(OK_JSON[i : i + 7]), OK_JSON[i : i + 7])
            for i in range(0, len(OK_JSON), 7)
        )
        + b"0\r\n\r\n",
        answer(gzip.compress(OK_JSON), b"200 OK", b"Content-Encoding: gzip"),
        b"HTTP/1.1 100 Continue\r\n\r\n" + answer(OK_JSON),
    ],
    ids=["content-length", "chunked", "gzip", "interim-100"],
)
async def test_bodies_in_every_framing(reply: bytes) -> None:
    async def handler(stream: RecordingStream, number: int) -> None:
        while await stream.request():
            # Byte by byte for the first request: the parser must not care.
            if number == 0 and len(stream.requests) == 1:
                for i in range(len(reply)):
                    await stream.send_all(reply[i : i + 1])
            else:
                await stream.send_all(reply)

    async with raw_server(handler) as (base, requests), LeanTransport() as transport:
        for _ in range(2):
            _, body = await get(transport, base + PATH + "?key=" + KEY)
            assert body == OK_JSON
    assert len(requests) == 2
    assert requests[0].startswith(b"GET " + PATH.encode() + b"?key=" + KEY.encode() + b" HTTP/1.1")
    assert b"\r\nHost: 127.0.0.1:" in requests[0]


async def test_a_body_that_runs_to_eof_closes_the_connection() -> None:
    async def handler(stream: RecordingStream, number: int) -> None:
        await stream.request()
        await stream.send_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + OK_JSON)

    async with raw_server(handler) as (base, requests), LeanTransport() as transport:
        for _ in range(2):
            _, body = await get(transport, base + PATH)
            assert body == OK_JSON
    assert len(requests) == 2


# Failures, each as HttpPlaces reports it: a Google-shaped UNKNOWN_ERROR.


async def hang_up(stream: RecordingStream, number: int) -> None:
    await stream.request()


async def never_answer(stream: RecordingStream, number: int) -> None:
    await stream.request()
    await trio.sleep_forever()


async def drip(stream: RecordingStream, number: int) -> None:
    # A byte every 50 ms: no single read waits long, the whole never ends.
    await stream.request()
    for byte in answer(OK_JSON * 100):
        await stream.send_all(bytes([byte]))
        await trio.sleep(0.05)


async def truncated(stream: RecordingStream, number: int) -> None:
    await stream.request()
    await stream.send_all(answer(OK_JSON)[:-10])


def canned(reply: bytes) -> Handler:
    async def handler(stream: RecordingStream, number: int) -> None:
        while await stream.request():
            await stream.send_all(reply)

    return handler  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (hang_up, "RemoteProtocolError: the server closed the connection without answering"),
        (never_answer, "Places request timed out after 0.5 s"),
        (drip, "Places request timed out after 0.5 s"),
        (truncated, "RemoteProtocolError: the server closed the connection in the middle"),
        (canned(answer(b"busy", b"503 Service Unavailable")), "Places answered HTTP 503"),
        (canned(answer(b"<html>", b"200 OK")), "Places answered with a body that is not JSON"),
        (canned(b"SMTP ready\r\n\r\n"), "RemoteProtocolError: malformed HTTP response"),
        (
            canned(answer(b"not gzip at all", b"200 OK", b"Content-Encoding: gzip")),
            "DecodingError",
        ),
    ],
    ids=[
        "dropped",
        "read-timeout",
        "whole-timeout",
        "truncated",
        "503",
        "not-json",
        "garbage",
        "bad-gzip",
    ],
)
async def test_failures_become_unknown_error_without_the_key(
    handler: Handler, message: str
) -> None:
    response = await places_reply(handler, http_timeout=0.5)
    assert response["status"] == "UNKNOWN_ERROR"
    assert response["results"] == []
    assert message in str(response["error_message"])
    assert KEY not in json.dumps(response)


async def test_connection_refused() -> None:
    (port,) = free_ports(1)
    async with LeanTransport() as transport:
        places = HttpPlaces([transport], f"http://127.0.0.1:{port}{PATH}", KEY, WAIT)
        response = decoded(await places.nearby(QUERY))
    assert str(response["error_message"]).startswith("Places request failed: ConnectError")
    assert KEY not in json.dumps(response)


async def test_a_stale_kept_alive_connection_is_retried_once_on_a_new_one() -> None:
    async def answer_once_then_close(stream: RecordingStream, number: int) -> None:
        # Says keep-alive, then closes once the next request arrives.
        await stream.request()
        await stream.send_all(answer(OK_JSON))
        await stream.request()

    async with raw_server(answer_once_then_close) as (base, requests), LeanTransport() as t:
        for _ in range(3):
            _, body = await get(t, base + PATH)
            assert body == OK_JSON
    # Requests 2 and 3 each found the connection stale and went again.
    assert len(requests) == 5


async def test_a_fresh_connection_that_drops_is_not_retried() -> None:
    async with raw_server(hang_up) as (base, requests), LeanTransport() as transport:
        with pytest.raises(httpx.RemoteProtocolError):
            await get(transport, base + PATH)
    assert len(requests) == 1


async def test_a_connection_abandoned_mid_response_is_not_reused() -> None:
    async def slow_first(stream: RecordingStream, number: int) -> None:
        while await stream.request():
            if number == 0:
                await stream.send_all(answer(OK_JSON)[:20])
                await trio.sleep_forever()
            await stream.send_all(answer(OK_JSON))

    async with raw_server(slow_first) as (base, requests), LeanTransport() as transport:
        with pytest.raises(httpx.ReadTimeout):
            await get(transport, base + PATH, http_timeout=0.2)
        # The half-read answer must not be taken for the next one's.
        _, body = await get(transport, base + PATH)
        assert body == OK_JSON
    assert len(requests) == 2


# TLS, with certificates of a test CA.


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@asynccontextmanager
async def tls_server(ca: trustme.CA, handler: Handler) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    async def serve(stream: trio.SSLStream[trio.SocketStream]) -> None:
        with contextlib.suppress(trio.BrokenResourceError):
            await handler(RecordingStream(stream, []), 0)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_ssl_over_tcp, serve, 0, context, host="127.0.0.1")
        )
        port = listeners[0].transport_listener.socket.getsockname()[1]
        yield f"https://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


async def test_https_with_a_trusted_certificate(ca: trustme.CA) -> None:
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with tls_server(ca, canned(answer(OK_JSON))) as base, LeanTransport(client_context) as t:
        for _ in range(2):
            response, body = await get(t, base + PATH + "?key=" + KEY)
            assert response.status_code == 200
            assert body == OK_JSON


async def test_https_refuses_an_untrusted_certificate(ca: trustme.CA) -> None:
    async with tls_server(ca, canned(answer(OK_JSON))) as base, LeanTransport() as transport:
        places = HttpPlaces([transport], base + PATH, KEY, WAIT)
        response = decoded(await places.nearby(QUERY))
    message = str(response["error_message"])
    assert message.startswith("Places request failed: ConnectError")
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert KEY not in message


async def test_a_silent_tls_server_is_a_connect_timeout(ca: trustme.CA) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        async with LeanTransport() as transport:
            with pytest.raises(httpx.ConnectTimeout):
                await get(transport, f"https://127.0.0.1:{port}{PATH}", http_timeout=0.2)
        nursery.cancel_scope.cancel()


# The sans-I/O pieces, synchronously.


def test_request_head_bytes() -> None:
    head = request_head(b"GET", b"/x?a=1", [(b"Host", b"h"), (b"Accept", b"*/*")])
    assert head == b"GET /x?a=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"


def test_the_reader_knows_a_stale_connection_from_a_truncated_answer() -> None:
    silent = ResponseReader()
    with pytest.raises(ResponseError, match="without answering"):
        silent.feed_eof()
    cut = ResponseReader()
    assert not cut.feed(answer(OK_JSON)[:-1])
    with pytest.raises(ResponseError, match="in the middle"):
        cut.feed_eof()
    whole = ResponseReader()
    assert whole.feed(answer(OK_JSON, b"404 Not Found", b"Connection: close"))
    assert (whole.status, whole.reason, whole.body, whole.keep_alive) == (
        404,
        "Not Found",
        OK_JSON,
        False,
    )


def test_the_trio_herd_defaults_to_the_lean_transport(tmp_path: Path) -> None:
    from trioherd.options import parse_options

    lean = parse_options(["Hill", "--places-server"], "trioherd")
    stock = parse_options(["Hill", "--places-server", "--places-transport", "httpx"], "trioherd")
    control = parse_options(["Hill", "--places-transport", "httpx"], "x", implementation="asyncio")
    assert (lean.places.transport, stock.places.transport) == ("lean", "httpx")
    assert control.places.transport == "httpx"
    assert parse_options(["Hill"], "x", implementation="asyncio").places.transport == "aiohttp"


async def test_the_places_server_answers_pipelined_requests_in_order() -> None:
    async with places_server() as (server, url):
        port = int(url.split(":")[2].split("/")[0])
        target = PATH.encode()
        pipelined = (
            b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"HEAD " + target + b"?location=1,1&radius=5 HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"GET " + target + b"?location=1,1&radius=5 HTTP/1.1\r\nHost: x\r\n"
            + b"Connection: close\r\n\r\n"
        )  # fmt: skip
        with trio.fail_after(WAIT):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(pipelined)
                data = b""
                while chunk := await stream.receive_some(65536):  # to EOF: closed as asked
                    data += chunk
    assert data.count(b"HTTP/1.1 ") == 3
    assert data.startswith(b"HTTP/1.1 404 Not Found\r\n")
    # The HEAD's head and the GET's whole answer follow, in that order.
    head_end = data.index(b"HTTP/1.1 200", data.index(b"HTTP/1.1 200") + 1)
    assert b"{" not in data[data.index(b"HTTP/1.1 200") : head_end]
    assert data.endswith(b"}")
    assert b"Connection: close" in data[head_end:]
    assert server.requests == 3


@given(
    latitude=st.floats(-90, 90),
    longitude=st.floats(-180, 180),
    radius_m=st.floats(0.001, 50_000),
)
def test_each_query_url_is_the_one_httpx_parses_from_its_text(
    latitude: float, longitude: float, radius_m: float
) -> None:
    # The URL of each request is made from the endpoint's parse (target_urls):
    # it must be exactly what httpx makes of the request's text, for any
    # coordinates, with or without a key and a query of the endpoint's own.
    query = PlacesQuery(b"AT x", latitude, longitude, radius_m, 5)
    for url, key in (
        ("http://127.0.0.1:8000/maps/api/place/nearbysearch/json", None),
        ("https://places.test/nearby?lang=en", "k&y+z=/ \u00e9"),
    ):
        endpoint = NearbyEndpoint(url, key, 5.0)
        made, text = target_urls(endpoint.target)(query), endpoint.target(query)
        parsed = httpx.URL(text)
        assert made == parsed
        assert (made.raw_scheme, made.raw_host, made.port, made.raw_path) == (
            parsed.raw_scheme, parsed.raw_host, parsed.port, parsed.raw_path
        )  # fmt: skip


def test_query_urls_are_parsed_where_the_shortcut_would_differ() -> None:
    endpoint = NearbyEndpoint("http://places.test/nearby", "key", 5.0)
    query = PlacesQuery(b"AT x", 1.5, -2.25, 10.0, 5)
    assert target_urls(endpoint.target).__name__ == "made"

    # A text httpx would encode further (a raw space and non-ASCII): the
    # check at the start sees the difference and every URL is parsed.
    def unencoded(query: PlacesQuery) -> str:
        return endpoint.target(query) + "&note=caf\u00e9 au lait"

    fallback = target_urls(unencoded)
    assert fallback.__name__ == "parsed"
    assert fallback(query) == httpx.URL(unencoded(query))
    assert b"caf%C3%A9%20au%20lait" in fallback(query).raw_path
