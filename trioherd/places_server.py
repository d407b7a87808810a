"""A Google-compatible Places server of our own: ``python -m trioherd.places_server``.

It answers ``GET /maps/api/place/nearbysearch/json`` as Google's legacy
Nearby Search does (see :mod:`trioherd.offline.nearby`), from the offline
GeoNames index, so the herd's real HTTP path can run with no Google account
and no network. (Tests and the bench make it misbehave on purpose through a
wrapper of their own, ``bench/places_faults.py``, which overrides
:meth:`PlacesServer.reply`.)

Requests are parsed by llhttp (:class:`trioherd.core.http1.RequestReader`,
the parser under the herd's own Places client) and connections run on
trioherd's lean sockets: on h11 and ``trio.SocketStream`` this server, not
the herds, was what WHATSAT at C=500 measured (about 2,800 requests/s at a
full core). Connections are kept alive, one task each, answering pipelined
requests in order::

    serve
    └── serve_listeners
        └── serve_connection × N      one request at a time
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import trio

from trioherd.core.http1 import RequestError, RequestReader
from trioherd.core.places import google_json
from trioherd.offline.cache import load_index
from trioherd.offline.index import PlaceIndex
from trioherd.offline.nearby import NEARBY_PATH, KeyPolicy, nearby_search
from trioherd.options import OneLineParser, sole_exception
from trioherd.stream import LeanStream

PROG = "python -m trioherd.places_server"
#: How many recent answers are kept, ready to send (a few MB at most).
ANSWER_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: its status, its body and the body's content type."""

    status: int
    body: bytes
    content_type: bytes


class PlacesServer:
    """The HTTP server; :meth:`serve` runs it.

    Args:
        keys: which API keys are accepted (by default, any or none).
    """

    def __init__(self, keys: KeyPolicy | None = None) -> None:
        self.keys = keys or KeyPolicy()
        self._index: PlaceIndex | None = None
        # The answer to a query never changes (the index and the key policy
        # are fixed), and searching and printing it cost ~0.4 ms of CPU,
        # most of what a request costs: recent answers are kept, as bytes.
        self._body = functools.lru_cache(maxsize=ANSWER_CACHE_SIZE)(self._search)
        # And the answer to a request target, so that a target asked before
        # skips parsing its query too.
        self._get = functools.lru_cache(maxsize=ANSWER_CACHE_SIZE)(self._get_uncached)

    async def serve(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Load the index, listen on ``host:port`` and serve; reports the bound port."""
        # Loaded before listening, so that no request waits for it.
        self._index = await trio.to_thread.run_sync(load_index, abandon_on_cancel=True)
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(
            self.serve_connection,
            listeners,
            task_status=_ReportPort(task_status, bound),
        )

    async def serve_connection(self, socket_stream: trio.SocketStream) -> None:
        """Answer one connection's requests, one at a time, until it closes.

        An exception from :meth:`reply` closes the connection and passes on.
        """
        stream = LeanStream.take(socket_stream)
        reader = RequestReader()
        try:
            while True:
                data = await stream.receive_some()
                if not data:
                    return
                try:
                    requests = reader.feed(data)
                except RequestError as exc:
                    body = f"bad request: {exc}\n".encode()
                    bad = Reply(400, body, b"text/plain")
                    await stream.send_all(_response(bad, keep_alive=False))
                    return
                for method, target, keep_alive in requests:
                    reply = await self.reply(method, target)
                    head_only = method == b"HEAD"
                    await stream.send_all(_response(reply, keep_alive, head_only))
                    if not keep_alive:
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            stream.close()

    async def reply(self, method: bytes, target: bytes) -> Reply:
        """The answer to one request, given its method and its target (path and query).

        A coroutine, so that a wrapper may delay an answer, replace it, or
        raise to drop the connection (see ``bench/places_faults.py``).
        """
        if method not in (b"GET", b"HEAD"):
            return Reply(405, b"only GET\n", b"text/plain")
        return self._get(target)

    def _get_uncached(self, target: bytes) -> Reply:
        url = urlsplit(target.decode("ascii", "replace"))
        if url.path != NEARBY_PATH:
            return Reply(404, b"not found\n", b"text/plain")
        query = tuple(sorted(parse_qsl(url.query, keep_blank_values=True)))
        return Reply(200, self._body(query), b"application/json; charset=UTF-8")

    def _search(self, query: tuple[tuple[str, str], ...]) -> bytes:
        assert self._index is not None
        return google_json(nearby_search(self._index, dict(query), self.keys)).encode()


class _ReportPort:
    """Passes the bound port, rather than the listeners, to ``nursery.start``."""

    def __init__(self, task_status: trio.TaskStatus[int], port: int) -> None:
        self._task_status = task_status
        self._port = port

    def started(self, value: object = None) -> None:
        self._task_status.started(self._port)


_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    500: b"Internal Server Error",
}


def _response(reply: Reply, keep_alive: bool, head_only: bool = False) -> bytes:
    """A whole response, head and body, ready to send."""
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
        reply.status,
        _REASONS.get(reply.status, b"Unknown"),
        reply.content_type,
        len(reply.body),
    )
    if not keep_alive:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + (b"" if head_only else reply.body)


def port_number(text: str) -> int:
    """A ``--port`` value: an integer in 0-65535 (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port in 0-65535")
    return port


def command_line(prog: str = PROG) -> OneLineParser:
    """The server's command line, for this module and for wrappers that add options."""
    parser = OneLineParser(
        prog=prog,
        description="A Google-compatible Places Nearby Search server backed by offline "
        f"GeoNames data. Serves GET {NEARBY_PATH}?location=LAT,LNG&radius=METRES[&key=KEY].",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=port_number, default=8080, help="port (default 8080; 0: any)"
    )
    parser.add_argument(
        "--require-key", action="store_true", help="deny requests without a key parameter"
    )
    parser.add_argument("--key", help="the one key accepted (implies --require-key)")
    return parser


def key_policy(args: argparse.Namespace) -> KeyPolicy:
    """The keys accepted, from the parsed :func:`command_line`."""
    return KeyPolicy(required=args.require_key or args.key is not None, expected=args.key)


def run(server: PlacesServer, host: str, port: int, prog: str = PROG) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit status."""

    async def serve() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(server.serve, port, host)
                print(
                    f"Places server on http://{host}:{bound}{NEARBY_PATH}",
                    file=sys.stderr,
                    flush=True,
                )
                async for _ in signals:
                    nursery.cancel_scope.cancel()

    try:
        trio.run(serve)
    except BaseException as exc:
        leaf = sole_exception(exc)
        if isinstance(leaf, KeyboardInterrupt):
            return 0
        if isinstance(leaf, OSError):
            reason = leaf.strerror or str(leaf)
            print(f"{prog}: error: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
            return 1
        raise
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = command_line().parse_args(argv)
    return run(PlacesServer(key_policy(args)), args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
