"""Our Places server, misbehaving on purpose: ``python -m bench.places_faults``.

The product server (:mod:`trioherd.places_server`) answers as fast and as
correctly as it can. Tests and benchmarks also need a slow one, a failing
one and one that never answers, and they need to count what it saw. This
module wraps the product server for them: :class:`FaultyPlacesServer`
overrides only :meth:`~trioherd.places_server.PlacesServer.reply` (to wait,
fail or hang before or instead of the real answer) and
:meth:`~trioherd.places_server.PlacesServer.serve_connection` (to count
connections and drop one when told), so what it serves between faults is
the product's own bytes.

The command line is the product's plus the faults::

    python -m bench.places_faults --port 8080 --latency 50-150 --seed 1
    python -m bench.places_faults --port 8080 --error-rate 0.1 --error-kind close
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import trio

from trioherd.offline.nearby import KeyPolicy
from trioherd.options import OneLineParser
from trioherd.places_server import PlacesServer, Reply, command_line, key_policy, run

PROG = "python -m bench.places_faults"

ErrorKind = Literal["status", "not-json", "close"]


@dataclass(frozen=True, slots=True)
class Faults:
    """How the server misbehaves.

    Args:
        latency: seconds added before each answer, drawn uniformly from
            ``(low, high)``; equal bounds give a fixed latency.
        error_rate: the fraction of Nearby Search requests that fail.
        error_kind: how they fail: ``status`` (HTTP 500), ``not-json`` (200
            with an HTML body) or ``close`` (the connection is dropped).
        hang: never answer any request.
    """

    latency: tuple[float, float] = (0.0, 0.0)
    error_rate: float = 0.0
    error_kind: ErrorKind = "status"
    hang: bool = False


class _Dropped(Exception):
    """The faults say: drop this connection."""


class FaultyPlacesServer(PlacesServer):
    """The product Places server with faults injected and requests counted.

    Args:
        faults: latency, errors, hanging.
        keys: which API keys are accepted, as for the product server.
        rng: the random source for latency and errors (seed it for repeatable runs).
    """

    def __init__(
        self,
        faults: Faults | None = None,
        keys: KeyPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(keys)
        self.faults = faults or Faults()
        self._rng = rng or random.Random()
        #: Requests seen, connections accepted, requests being answered now
        #: and the most at once.
        self.requests = 0
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def serve_connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        # The product closes the stream as the exception passes through it.
        with contextlib.suppress(_Dropped):
            await super().serve_connection(stream)

    async def reply(self, method: bytes, target: bytes) -> Reply:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._misbehave(method, target)
        finally:
            self.in_flight -= 1

    async def _misbehave(self, method: bytes, target: bytes) -> Reply:
        faults = self.faults
        if faults.hang:
            await trio.sleep_forever()
        low, high = faults.latency
        if high > 0:
            await trio.sleep(self._rng.uniform(low, high))
        reply = await super().reply(method, target)
        # Only a Nearby Search answer fails: a 404 or 405 stays what it is.
        if reply.status != 200 or not faults.error_rate:
            return reply
        if self._rng.random() >= faults.error_rate:
            return reply
        if faults.error_kind == "close":
            raise _Dropped
        if faults.error_kind == "not-json":
            return Reply(200, b"<html>Oops</html>\n", b"text/html")
        return Reply(500, b"injected failure\n", b"text/plain")


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


def build_parser() -> OneLineParser:
    """The Places server's command line, and the faults' options."""
    parser = command_line(PROG)
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
    parser.add_argument("--seed", type=int, help="seed for latency and errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        latency = parse_latency(args.latency)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 <= args.error_rate <= 1:
        parser.error("--error-rate must be between 0 and 1")
    faults = Faults(latency, args.error_rate, args.error_kind, args.hang)
    server = FaultyPlacesServer(faults, key_policy(args), random.Random(args.seed))
    return run(server, args.host, args.port, PROG)


if __name__ == "__main__":
    sys.exit(main())
