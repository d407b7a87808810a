"""Our Places server's API logic: Google's parameters, statuses and paging."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from trioherd.core.places import metres
from trioherd.offline.index import PlaceIndex
from trioherd.offline.nearby import (
    PAGE_SIZE,
    KeyPolicy,
    NearbyRequest,
    decode_page_token,
    encode_page_token,
    nearby_search,
    parse_request,
)


@pytest.fixture(scope="module")
def index() -> PlaceIndex:
    # 30 villages 100 m apart along a meridian, the most populous first.
    return PlaceIndex.from_records(
        {
            "geonameid": i + 1,
            "name": f"Village {i}",
            "latitude": 10 + i * 0.0009,
            "longitude": 20.0,
            "countrycode": "XX",
            "population": 10_000 - i,
        }
        for i in range(30)
    )


def test_ok_with_google_layout(index: PlaceIndex) -> None:
    response = nearby_search(index, {"location": "10,20", "radius": "350"})
    assert response["status"] == "OK"
    assert [r["name"] for r in response["results"]] == [f"Village {i}" for i in range(4)]
    assert list(response) == ["html_attributions", "results", "status"]


def test_zero_results(index: PlaceIndex) -> None:
    response = nearby_search(index, {"location": "-10,-20", "radius": "50000"})
    assert response["status"] == "ZERO_RESULTS"
    assert response["results"] == []


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"radius": "100"},
        {"location": "10,20"},
        {"location": "10", "radius": "100"},
        {"location": "abc,20", "radius": "100"},
        {"location": "91,20", "radius": "100"},
        {"location": "10,20", "radius": "0"},
        {"location": "10,20", "radius": "-5"},
        {"location": "10,20", "radius": "50001"},
        {"location": "10,20", "radius": "nan"},
        {"location": "10,20", "radius": "1e3"},
        {"pagetoken": "not-a-token"},
    ],
)
def test_invalid_requests(index: PlaceIndex, params: Mapping[str, str]) -> None:
    response = nearby_search(index, params)
    assert response["status"] == "INVALID_REQUEST"
    assert response["error_message"]
    assert response["results"] == []


def test_keys(index: PlaceIndex) -> None:
    params = {"location": "10,20", "radius": "100"}
    assert nearby_search(index, params)["status"] == "OK"
    required = KeyPolicy(required=True)
    assert nearby_search(index, params, required)["status"] == "REQUEST_DENIED"
    assert nearby_search(index, {**params, "key": "any"}, required)["status"] == "OK"
    exact = KeyPolicy(required=True, expected="s3cret")
    assert nearby_search(index, {**params, "key": "guess"}, exact)["status"] == "REQUEST_DENIED"
    assert nearby_search(index, {**params, "key": "s3cret"}, exact)["status"] == "OK"


def test_pages_of_twenty_with_a_token_for_the_next(index: PlaceIndex) -> None:
    first = nearby_search(index, {"location": "10,20", "radius": "50000"})
    assert len(first["results"]) == PAGE_SIZE
    token = first["next_page_token"]
    second = nearby_search(index, {"pagetoken": token})
    assert [r["name"] for r in second["results"]] == [f"Village {i}" for i in range(20, 30)]
    assert "next_page_token" not in second


def test_tokens_round_trip_and_garbage_is_refused() -> None:
    request = NearbyRequest(34.06893, -118.445127, 10000.0, 40)
    assert decode_page_token(encode_page_token(request)) == request
    for token in ["", "!!!", "bm90LWZvdXI", encode_page_token(NearbyRequest(95, 0, 1, 0))]:
        assert decode_page_token(token) is None


def test_parse_request_accepts_google_forms() -> None:
    assert parse_request({"location": "34.06,-118.44", "radius": "10000.5"}) == NearbyRequest(
        34.06, -118.44, 10000.5
    )


@pytest.mark.parametrize(
    ("radius_m", "text"),
    [(10000.0, "10000"), (500.5, "500.5"), (0.01, "0.01"), (1e-9, "0.001"), (50000.0, "50000")],
)
def test_metres_never_uses_an_exponent(radius_m: float, text: str) -> None:
    assert metres(radius_m) == text
