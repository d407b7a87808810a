"""--metrics-port: Prometheus text and /healthz, scraped while a herd works."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from trioherd.core.config import CS131_HERD
from trioherd.core.places import NearbyResponse, PlacesAnswer, PlacesQuery, decoded
from trioherd.herd import RunningHerd, run_herd
from trioherd.logs import HerdLogs
from trioherd.metrics import MeteredPlaces, MetricsBoard, http_answer
from trioherd.metrics_server import serve_metrics
from trioherd.places import OfflinePlaces

from support import WAIT, cs131_herd_on, eventually, talk

ROOT = Path(__file__).resolve().parent.parent

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text page, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def get(port: int, path: str) -> tuple[int, bytes]:
    """A GET on loopback: the status and the body."""
    with trio.fail_after(WAIT):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
            response = b""
            while data := await stream.receive_some(65536):
                response += data
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def scrape(port: int) -> Samples:
    status, body = await get(port, "/metrics")
    assert status == 200
    return parse(body.decode())


async def test_counters_move_under_a_small_load(
    tmp_path: Path, offline_places: OfflinePlaces
) -> None:
    metered = MeteredPlaces(offline_places)
    board = MetricsBoard("trio", metered)
    with HerdLogs(tmp_path / "logs", CS131_HERD.names, echo_errors=False) as logs:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_metrics, board, "127.0.0.1", 0)
            status, body = await get(port, "/healthz")
            assert (status, json.loads(body)["status"]) == (503, "starting")

            herd = cs131_herd_on([0] * 5)
            running: RunningHerd = await nursery.start(
                partial(run_herd, herd, herd.names, metered, logs, handle_signals=False)
            )
            board.servers = running.servers

            async def all_links_up() -> bool:
                status, body = await get(port, "/healthz")
                servers = json.loads(body)["servers"].values()
                return status == 200 and all(s["links_up"] == s["links_total"] for s in servers)

            await eventually(all_links_up, "every link up")
            before = await scrape(port)
            hill = running.addresses["Hill"]
            iamats = b"".join(b"IAMAT m%d +34.068930-118.445127 %d.5\n" % (i, i) for i in range(20))
            await talk(hill, iamats + b"WHATSAT m1 10 3\nWHATSAT m2 10 3\nnonsense\nIAMAT x\n")

            async def everyone_has_all() -> bool:
                now = await scrape(port)
                return all(
                    value(now, "trioherd_table_clients", server=name) == 20 for name in herd.names
                )

            await eventually(everyone_has_all, "the flood to reach every server")
            after = await scrape(port)
            nursery.cancel_scope.cancel()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("trioherd_lines_total", server="Hill", kind="iamat") == 21
    assert moved("trioherd_lines_total", server="Hill", kind="whatsat") == 2
    assert moved("trioherd_lines_total", server="Hill", kind="other") == 1
    assert moved("trioherd_invalid_lines_total", server="Hill") == 2
    assert moved("trioherd_replies_total", server="Hill", kind="at") == 20
    assert moved("trioherd_replies_total", server="Hill", kind="whatsat") == 2
    assert moved("trioherd_updates_stored_total", server="Hill", source="client") == 20
    assert moved("trioherd_connections_total", server="Hill") >= 1
    # Campbell is two hops from Hill: every update came over a link, and
    # was timed from Hill's receipt to Campbell's.
    assert moved("trioherd_updates_stored_total", server="Campbell", source="peer") == 20
    assert moved("trioherd_lines_total", server="Campbell", kind="at") >= 20
    assert moved("trioherd_flood_lag_seconds_count", server="Campbell") == 20
    assert 0 < moved("trioherd_flood_lag_seconds_sum", server="Campbell") < 20 * WAIT
    assert value(after, "trioherd_flood_lag_seconds_bucket", server="Campbell", le="+Inf") == 20
    for server in CS131_HERD.servers:
        assert value(after, "trioherd_table_clients", server=server.name) == 20
        for peer in server.peers:
            assert value(after, "trioherd_link_up", server=server.name, peer=peer) == 1
            assert value(after, "trioherd_link_connects_total", server=server.name, peer=peer) >= 1
            assert value(after, "trioherd_link_outbox_records", server=server.name, peer=peer) >= 0
        # Every neighbour's link into this server is a connection still open.
        assert value(after, "trioherd_connections_open", server=server.name) >= len(server.peers)
    assert moved("trioherd_places_requests_total", status="OK") == 2
    assert moved("trioherd_places_latency_seconds_count") == 2
    assert value(after, "trioherd_log_records_dropped_total") == 0

    running.stop()
    healthy, document = board.health()
    assert not healthy
    assert document["status"] == "stopping"


def test_http_answers_what_it_can() -> None:
    board = MetricsBoard("trio")
    assert http_answer(b"GET /nowhere HTTP/1.1\r\n\r\n", board).startswith(b"HTTP/1.1 404 ")
    assert http_answer(b"POST /metrics HTTP/1.1\r\n\r\n", board).startswith(b"HTTP/1.1 405 ")
    assert http_answer(b"\x16\x03\x01 junk", board).startswith(b"HTTP/1.1 400 ")
    head = http_answer(b"HEAD /metrics HTTP/1.1\r\n\r\n", board)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert head.endswith(b"\r\n\r\n")
    assert b"Content-Length: 0\r\n" not in head


@pytest.mark.parametrize(
    ("module", "loop"),
    [
        ("bench.asyncio_herd", "asyncio"),
        # The anyio backend less like native trio; the metrics code is one.
        ("bench.anyio_herd --backend asyncio", "anyio-asyncio"),
    ],
)
def test_the_other_herds_serve_the_same(module: str, loop: str, tmp_path: Path) -> None:
    config = tmp_path / "herd.toml"
    config.write_text('[servers.Hill]\nport = 0\npeers = ["Jaquez"]\n[servers.Jaquez]\nport = 0\n')
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", *module.split(), "--all", "--config", str(config)),
            *("--log-dir", str(tmp_path / "logs"), "--metrics-port", "0"),
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        addresses: dict[str, str] = {}
        while len(addresses) < 3:
            line = server.stderr.readline()
            assert line, f"{module} exited"
            if line.startswith("Metrics on "):
                addresses["metrics"] = line.split()[-1].removesuffix("/metrics")
            elif " listening on " in line:
                name, _, _, address = line.split()[:4]
                addresses[name] = address.rstrip(",")
        host, port = addresses["Hill"].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=WAIT) as client:
            client.sendall(b"IAMAT a +1+1 1\n")
            assert client.recv(100).startswith(b"AT Hill ")

        def fetch(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(addresses["metrics"] + path, timeout=WAIT) as reply:
                    return reply.status, reply.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        samples: Samples = {}
        for _ in range(int(WAIT / 0.05)):
            samples = parse(fetch("/metrics")[1])
            if value(samples, "trioherd_flood_lag_seconds_count", server="Jaquez") == 1:
                break
            time.sleep(0.05)  # the update is in another process: poll, bounded
        assert value(samples, "trioherd_build_info", version="0.1.0", loop=loop) == 1
        assert value(samples, "trioherd_lines_total", server="Hill", kind="iamat") == 1
        assert value(samples, "trioherd_flood_lag_seconds_count", server="Jaquez") == 1
        assert value(samples, "trioherd_link_up", server="Hill", peer="Jaquez") == 1
        status, body = fetch("/healthz")
        assert status == 200
        assert json.loads(body)["servers"]["Hill"] == {
            "listening": True,
            "links_up": 1,
            "links_total": 1,
        }
    finally:
        server.terminate()
        assert server.wait(WAIT) == 0


@pytest.mark.parametrize("module", ["trioherd", "bench.asyncio_herd"])
def test_log_lines_the_disk_refused_are_counted_at_the_endpoint(
    tmp_path: Path, module: str
) -> None:
    config = tmp_path / "herd.toml"
    config.write_text("[servers.Solo]\nport = 0\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    # Every write to this log fails (ENOSPC), as on a full disk.
    (logs / "Solo.log").symlink_to("/dev/full")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", module, "Solo", "--config", str(config)),
            *("--log-dir", str(logs), "--metrics-port", "0"),
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        addresses: dict[str, str] = {}
        while len(addresses) < 2:
            line = server.stderr.readline()
            assert line, f"{module} exited"
            if line.startswith("Metrics on "):
                addresses["metrics"] = line.split()[-1]
            elif " listening on " in line:
                addresses["Solo"] = line.split()[3].rstrip(",")
        host, port = addresses["Solo"].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=WAIT) as client:
            client.sendall(b"IAMAT a +1+1 1\n")
            assert client.recv(100).startswith(b"AT Solo ")
        dropped = 0.0
        for _ in range(int(WAIT / 0.05)):
            with urllib.request.urlopen(addresses["metrics"], timeout=WAIT) as reply:
                dropped = value(parse(reply.read().decode()), "trioherd_log_records_dropped_total")
            # The line in and the reply out, at least, once the writer has tried.
            if dropped >= 2:
                break
            time.sleep(0.05)  # the writer thread is in another process: poll, bounded
        assert dropped >= 2
    finally:
        server.terminate()
        assert server.wait(WAIT) == 0


async def test_an_http_answer_is_counted_when_its_reply_decodes_it() -> None:
    class HttpSource:
        description = "canned HTTP answers"
        computed_here = False

        async def nearby(self, query: PlacesQuery) -> NearbyResponse:
            if query.radius_m > 1:
                return PlacesAnswer(200, b'{"results": [], "status": "ZERO_RESULTS"}')
            return PlacesAnswer(503, b"busy")

    metered = MeteredPlaces(HttpSource())
    query = PlacesQuery(b"AT x", 1.0, 2.0, 10.0, 5)
    answers = [await metered.nearby(query), await metered.nearby(replace(query, radius_m=1.0))]
    # Not decoded yet, so not counted yet: the reply's turn decodes it.
    assert all(isinstance(answer, PlacesAnswer) for answer in answers)
    assert sum(metered.by_status.values()) == 0
    assert sum(metered.latency.counts) == 2
    assert [decoded(answer)["status"] for answer in answers] == ["ZERO_RESULTS", "UNKNOWN_ERROR"]
    assert metered.by_status == {"OK": 0, "ZERO_RESULTS": 1, "UNKNOWN_ERROR": 1}
