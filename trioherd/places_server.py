"""A Google-compatible Places server of our own: ``python -m trioherd.places_server``.

It answers ``GET /maps/api/place/nearbysearch/json`` as Google's legacy
Nearby Search does (see :mod:`trioherd.offline.nearby`), from the offline
GeoNames index, so the herd's real HTTP path can run with no Google account
and no network. For tests and benchmarks it can misbehave on purpose: add
latency (fixed or uniformly drawn), fail a fraction of requests (HTTP 500, a
body that is not JSON, or a dropped connection), or never answer at all.

HTTP/1.1 comes from h11 (already installed with httpx), a sans-I/O
protocol library like our own core; this module only moves its bytes with
trio. Connections are kept alive, one task each::

    serve
    └── serve_tcp
        └── _serve_connection × N     h11 state machine, one request at a time
"""

from __future__ import annotations

import functools
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal
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

ErrorKind = Literal["status", "not-json", "close"]


@dataclass(frozen=True)
class Behaviour:
    """How the server misbehaves, for tests and benchmarks.

    Args:
        latency: seconds added before each answer, drawn uniformly from
            ``(low, high)``; equal bounds give a fixed latency.
        error_rate: the fraction of requests that fail.
        error_kind: how they fail: ``status`` (HTTP 500), ``not-json`` (200
            with an HTML body) or ``close`` (the connection is dropped).
        hang: never answer any request.
        keys: which API keys are accepted.
    """

    latency: tuple[float, float] = (0.0, 0.0)
    error_rate: float = 0.0
    error_kind: ErrorKind = "status"
    hang: bool = False
    keys: KeyPolicy = field(default_factory=KeyPolicy)


class _Dropped(Exception):
    """The behaviour says: drop this connection."""


class PlacesServer:
    """The HTTP server; :meth:`serve` runs it.

    Args:
        behaviour: latency, errors and key policy.
        rng: the random source for latency and errors (seed it for repeatable runs).
    """

    def __init__(self, behaviour: Behaviour = Behaviour(), rng: random.Random | None = None):
        self.behaviour = behaviour
        #: Counters for tests and benchmarks: requests seen, connections
        #: accepted, requests being answered now and the most at once.
        self.requests = 0
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._rng = rng or random.Random()
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
            self._serve_connection,
            listeners,
            task_status=_ReportPort(task_status, bound),
        )

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
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
            except (trio.BrokenResourceError, trio.ClosedResourceError, _Dropped):
                pass
            except h11.RemoteProtocolError as exc:
                await _send_bad_request(stream, connection, exc)

    async def _answer(
        self, stream: trio.SocketStream, connection: h11.Connection, request: h11.Request
    ) -> None:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._respond(stream, connection, request)
        finally:
            self.in_flight -= 1

    async def _respond(
        self, stream: trio.SocketStream, connection: h11.Connection, request: h11.Request
    ) -> None:
        behaviour = self.behaviour
        if behaviour.hang:
            await trio.sleep_forever()
        low, high = behaviour.latency
        if high > 0:
            await trio.sleep(self._rng.uniform(low, high))
        target = urlsplit(request.target.decode("ascii", "replace"))
        if request.method not in (b"GET", b"HEAD"):
            status, body, kind = 405, b"only GET\n", b"text/plain"
        elif target.path != NEARBY_PATH:
            status, body, kind = 404, b"not found\n", b"text/plain"
        elif behaviour.error_rate and self._rng.random() < behaviour.error_rate:
            if behaviour.error_kind == "close":
                raise _Dropped
            if behaviour.error_kind == "not-json":
                status, body, kind = 200, b"<html>Oops</html>\n", b"text/html"
            else:
                status, body, kind = 500, b"injected failure\n", b"text/plain"
        else:
            query = tuple(sorted(parse_qsl(target.query, keep_blank_values=True)))
            status, body, kind = 200, self._body(query), b"application/json; charset=UTF-8"
        headers = [(b"Content-Type", kind), (b"Content-Length", b"%d" % len(body))]
        data = connection.send(h11.Response(status_code=status, headers=headers))
        if request.method != b"HEAD":
            data += connection.send(h11.Data(data=body))
        data += connection.send(h11.EndOfMessage())
        await stream.send_all(data)

    def _search(self, query: tuple[tuple[str, str], ...]) -> bytes:
        assert self._index is not None
        return google_json(nearby_search(self._index, dict(query), self.behaviour.keys)).encode()


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


def parse_latency(text: str) -> tuple[float, float]:
    """``100`` (fixed) or ``50-150`` (uniform), in milliseconds, as seconds.

    Raises:
        ValueError: not one of those forms, or negative.
    """
    problem = f"latency {text!r} must be MS or LOW-HIGH, in ms, with 0 <= LOW <= HIGH"
    low_text, sep, high_text = text.partition("-")
    try:
        low = float(low_text)
        high = float(high_text) if sep else low
    except ValueError:
        raise ValueError(problem) from None
    if not 0 <= low <= high < float("inf"):
        raise ValueError(problem)
    return low / 1000, high / 1000


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = OneLineParser(
        prog=PROG,
        description="A Google-compatible Places Nearby Search server backed by offline "
        f"GeoNames data. Serves GET {NEARBY_PATH}?location=LAT,LNG&radius=METRES[&key=KEY].",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any)")
    parser.add_argument(
        "--latency",
        default="0",
        metavar="MS|LOW-HIGH",
        help="added latency in ms: fixed (100) or uniform (50-150); default 0",
    )
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="fraction of requests that fail (default 0)",
    )
    parser.add_argument(
        "--error-kind",
        choices=["status", "not-json", "close"],
        default="status",
        help="how they fail: HTTP 500, a non-JSON body, or a dropped connection",
    )
    parser.add_argument("--hang", action="store_true", help="accept requests, never answer")
    parser.add_argument(
        "--require-key", action="store_true", help="deny requests without a key parameter"
    )
    parser.add_argument("--key", help="the one key accepted (implies --require-key)")
    parser.add_argument("--seed", type=int, help="seed for latency and errors")
    args = parser.parse_args(argv)
    try:
        latency = parse_latency(args.latency)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 <= args.error_rate <= 1:
        parser.error("--error-rate must be between 0 and 1")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be in 0-65535")
    behaviour = Behaviour(
        latency=latency,
        error_rate=args.error_rate,
        error_kind=args.error_kind,
        hang=args.hang,
        keys=KeyPolicy(required=args.require_key or args.key is not None, expected=args.key),
    )
    server = PlacesServer(behaviour, random.Random(args.seed))

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(server.serve, args.port, args.host)
                print(
                    f"Places server on http://{args.host}:{port}{NEARBY_PATH}",
                    file=sys.stderr,
                    flush=True,
                )
                async for _ in signals:
                    nursery.cancel_scope.cancel()

    try:
        trio.run(run)
    except BaseException as exc:
        leaf = sole_exception(exc)
        if isinstance(leaf, KeyboardInterrupt):
            return 0
        if isinstance(leaf, OSError):
            reason = leaf.strerror or str(leaf)
            print(
                f"{PROG}: error: cannot listen on {args.host}:{args.port}: {reason}",
                file=sys.stderr,
            )
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
