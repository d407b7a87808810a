"""What ``--metrics-port`` serves, for either event loop: Prometheus text and ``/healthz``.

The servers keep plain integer counters where they act
(:class:`trioherd.core.counters.Counters`, and :class:`MeteredPlaces` here);
nothing is formatted until a scrape asks. Then :class:`HerdCollector` reads
the counters and the live state (table sizes, links, outboxes) and
``prometheus_client`` writes the text. :func:`http_answer` turns a request
head into the whole HTTP response, so that the trio and asyncio responders
(``trioherd/metrics_server.py``, ``bench/asyncio_herd/metrics_server.py``)
only move bytes.

Everything is labelled by ``server`` (one process may run several) and,
for links, ``peer``. Places figures are the process's: its servers share
one Places source.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from trioherd import __version__
from trioherd.core.counters import Histogram
from trioherd.core.places import NearbyResponse, PlacesAnswer, PlacesQuery, PlacesSource
from trioherd.core.state import ServerState

#: Upper bounds, in seconds, of the Places latency histogram's buckets.
PLACES_LATENCY_BOUNDS_S = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LinkView(Protocol):
    """What the exporter reads of a peer link."""

    @property
    def connected(self) -> bool: ...


class ServerView(Protocol):
    """What the exporter reads of a herd server (trio's and asyncio's both fit)."""

    @property
    def state(self) -> ServerState: ...

    @property
    def links(self) -> Mapping[str, LinkView]: ...

    @property
    def stopping(self) -> bool: ...


class MeteredPlaces:
    """A Places source that counts its answers by status and times them.

    Wraps the process's source only when metrics are on; the outcome is the
    Google status of the answer (``UNKNOWN_ERROR`` for our own failures and
    timeouts, see :mod:`trioherd.places`).
    """

    def __init__(self, source: PlacesSource) -> None:
        self.source = source
        self.description = source.description
        self.computed_here = source.computed_here
        # The usual outcomes are there from the start, so a rate has a base.
        self.by_status = dict.fromkeys(("OK", "ZERO_RESULTS", "UNKNOWN_ERROR"), 0)
        self.latency = Histogram(PLACES_LATENCY_BOUNDS_S)

    async def nearby(self, query: PlacesQuery) -> NearbyResponse:
        started = time.monotonic()
        response = await self.source.nearby(query)
        self.latency.observe(time.monotonic() - started)
        if isinstance(response, PlacesAnswer):
            # The status is in the body: counted when the reply's turn at
            # the CPU decodes it, not decoded here (PlacesAnswer says why).
            return _CountedAnswer(response.status_code, response.body, self)
        self.count(response)
        return response

    def count(self, response: dict[str, Any]) -> None:
        """Count one answer under its Google status."""
        status = str(response.get("status", "MISSING"))
        self.by_status[status] = self.by_status.get(status, 0) + 1


@dataclass(frozen=True, slots=True)
class _CountedAnswer(PlacesAnswer):
    """An HTTP answer that counts its status in ``meter`` when decoded."""

    meter: MeteredPlaces

    def decode(self) -> dict[str, Any]:
        response = PlacesAnswer.decode(self)
        self.meter.count(response)
        return response


def _no_drops() -> int:
    return 0


class MetricsBoard:
    """Everything one process's metrics endpoint reports.

    Args:
        implementation: ``trio``, ``asyncio``, ``anyio-trio``...: for ``trioherd_build_info``.
        places: the metered Places source, if there is one.
        dropped_log_records: how many log records the log writer has
            dropped so far (:meth:`trioherd.logs.HerdLogs.dropped_records`:
            its buffers are bounded, and a disk that fails loses records).
            Without one the count stays 0.
    """

    def __init__(
        self,
        implementation: str,
        places: MeteredPlaces | None = None,
        dropped_log_records: Callable[[], int] = _no_drops,
    ) -> None:
        self.implementation = implementation
        self.places = places
        self.dropped_log_records = dropped_log_records
        #: The running servers by name; empty until the herd listens.
        self.servers: Mapping[str, ServerView] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HerdCollector(self))

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether every server listens, and the ``/healthz`` document."""
        servers = {
            name: {
                "listening": not server.stopping,
                "links_up": sum(link.connected for link in server.links.values()),
                "links_total": len(server.links),
            }
            for name, server in self.servers.items()
        }
        healthy = bool(servers) and all(s["listening"] for s in servers.values())
        status = "ok" if healthy else "stopping" if servers else "starting"
        return healthy, {"status": status, "listening": healthy, "servers": servers}


class HerdCollector(Collector):
    """Reads a :class:`MetricsBoard` at each scrape."""

    def __init__(self, board: MetricsBoard) -> None:
        self._board = board

    def collect(self) -> Iterator[Metric]:
        board = self._board
        info = GaugeMetricFamily(
            "trioherd_build_info", "trioherd's version and event loop", labels=["version", "loop"]
        )
        info.add_metric([__version__, board.implementation], 1)
        yield info
        yield from self._servers(board.servers)
        if board.places is not None:
            yield from self._places(board.places)
        dropped = CounterMetricFamily(
            "trioherd_log_records_dropped", "log records the log writer could not keep up with"
        )
        dropped.add_metric([], board.dropped_log_records())
        yield dropped

    def _servers(self, servers: Mapping[str, ServerView]) -> Iterator[Metric]:
        s = ["server"]
        open_ = GaugeMetricFamily("trioherd_connections_open", "connections open now", labels=s)
        accepted = CounterMetricFamily(
            "trioherd_connections", "connections accepted (clients and peers' links)", labels=s
        )
        lines = CounterMetricFamily(
            "trioherd_lines",
            "lines received, by first word (at: on peer links)",
            labels=["server", "kind"],
        )
        invalid = CounterMetricFamily(
            "trioherd_invalid_lines", "lines answered with '? ...'", labels=s
        )
        replies = CounterMetricFamily(
            "trioherd_replies", "replies owed to clients, by kind", labels=["server", "kind"]
        )
        stored = CounterMetricFamily(
            "trioherd_updates_stored",
            "location updates that changed the table, by where they came from",
            labels=["server", "source"],
        )
        table = GaugeMetricFamily(
            "trioherd_table_clients", "clients in the location table", labels=s
        )
        sp = ["server", "peer"]
        up = GaugeMetricFamily(
            "trioherd_link_up", "1 if our link to the peer is connected", labels=sp
        )
        outbox = GaugeMetricFamily(
            "trioherd_link_outbox_records", "records owed to the peer, not yet sent", labels=sp
        )
        connects = CounterMetricFamily(
            "trioherd_link_connects",
            "connections made by our link to the peer (the first, then each reconnect)",
            labels=sp,
        )
        lag = HistogramMetricFamily(
            "trioherd_flood_lag_seconds",
            "time from the IAMAT's arrival at the server that took it to the update's "
            "arrival here (clocks of different hosts included)",
            labels=s,
        )
        for name, server in servers.items():
            state = server.state
            c = state.counters
            open_.add_metric([name], c.connections_opened - c.connections_closed)
            accepted.add_metric([name], c.connections_opened)
            for kind, count in (
                ("iamat", c.lines_iamat),
                ("whatsat", c.lines_whatsat),
                ("peer", c.lines_peer),
                ("at", c.lines_at),
                ("other", c.lines_other),
            ):
                lines.add_metric([name, kind], count)
            invalid.add_metric([name], c.lines_invalid)
            for kind, count in (
                ("at", c.replies_at),
                ("whatsat", c.replies_whatsat),
                ("invalid", c.lines_invalid),
            ):
                replies.add_metric([name, kind], count)
            stored.add_metric([name, "client"], c.stored_from_clients)
            stored.add_metric([name, "peer"], c.stored_from_peers)
            table.add_metric([name], len(state.table))
            for peer, link in server.links.items():
                up.add_metric([name, peer], int(link.connected))
                outbox.add_metric([name, peer], state.owed(peer))
                connects.add_metric([name, peer], c.link_connects.get(peer, 0))
            lag.add_metric([name], *_buckets(c.flood_lag))
        yield from (open_, accepted, lines, invalid, replies, stored, table, up, outbox, connects)
        yield lag

    def _places(self, places: MeteredPlaces) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "trioherd_places_requests",
            "Places answers by status (UNKNOWN_ERROR: failed or timed out)",
            labels=["status"],
        )
        for status, count in sorted(places.by_status.items()):
            requests.add_metric([status], count)
        yield requests
        latency = HistogramMetricFamily(
            "trioherd_places_latency_seconds", "time to a Places answer, queueing included"
        )
        latency.add_metric([], *_buckets(places.latency))
        yield latency


def _buckets(histogram: Histogram) -> tuple[list[tuple[str, float]], float]:
    """A histogram as Prometheus wants it: cumulative buckets, and the sum."""
    cumulative = 0
    buckets = []
    for bound, count in zip([*histogram.bounds, float("inf")], histogram.counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
    return buckets, histogram.sum


#: The longest request head read; a scrape's is a few hundred bytes.
MAX_REQUEST_HEAD = 8192


def http_answer(head: bytes, board: MetricsBoard) -> bytes:
    """The whole HTTP/1.1 response to a request whose head (or start) is ``head``.

    ``GET /metrics``: Prometheus text. ``GET /healthz``: JSON, 200 while
    every server listens, 503 while starting or stopping. Every response
    closes the connection.
    """
    request_line = head.split(b"\r\n", 1)[0].split()
    if len(request_line) != 3 or not request_line[2].startswith(b"HTTP/1."):
        return _response(400, "text/plain; charset=utf-8", b"bad request\n")
    method, target, _ = request_line
    if method not in (b"GET", b"HEAD"):
        return _response(405, "text/plain; charset=utf-8", b"GET only\n", b"Allow: GET, HEAD\r\n")
    path = target.split(b"?", 1)[0]
    try:
        if path == b"/metrics":
            body = generate_latest(board.registry)
            response = _response(200, CONTENT_TYPE_LATEST, body)
        elif path == b"/healthz":
            healthy, document = board.health()
            body = json.dumps(document).encode() + b"\n"
            response = _response(200 if healthy else 503, "application/json", body)
        else:
            response = _response(404, "text/plain; charset=utf-8", b"try /metrics or /healthz\n")
    except Exception as exc:
        # A bug in an exporter must cost a scrape, never the herd.
        body = f"cannot report: {type(exc).__name__}: {exc}\n".encode()
        response = _response(500, "text/plain; charset=utf-8", body)
    if method == b"HEAD":
        return response.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    return response


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _response(status: int, content_type: str, body: bytes, extra: bytes = b"") -> bytes:
    reason = _REASONS[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    ).encode()
    return head + extra + b"\r\n" + body
