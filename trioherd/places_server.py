"""A Google-compatible Places server of our own: ``python -m trioherd.places_server``.

It answers ``GET /maps/api/place/nearbysearch/json`` as Google's legacy
Nearby Search does (see :mod:`trioherd.offline.nearby`), from the offline
GeoNames index, so the herd's real HTTP path can run with no Google account
and no network. (Tests and the bench make it misbehave on purpose through a
wrapper of their own, ``bench/places_faults.py``, which overrides
:meth:`PlacesServer.reply`.)

HTTP/1.1 comes from h11 (already installed with httpx), a sans-I/O
protocol library like our own core; this module only moves its bytes with
trio. Connections are kept alive, one task each::

    serve
    └── serve_tcp
        └── serve_connection × N      h11 state machine, one request at a time
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import h11
import trio

from trioherd.core.places import google_json
from trioherd.offline.cache import load_index
from trioherd.offline.index import PlaceIndex
from trioherd.offline.nearby import NEARBY_PATH, KeyPolicy, nearby_search
from trioherd.options import OneLineParser, sole_exception

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

    async def serve_connection(self, stream: trio.SocketStream) -> None:
        """Answer one connection's requests, one at a time, until it closes."""
        connection = h11.Connection(h11.SERVER)
        async with stream:
            try:
                while True:
                    request = await _next_request(stream, connection)
                    if request is None:
                        return
                    await self._answer(stream, connection, request)
                    if connection.our_state is not h11.DONE:
                        return
                    try:
                        connection.start_next_cycle()
                    except h11.LocalProtocolError:  # the client asked to close
                        return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            except h11.RemoteProtocolError as exc:
                await _send_bad_request(stream, connection, exc)

    async def _answer(
        self, stream: trio.SocketStream, connection: h11.Connection, request: h11.Request
    ) -> None:
        reply = await self.reply(request.method, request.target)
        headers = [
            (b"Content-Type", reply.content_type),
            (b"Content-Length", b"%d" % len(reply.body)),
        ]
        data = connection.send(h11.Response(status_code=reply.status, headers=headers))
        if request.method != b"HEAD":
            data += connection.send(h11.Data(data=reply.body))
        data += connection.send(h11.EndOfMessage())
        await stream.send_all(data)

    async def reply(self, method: bytes, target: bytes) -> Reply:
        """The answer to one request, given its method and its target (path and query).

        A coroutine, so that a wrapper may delay an answer, replace it, or
        raise to drop the connection (see ``bench/places_faults.py``).
        """
        url = urlsplit(target.decode("ascii", "replace"))
        if method not in (b"GET", b"HEAD"):
            return Reply(405, b"only GET\n", b"text/plain")
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


async def _next_request(
    stream: trio.SocketStream, connection: h11.Connection
) -> h11.Request | None:
    """The next whole request (its body read and dropped), or ``None`` at EOF."""
    request: h11.Request | None = None
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _send_bad_request(
    stream: trio.SocketStream, connection: h11.Connection, exc: h11.RemoteProtocolError
) -> None:
    if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = f"bad request: {exc}\n".encode()
    headers = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"%d" % len(body))]
    try:
        data = connection.send(h11.Response(status_code=exc.error_status_hint, headers=headers))
        data += connection.send(h11.Data(data=body)) + connection.send(h11.EndOfMessage())
        await stream.send_all(data)
    except (h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass


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
