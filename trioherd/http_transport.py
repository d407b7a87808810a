"""An httpx transport of our own: one keep-alive HTTP/1.1 connection on trio.

httpx stays the Places client's API (its requests, responses, errors and
content decoding); this is what sits under it in place of httpcore. The
profile of a WHATSAT under load (bench/results/profiles/) put ~40% of the
trio herd's CPU in httpx's stock transport and httpcore, against ~30% in
aiohttp on asyncio: httpcore's connection state machine, h11's pure-Python
parsing, and ``trio.SocketStream``'s per-call machinery around every read
and write (the cost :mod:`trioherd.stream` removed from the herd's own
connections). Here a request is one ``send`` of bytes made by
:func:`~trioherd.core.http1.request_head`, and its response is parsed by
llhttp (:class:`~trioherd.core.http1.ResponseReader`) from reads of a
:class:`~trioherd.stream.LeanStream`.

A :class:`LeanTransport` holds at most one connection, as the stock
transports :class:`~trioherd.places.HttpPlaces` lends do: it lends whole
transports, so each carries one request at a time. Timeouts follow httpx's
(``request.extensions["timeout"]``): ``connect`` bounds opening the
connection (and the TLS handshake), ``write`` sending the request, ``read``
each wait for more of the response. Failures raise httpx's own exceptions,
so callers see the same errors whichever transport runs.

A connection kept alive between requests may have been closed by the server
meanwhile; if one fails before any byte of its response arrived, the
request (a GET, so idempotent) is sent once more on a new connection.
"""

from __future__ import annotations

import ssl
from typing import Protocol

import httpx
import trio

from trioherd.core.http1 import ResponseError, ResponseReader, request_head
from trioherd.stream import RECEIVE_SIZE, LeanStream, close_stream

#: Methods that may be sent again when a kept-alive connection turns out stale.
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})


class _Stream(Protocol):
    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray: ...

    async def send_all(self, data: bytes | bytearray | memoryview) -> None: ...

    async def aclose(self) -> None: ...


class _Stale(Exception):
    """A reused connection failed before its response began: retry on a fresh one."""


class LeanTransport(httpx.AsyncBaseTransport):
    """An :class:`httpx.AsyncBaseTransport` over one keep-alive connection.

    Args:
        tls: the context for ``https`` origins; one for every transport, as
            building one reads the CA bundle.

    Not safe for concurrent requests: lend it to one request at a time.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._stream: _Stream | None = None
        self._origin: tuple[bytes, bytes, int] | None = None
        #: Whether the open connection has carried a whole response already.
        self._reused = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its whole response.

        Raises:
            httpx.TimeoutException: connecting, sending or a read took too long.
            httpx.NetworkError: the connection was refused, reset or closed.
            httpx.RemoteProtocolError: the answer is not a whole HTTP/1.1 response.
        """
        return _response(await self._round_trip(request))

    async def status_and_body(self, request: httpx.Request) -> tuple[int, bytes]:
        """Send ``request``; its response's status and body, content-decoded.

        What :meth:`handle_async_request` and reading its response give, for
        a caller that needs no more of the response: an ``httpx.Response``
        and the reading of its body through httpx's decoders cost about 10
        us, a sixtieth of a WHATSAT's CPU (bench/results/http/s23), for a
        body that usually needs no decoding. A body sent with a
        ``Content-Encoding`` still goes through httpx's ``Response``, so it
        is decoded exactly as httpx decodes it, and fails as it fails.

        Raises:
            httpx.HTTPError: as :meth:`handle_async_request`, and
                httpx.DecodingError for a body its encoding cannot decode.
        """
        reader = await self._round_trip(request)
        for name, _ in reader.headers:
            if name.lower() == b"content-encoding":
                response = _response(reader)
                return response.status_code, response.content
        return reader.status, reader.body

    async def _round_trip(self, request: httpx.Request) -> ResponseReader:
        """Send ``request``; the reader that holds its whole response."""
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        head = request_head(request.method.encode(), url.raw_path, request.headers.raw)
        # A body given as bytes (a GET's empty one) is read without the
        # async iteration aread() goes through.
        sync = isinstance(request.stream, httpx.SyncByteStream)
        body = request.read() if sync else await request.aread()
        data = head + body if body else head
        try:
            try:
                reader = await self._exchange(origin, data, timeouts)
            except _Stale:
                await self._close()
                try:
                    reader = await self._exchange(origin, data, timeouts)
                except _Stale as exc:  # cannot happen on a fresh connection
                    raise httpx.RemoteProtocolError(str(exc)) from None
        except BaseException:
            # Cancelled, timed out or failed part-way: the connection's
            # state is unknown, so it is not used again.
            await self._close()
            raise
        if reader.keep_alive:
            self._reused = True
        else:
            await self._close()
        return reader

    async def _exchange(
        self, origin: tuple[bytes, bytes, int], data: bytes, timeouts: dict[str, float | None]
    ) -> ResponseReader:
        if self._stream is not None and self._origin != origin:
            await self._close()
        stream = self._stream
        if stream is None:
            connect_timeout = timeouts.get("connect")
            with trio.move_on_after(_unbounded(connect_timeout)) as connecting:
                stream = await self._connect(origin)
            if connecting.cancelled_caught or stream is None:
                raise httpx.ConnectTimeout(f"no connection within {connect_timeout:g} s")
        reader = ResponseReader()
        write_timeout, read_timeout = timeouts.get("write"), timeouts.get("read")
        if write_timeout is None and read_timeout is None:
            # Nothing to bound here (a caller that bounds the whole request,
            # as HttpPlaces does): no scope to enter and leave, which on
            # trio costs about as much as parsing the response.
            await self._send(stream, data)
            await self._receive(stream, data, reader, None, None)
            return reader
        # One scope for the whole exchange; its deadline moves with each
        # phase (httpx's read timeout bounds each wait, not the response).
        sent = False
        with trio.CancelScope() as scope:
            scope.deadline = _deadline(write_timeout)
            await self._send(stream, data)
            sent = True
            await self._receive(stream, data, reader, scope, read_timeout)
            return reader
        if not sent:
            raise httpx.WriteTimeout(f"could not send the request within {write_timeout:g} s")
        raise httpx.ReadTimeout(f"no data from the server for {read_timeout:g} s")

    async def _send(self, stream: _Stream, data: bytes) -> None:
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            if self._reused and _idempotent(data):
                raise _Stale from exc
            raise httpx.WriteError(_reason(exc, "the connection broke")) from exc

    async def _receive(
        self,
        stream: _Stream,
        data: bytes,
        reader: ResponseReader,
        scope: trio.CancelScope | None,
        read_timeout: float | None,
    ) -> None:
        """Read until ``reader`` has the whole response, each wait bounded by ``scope``."""
        while True:
            if scope is not None:
                scope.deadline = _deadline(read_timeout)
            try:
                chunk = await stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                if self._stale(reader, data):
                    raise _Stale from exc
                raise httpx.ReadError(_reason(exc, "the connection broke")) from exc
            try:
                if not chunk:
                    if self._stale(reader, data):
                        raise _Stale
                    reader.feed_eof()
                    return
                if reader.feed(chunk):
                    return
            except ResponseError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from None

    def _stale(self, reader: ResponseReader, data: bytes) -> bool:
        # Asked only when the connection failed: the cheap tests first.
        return self._reused and not reader.received and _idempotent(data)

    async def _connect(self, origin: tuple[bytes, bytes, int]) -> _Stream:
        scheme, host, port = origin
        host_text = host.decode("ascii")
        stream: _Stream
        try:
            tcp = await trio.open_tcp_stream(host_text, port)
        except OSError as exc:
            raise httpx.ConnectError(_reason(exc, "cannot connect")) from None
        if scheme == b"https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = trio.SSLStream(tcp, self._tls, server_hostname=host_text, https_compatible=True)
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as exc:
                await trio.aclose_forcefully(tls)
                cause = exc.__cause__ or exc
                raise httpx.ConnectError(_reason(cause, "TLS handshake failed")) from None
            except BaseException:
                await trio.aclose_forcefully(tls)
                raise
            stream = tls
        else:
            stream = LeanStream.take(tcp)
        self._stream, self._origin, self._reused = stream, origin, False
        return stream

    async def _close(self) -> None:
        stream, self._stream, self._origin = self._stream, None, None
        if isinstance(stream, trio.SSLStream):
            # No goodbye over TLS: a close_notify to a peer that is gone
            # could wait; the socket is closed at once.
            await trio.aclose_forcefully(stream)
        elif isinstance(stream, LeanStream):
            await close_stream(stream)

    async def aclose(self) -> None:
        """Close the connection, if one is open."""
        await self._close()


def _response(reader: ResponseReader) -> httpx.Response:
    # Given as content, the body is read (and decoded, if gzip) here, so
    # a body that fails to decode raises httpx.DecodingError from this call.
    return httpx.Response(
        reader.status,
        headers=reader.headers,
        content=reader.body,
        extensions={"http_version": b"HTTP/1.1", "reason_phrase": reader.reason.encode()},
    )


def _unbounded(timeout: float | None) -> float:
    return timeout if timeout is not None else float("inf")


def _deadline(timeout: float | None) -> float:
    return trio.current_time() + _unbounded(timeout)


def _idempotent(data: bytes) -> bool:
    return data.split(b" ", 1)[0] in IDEMPOTENT


def _reason(exc: BaseException, fallback: str) -> str:
    # OSError's strerror ("Connection refused") without the errno noise; the
    # URL, which may hold the API key, is never part of these messages.
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(exc) or str(cause or "") or fallback
