"""HTTP/1.1 for the Places client, with no I/O: request bytes out, response bytes in.

The Places client sends one GET at a time on a keep-alive connection and
reads one response. :func:`request_head` makes the bytes to send;
:class:`ResponseReader` takes the bytes that come back, in whatever pieces
they arrive, and says when the response is whole. Parsing is llhttp's (the
C parser of Node.js, through httptools, as uvicorn uses it): status line,
headers, ``Content-Length`` and chunked bodies, keep-alive rules. What it
leaves to us is the end of a body that runs to EOF, which llhttp only learns
from a call httptools does not expose; :meth:`ResponseReader.feed_eof` does
that part.

Like the herd's own core it imports no event loop; the trio layer
(:mod:`trioherd.http_transport`) moves the bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

import httptools


class ResponseError(Exception):
    """The bytes received are not a whole, valid HTTP/1.1 response."""


def request_head(method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The request line and headers of a request, ending with the blank line.

    ``headers`` must hold ``Host`` (and ``Content-Length`` for a body); they
    are sent as given, in order.
    """
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


class ResponseReader:
    """One response, from bytes fed in as they arrive.

    Feed it with :meth:`feed` until that returns ``True``, or with
    :meth:`feed_eof` when the connection ends first. Interim responses
    (``1xx``) are skipped. Then :attr:`status`, :attr:`reason`,
    :attr:`headers` and :attr:`body` hold the response (the body as sent:
    still compressed if it was), and :attr:`keep_alive` says whether the
    connection can carry another request.
    """

    __slots__ = (
        "_body",
        "_complete",
        "_parser",
        "_reason",
        "_run_to_eof",
        "headers",
        "keep_alive",
        "received",
        "status",
    )

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        #: Whether any byte of the response arrived (a keep-alive connection
        #: closed before the first byte was stale: the request can be retried).
        self.received = False
        self._reason = b""
        self._body: list[bytes] = []
        self._complete = False
        self._run_to_eof = False
        self._parser = httptools.HttpResponseParser(self)

    @property
    def reason(self) -> str:
        """The reason phrase of the status line (``OK``), as text."""
        return self._reason.decode("latin-1")

    @property
    def body(self) -> bytes:
        """The body received so far: all of it once the response is whole."""
        return b"".join(self._body)

    def feed(self, data: bytes | bytearray) -> bool:
        """Take the next bytes of the connection; whether the response is now whole.

        Raises:
            ResponseError: the bytes are not HTTP/1.1, or the response asks
                to switch protocols.
        """
        if data:
            self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise ResponseError("the server switched protocols") from None
        except httptools.HttpParserError as exc:
            raise ResponseError(f"malformed HTTP response: {exc}") from None
        return self._complete

    def feed_eof(self) -> None:
        """The connection ended: finish a body that runs to EOF, or fail.

        Raises:
            ResponseError: the connection ended before the response did.
        """
        if self._complete:
            return
        if self._run_to_eof:
            self._complete = True
            self.keep_alive = False
            return
        if not self.received:
            raise ResponseError("the server closed the connection without answering")
        raise ResponseError("the server closed the connection in the middle of a response")

    # llhttp's callbacks, called from inside feed_data.

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        # With neither Content-Length nor chunked coding, a response body
        # ends when the connection does (RFC 9112, 6.3), unless the status
        # has no body at all.
        framed = any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )
        self._run_to_eof = not framed and self.status >= 200 and self.status not in (204, 304)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.status < 200:
            # An interim response (100 Continue, 103 Early Hints): the real
            # one follows on the same connection.
            self.headers = []
            self._reason = b""
            self._body = []
            return
        self._complete = True
        self.keep_alive = bool(self._parser.should_keep_alive())


class RequestError(Exception):
    """The bytes received are not HTTP/1.1 requests."""


class RequestReader:
    """Requests from a client's bytes, for a server: what our Places server parses with.

    :meth:`feed` takes bytes as they arrive and returns the requests they
    completed, oldest first, each as ``(method, target, keep_alive)``;
    request bodies are read and dropped (the Places API has none). A
    client's pipelined requests come out together, in order.
    """

    __slots__ = ("_done", "_parser", "_target")

    def __init__(self) -> None:
        self._target = b""
        self._done: list[tuple[bytes, bytes, bool]] = []
        self._parser = httptools.HttpRequestParser(self)

    def feed(self, data: bytes | bytearray) -> list[tuple[bytes, bytes, bool]]:
        """The requests ``data`` completed (maybe none).

        Raises:
            RequestError: the bytes are not HTTP/1.1 (or ask to upgrade).
        """
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise RequestError("protocol upgrades are not supported") from None
        except httptools.HttpParserError as exc:
            raise RequestError(str(exc)) from None
        done, self._done = self._done, []
        return done

    # llhttp's callbacks.

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_message_complete(self) -> None:
        method = self._parser.get_method()
        self._done.append((method, self._target, bool(self._parser.should_keep_alive())))
        self._target = b""
