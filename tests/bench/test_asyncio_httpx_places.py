"""The asyncio herd's httpx control (``--places-transport httpx``) against a loopback server."""

from __future__ import annotations

import asyncio

from bench.asyncio_herd.places import HttpxPlaces, open_places
from trioherd.core.places import PlacesQuery, decoded
from trioherd.options import PlacesOptions

QUERY = PlacesQuery(b"AT Solo +0.1 kiwi +34.1-118.4 5", 34.06893, -118.445127, 10000.0, 5)
KEY = "AIzaSy-not-a-real-key-0123456789"
OK_JSON = b'{"html_attributions": [], "results": [], "status": "ZERO_RESULTS"}'


def test_httpx_on_asyncio_answers_and_reports_failures() -> None:
    async def main() -> list[dict[str, object]]:
        answers = [(b"200 OK", OK_JSON), (b"503 Busy", b"no")]

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while answers and await reader.readuntil(b"\r\n\r\n"):
                status, body = answers.pop(0)
                head = b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
                writer.write(head + body)
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/maps/api/place/nearbysearch/json"
        options = PlacesOptions(url=url, key=KEY, timeout=5.0, concurrency=1, transport="httpx")
        async with server, open_places(options) as places:
            assert isinstance(places, HttpxPlaces)
            return [decoded(await places.nearby(QUERY)) for _ in range(3)]

    ok, busy, gone = asyncio.run(asyncio.wait_for(main(), 10))
    assert ok["status"] == "ZERO_RESULTS"
    assert busy["error_message"] == "Places answered HTTP 503"
    assert str(gone["error_message"]).startswith("Places request failed: ")
    assert KEY not in str(gone)
