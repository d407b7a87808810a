"""Summaries of latency samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (``fraction`` in (0, 1])."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(samples_ns: Sequence[int]) -> dict[str, float]:
    """Median, p99, mean and max of latencies given in ns, as milliseconds."""
    ordered = sorted(samples_ns)
    if not ordered:
        return {"p50_ms": math.nan, "p99_ms": math.nan, "mean_ms": math.nan, "max_ms": math.nan}
    return {
        "p50_ms": percentile(ordered, 0.50) / 1e6,
        "p99_ms": percentile(ordered, 0.99) / 1e6,
        "mean_ms": sum(ordered) / len(ordered) / 1e6,
        "max_ms": ordered[-1] / 1e6,
    }


#: The percentiles :func:`spread_us` reports.
SPREAD = (50, 90, 99, 99.9)


def spread_us(samples_ns: Sequence[int]) -> dict[str, float]:
    """Percentiles (p50, p90, p99, p99.9), mean and max of ns values, in µs; ``n`` the count."""
    ordered = sorted(samples_ns)
    if not ordered:
        return {}
    out = {f"p{p:g}": percentile(ordered, p / 100) / 1e3 for p in SPREAD}
    out["mean"] = sum(ordered) / len(ordered) / 1e3
    out["max"] = ordered[-1] / 1e3
    out["n"] = len(ordered)
    return out


def histogram(samples_ns: Sequence[int], bins_per_decade: int = 20) -> dict[str, list[float]]:
    """Latencies as a log-spaced histogram (bin lower edges in ms, and counts).

    Kept in the results instead of every sample: small, and enough to draw
    a latency distribution.
    """
    counts: dict[int, int] = {}
    for sample in samples_ns:
        if sample > 0:
            index = math.floor(math.log10(sample / 1e6) * bins_per_decade)
            counts[index] = counts.get(index, 0) + 1
    edges = sorted(counts)
    return {
        "lower_ms": [round(10 ** (i / bins_per_decade), 6) for i in edges],
        "count": [float(counts[i]) for i in edges],
    }
