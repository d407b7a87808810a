"""WHATSAT over real HTTP: httpx against our own Places server on loopback."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from bench.places_faults import Faults, parse_latency
from trioherd.core.config import build_herd
from trioherd.core.connection import PLACES_FAILED
from trioherd.core.places import PlacesSource
from trioherd.herd import RunningHerd
from trioherd.offline.nearby import NEARBY_PATH, KeyPolicy
from trioherd.options import PlacesOptions
from trioherd.places import HttpPlaces, open_places

from support import WAIT, free_ports, herd_running, places_server, talk

KEY = "AIzaSy-not-a-real-key-0123456789"
IAMAT = b"IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n"


@asynccontextmanager
async def solo_over_http(
    tmp_path: Path, url: str, **options: float | str
) -> AsyncIterator[tuple[RunningHerd, PlacesSource]]:
    """One herd server whose WHATSAT goes over HTTP to ``url``."""
    places_options = PlacesOptions(url=url, **options)  # type: ignore[arg-type]
    async with open_places(places_options) as places:
        herd = build_herd({"Solo": ("127.0.0.1", 0, [])})
        async with herd_running(herd, ["Solo"], tmp_path, places) as running:  # type: ignore[arg-type]
            yield running, places


async def whatsat(
    running: RunningHerd, radius: bytes = b"10", bound: bytes = b"5"
) -> tuple[bytes, dict]:  # type: ignore[type-arg]
    solo = running.addresses["Solo"]
    at_line = (await talk(solo, IAMAT)).rstrip(b"\n")
    reply = await talk(solo, b"WHATSAT kiwi %s %s\n" % (radius, bound))
    first, _, body = reply.partition(b"\n")
    assert first == at_line
    assert reply.endswith(b"\n\n")
    assert b"\n\n" not in body.rstrip(b"\n")
    return reply, json.loads(body)


async def concurrent_whatsats(running: RunningHerd, count: int) -> list[str]:
    """Tell Solo where kiwi is, then send ``count`` WHATSATs at once; their statuses."""
    solo = running.addresses["Solo"]
    await talk(solo, IAMAT)
    statuses: list[str] = []

    async def one() -> None:
        reply = await talk(solo, b"WHATSAT kiwi 5 2\n")
        statuses.append(json.loads(reply.split(b"\n", 1)[1])["status"])

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return statuses


async def test_whatsat_end_to_end_over_http(tmp_path: Path) -> None:
    async with places_server() as (server, url), solo_over_http(tmp_path, url) as (running, places):
        assert isinstance(places, HttpPlaces)
        _, response = await whatsat(running, b"10", b"3")
        assert response["status"] == "OK"
        assert len(response["results"]) == 3
        assert response["results"][0]["name"] == "Santa Monica"
        assert server.requests == 1
    log = (tmp_path / "Solo.log").read_text()
    assert "places: Nearby Search over HTTP at http://127.0.0.1:" in log


async def test_google_statuses_pass_through_and_the_key_stays_secret(tmp_path: Path) -> None:
    keys = KeyPolicy(required=True, expected=KEY)
    async with places_server(keys=keys) as (_, url):
        async with solo_over_http(tmp_path / "good", url, key=KEY) as (running, places):
            assert KEY not in places.description
            reply, response = await whatsat(running)
            assert response["status"] == "OK"
            assert KEY.encode() not in reply
        async with solo_over_http(tmp_path / "bad", url, key=KEY[::-1]) as (running, _):
            reply, response = await whatsat(running)
            assert response["status"] == "REQUEST_DENIED"
            # Google's own words go to the log; the client gets ours.
            assert response["error_message"] == PLACES_FAILED
    logs = [(tmp_path / run / "Solo.log").read_text() for run in ("good", "bad")]
    assert "REQUEST_DENIED: The provided API key is invalid." in logs[1]
    for log in logs:
        assert KEY not in log
        assert KEY[::-1] not in log


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (Faults(error_rate=1.0, error_kind="status"), "Places answered HTTP 500"),
        (Faults(error_rate=1.0, error_kind="not-json"), "a body that is not JSON"),
        (Faults(error_rate=1.0, error_kind="close"), "Places request failed: "),
        (Faults(hang=True), "timed out after 0.3 s"),
    ],
    ids=["http-500", "not-json", "dropped", "never-answers"],
)
async def test_failures_give_a_well_formed_unknown_error_reply(
    tmp_path: Path, faults: Faults, message: str
) -> None:
    async with (
        places_server(faults) as (_, url),
        solo_over_http(tmp_path, url, key=KEY, timeout=0.3) as (running, _),
    ):
        with trio.fail_after(WAIT):
            reply, response = await whatsat(running)
    assert response["status"] == "UNKNOWN_ERROR"
    assert response["error_message"] == PLACES_FAILED
    assert response["results"] == []
    assert KEY.encode() not in reply
    log = (tmp_path / "Solo.log").read_text()
    assert "WARNING places: UNKNOWN_ERROR: " in log
    assert message in log
    assert KEY not in log


async def test_connection_refused(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}{NEARBY_PATH}?key={KEY}"
    async with solo_over_http(tmp_path, url, key=KEY) as (running, _):
        reply, response = await whatsat(running)
    assert response["status"] == "UNKNOWN_ERROR"
    # The client learns that Places failed, not where Places lives.
    assert response["error_message"] == PLACES_FAILED
    assert b"127.0.0.1" not in reply
    assert KEY.encode() not in reply
    assert (
        "places: UNKNOWN_ERROR: Places request failed: ConnectError"
        in (tmp_path / "Solo.log").read_text()
    )


async def test_a_hung_places_request_holds_up_no_other_client(tmp_path: Path) -> None:
    async with (
        places_server(Faults(hang=True)) as (_, url),
        solo_over_http(tmp_path, url, timeout=1.5) as (running, _),
    ):
        solo = running.addresses["Solo"]
        await talk(solo, IAMAT)
        async with await trio.open_tcp_stream(*solo) as waiting:
            await waiting.send_all(b"WHATSAT kiwi 10 5\n")
            # Other clients are served while that WHATSAT waits on Places.
            for i in range(5):
                reply = await talk(solo, b"IAMAT other%d +1+1 5\nWHATSAT nobody 1 1\n" % i)
                assert reply.split(b"\n")[1] == b"? WHATSAT nobody 1 1"
            readable, _, _ = select.select([waiting.socket.fileno()], [], [], 0)
            assert not readable, "the WHATSAT was answered while Places still hung"
            with trio.fail_after(WAIT):
                late = await waiting.receive_some(65536)
    assert late.startswith(b"AT Solo")


async def test_many_concurrent_whatsats_share_a_bounded_pool(tmp_path: Path) -> None:
    clients, pool = 120, 16
    async with (
        places_server(Faults(latency=(0.01, 0.03))) as (server, url),
        solo_over_http(tmp_path, url, concurrency=pool) as (running, _),
    ):
        statuses = await concurrent_whatsats(running, clients)
    assert statuses == ["OK"] * clients
    assert server.requests == clients
    assert server.max_in_flight <= pool
    assert server.connections <= pool  # kept alive and reused, never more than the pool


async def test_the_pool_recovers_from_dropped_and_abandoned_requests(tmp_path: Path) -> None:
    # Half the requests lose their connection, and some time out while in
    # flight: every WHATSAT is still answered, and the pool's two
    # connections are neither lost nor doubled by the failures.
    pool = 2
    faults = Faults(latency=(0.0, 0.4), error_rate=0.5, error_kind="close")
    async with (
        places_server(faults) as (server, url),
        solo_over_http(tmp_path, url, concurrency=pool, timeout=0.3) as (running, places),
    ):
        statuses = await concurrent_whatsats(running, 30)
        # The server counts a request its client gave up on (timed out at
        # 0.3 s) until its own latency (up to 0.4 s) ends; by then the
        # client's connection may carry one new request, never two (a
        # second give-up takes 0.3 s more): at most two per connection.
        assert server.max_in_flight <= 2 * pool
        # Every transport is back, ready to lend (a white-box check: a lost
        # one would only show as timeouts).
        assert isinstance(places, HttpPlaces)
        assert len(places._idle) == pool
    assert len(statuses) == 30
    assert set(statuses) <= {"OK", "UNKNOWN_ERROR"}
    assert "OK" in statuses
    assert "UNKNOWN_ERROR" in statuses


async def test_pagination_over_http() -> None:
    async with places_server() as (_, url), httpx.AsyncClient() as client:
        first = await client.get(url, params={"location": "48.8566,2.3522", "radius": "50000"})
        assert first.headers["content-type"].startswith("application/json")
        body = first.json()
        assert len(body["results"]) == 20
        second = (await client.get(url, params={"pagetoken": body["next_page_token"]})).json()
        assert second["status"] == "OK"
        assert {r["place_id"] for r in body["results"]}.isdisjoint(
            r["place_id"] for r in second["results"]
        )
        assert (await client.get(url.replace("nearbysearch", "textsearch"))).status_code == 404
        assert (await client.post(url)).status_code == 405


async def test_kept_answers_are_per_query_and_per_key() -> None:
    paris = {"location": "48.8566,2.3522", "radius": "2000"}
    keys = KeyPolicy(expected=KEY)
    async with places_server(keys=keys) as (_, url), httpx.AsyncClient() as client:

        async def status(**params: str) -> str:
            return str((await client.get(url, params=params)).json()["status"])

        # A kept answer for one key is never the answer for another.
        assert await status(**paris, key=KEY) == "OK"
        assert await status(**paris, key="wrong") == "REQUEST_DENIED"
        assert await status(**paris, key=KEY) == "OK"
        assert await status(**paris) == "REQUEST_DENIED"
        # Asked again, the same bytes; another radius, another answer.
        again = [(await client.get(url, params={**paris, "key": KEY})).content for _ in "ab"]
        assert again[0] == again[1]
        wider = (await client.get(url, params={**paris, "radius": "50000", "key": KEY})).json()
        assert len(wider["results"]) > len(json.loads(again[0])["results"])


async def test_garbage_http_gets_400() -> None:
    async with places_server() as (_, url):
        port = int(url.split(":")[2].split("/")[0])
        reply = await talk(("127.0.0.1", port), b"NONSENSE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")


def test_latency_specs() -> None:
    assert parse_latency("100") == (0.1, 0.1)
    assert parse_latency("50-150") == (0.05, 0.15)
    for bad in ("-5", "150-50", "x", "nan", "inf"):
        with pytest.raises(ValueError, match="latency"):
            parse_latency(bad)


def test_the_places_server_command() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "trioherd.places_server", "--port", "0", "--require-key"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()  # printed once it listens
        url = banner.split()[-1]
        assert url.endswith(NEARBY_PATH)
        params = {"location": "34.068930,-118.445127", "radius": "10000"}
        denied = httpx.get(url, params=params, timeout=WAIT).json()
        assert denied["status"] == "REQUEST_DENIED"
        ok = httpx.get(url, params={**params, "key": "k"}, timeout=WAIT).json()
        assert ok["status"] == "OK"
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT) == 0
    finally:
        process.kill()
        process.wait()
        if process.stderr:
            process.stderr.close()


def test_the_places_server_command_line_errors() -> None:
    runs = [
        ("trioherd.places_server", ["--port", "-1"]),
        ("trioherd.places_server", ["--latency", "100"]),  # a fault: not the product's
        ("bench.places_faults", ["--latency", "slow"]),
        ("bench.places_faults", ["--error-rate", "2"]),
        ("bench.places_faults", ["--port", "65536"]),
    ]
    for module, args in runs:
        result = subprocess.run(
            [sys.executable, "-m", module, *args],
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        assert result.returncode == 2, (module, args)
        assert result.stderr.count("\n") == 1
