"""The side-by-side table, the targets, and the results file.

Every ratio is trio's figure over another implementation's, both taken in
the same run (and, by the runner's rotation, seconds apart): on a small,
shared, noisy machine absolute figures wander from run to run, ratios much
less. Whether a ratio is good depends on the metric: each row says with an
arrow whether higher (↑) or lower (↓) is better.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.faults import FAULTS
from bench.impls import BASELINE
from bench.workloads import FLOOD_ORDER
from trioherd.durable import SYNC_INTERVAL

HIGHER = "↑"
LOWER = "↓"

#: Schema version of the results file.
SCHEMA = 1


@dataclass(frozen=True)
class Metric:
    """A figure shown in the table: where it is in a record's figures, and how to read it."""

    path: str
    label: str
    better: str


_RATE = [
    Metric("throughput", "req/s", HIGHER),
    Metric("p50_ms", "p50 ms", LOWER),
    Metric("p99_ms", "p99 ms", LOWER),
]

_CPU = [
    Metric("hill_cpu_us", "Hill CPU µs/req", LOWER),
    Metric("herd_cpu_us", "herd CPU µs/req", LOWER),
]

METRICS: dict[str, list[Metric]] = {
    "ceiling": [Metric("throughput", "req/s", HIGHER), *_RATE[1:]],
    "iamat": [*_RATE, *_CPU],
    "churn": [Metric("throughput", "conn/s", HIGHER), *_RATE[1:]],
    "whatsat": [
        *_RATE,
        Metric("percent_of_ideal", "% of ideal", HIGHER),
        Metric("errors", "errors", LOWER),
        *_CPU,
    ],
    "flood": [
        metric
        for name in FLOOD_ORDER
        for metric in (
            Metric(f"servers.{name}.median_ms", f"{name} median ms", LOWER),
            Metric(f"servers.{name}.p99_ms", f"{name} p99 ms", LOWER),
        )
    ],
    "recovery": [
        Metric("reconverge_s", "reconverge s", LOWER),
        Metric("listening_s", "listening s", LOWER),
        Metric("lost", "lost updates", LOWER),
        Metric("crashed", "servers crashed", LOWER),
        Metric("acknowledged", "acknowledged", HIGHER),
    ],
    "memory-idle": [Metric("bytes_per_connection", "bytes/idle conn", LOWER)],
    "faults": [
        metric
        for fault in FAULTS
        for metric in (
            Metric(f"{fault}.lost", f"{fault}: lost updates", LOWER),
            Metric(f"{fault}.converged_s", f"{fault}: converge s", LOWER),
            Metric(f"{fault}.crashed", f"{fault}: servers crashed", LOWER),
            Metric(f"{fault}.acknowledged", f"{fault}: acknowledged", HIGHER),
        )
    ],
    "memory-table": [
        Metric("bytes_per_client", "bytes/client", LOWER),
        Metric("fill_throughput", "fill req/s", HIGHER),
    ],
}


def lookup(figures: Mapping[str, Any] | None, path: str) -> float | None:
    """A figure by dotted path (``servers.Campbell.median_ms``), or ``None``."""
    value: Any = figures
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def fmt(value: float | None) -> str:
    """A figure, to about three significant digits (whole numbers as they are)."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000 or value.is_integer():
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or ``None`` when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def combine_rounds(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One record per case and implementation: the median of its rounds.

    A case run in several rounds (``settings.rounds``) has a record per
    round. The combined record is the first round's, with every number in
    its ``figures`` and ``cpu`` replaced by the median over the rounds that
    produced figures, and ``rounds`` saying how many did. A round that
    failed is not hidden: the combined record carries its error. Other
    fields (latency histograms, say) are the first round's.
    """
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["kind"], record["case"], record["impl"]), []).append(record)
    combined: list[dict[str, Any]] = []
    for group in groups.values():
        measured = [r for r in group if r.get("figures")]
        record = dict(measured[0] if measured else group[0])
        if len(group) > 1:
            if measured:
                record["figures"] = _median_tree([r["figures"] for r in measured])
                record["cpu"] = _median_tree([r.get("cpu") or {} for r in measured])
            record["rounds"] = len(measured)
            record["error"] = next((r["error"] for r in group if r.get("error")), None)
        combined.append(record)
    return combined


def _median_tree(trees: Sequence[Any]) -> Any:
    """The median of each number found at the same place in every tree; else the first's."""
    first = trees[0]
    if isinstance(first, Mapping):
        return {
            key: _median_tree([tree[key] for tree in trees])
            if all(isinstance(tree, Mapping) and key in tree for tree in trees)
            else value
            for key, value in first.items()
        }
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in trees):
        return statistics.median(trees)
    return first


def _index(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    return {(r["kind"], r["case"], r["impl"]): r for r in records}


def table_rows(records: Sequence[Mapping[str, Any]], impls: Sequence[str]) -> list[list[str]]:
    """The table, header first: one row per case and metric, a column per implementation."""
    others = [name for name in impls if name != BASELINE] if BASELINE in impls else []
    header = ["workload", "case", "metric", *impls, *(f"{BASELINE}/{o}" for o in others)]
    rows = [header]
    index = _index(records)
    cases = list(dict.fromkeys((r["kind"], r["workload"], r["case"]) for r in records))
    for kind, workload, case in cases:
        if kind == "ceiling":
            continue
        for metric in METRICS.get(kind, []):
            values = {
                name: lookup((index.get((kind, case, name)) or {}).get("figures"), metric.path)
                for name in impls
            }
            failed = {
                name
                for name in impls
                if (index.get((kind, case, name)) or {}).get("error") is not None
            }
            cells = ["FAILED" if name in failed else fmt(values[name]) for name in impls]
            ratios = [ratio(values[BASELINE], values[o]) for o in others]
            rows.append(
                [
                    workload,
                    case,
                    f"{metric.label} {metric.better}",
                    *cells,
                    *("-" if r is None else f"{r:.2f}x" for r in ratios),
                ]
            )
    return rows


def render(rows: Sequence[Sequence[str]]) -> str:
    """Rows as an aligned text table (text left, figures right)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i < 3 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ceiling_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the load generator can do against a trivial server, and what it cost;
    and what our Places server can do on its own."""
    lines = []
    for record in records:
        if record["kind"] == "places" and record.get("figures"):
            figures = record["figures"]
            pct, ideal = figures["percent_of_ideal"], figures["ideal_throughput"]
            lines.append(
                f"  {record['case']}: {fmt(figures['throughput'])} req/s "
                f"({fmt(pct)}% of ideal {fmt(ideal)}), "
                f"Places CPU {record['cpu'].get('places', 0):.0f}%"
            )
        if record["kind"] != "ceiling":
            continue
        figures = record.get("figures")
        if figures is None:
            lines.append(f"  {record['case']}: FAILED: {record['error']}")
            continue
        cpu = record.get("cpu", {})
        loadgen = sum(v for k, v in cpu.items() if k.startswith("loadgen"))
        lines.append(
            f"  {record['case']}: {fmt(figures['throughput'])}/s, "
            f"p50 {fmt(figures['p50_ms'])} ms, p99 {fmt(figures['p99_ms'])} ms; "
            f"load generator CPU {loadgen:.0f}%, trivial server CPU {cpu.get('ceiling', 0):.0f}%"
        )
    return lines


def cpu_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Load generator CPU against the servers', for each IAMAT step: is it cheaper?"""
    lines = []
    for record in records:
        if record["kind"] not in ("iamat", "churn", "whatsat") or not record.get("cpu"):
            continue
        cpu = record["cpu"]
        loadgen = sum(v for k, v in cpu.items() if k.startswith("loadgen"))
        servers = sum(v for k, v in cpu.items() if k in FLOOD_ORDER)
        hill = cpu.get("Hill", 0.0)
        extra = f", Places {cpu['places']:.0f}%" if "places" in cpu else ""
        # CPU per request: where each implementation spends, free of how
        # busy the machine happened to be.
        rate = lookup(record.get("figures"), "throughput")
        if rate:
            per = 1e4 / rate  # % of a core over requests/s, in µs
            extra += f"; CPU per request: Hill {hill * per:.0f} µs, herd {servers * per:.0f} µs"
        lines.append(
            f"  {record['impl']:<8} {record['workload']:<8} {record['case']:<7} "
            f"load generator {loadgen:>4.0f}%   servers {servers:>4.0f}% (Hill {hill:.0f}%){extra}"
        )
    return lines


def _figure(
    index: Mapping[tuple[str, str, str], Mapping[str, Any]],
    kind: str,
    case: str,
    impl: str,
    path: str,
) -> float | None:
    return lookup((index.get((kind, case, impl)) or {}).get("figures"), path)


def targets(records: Sequence[Mapping[str, Any]], impls: Sequence[str]) -> list[dict[str, Any]]:
    """Each target of issue 5, judged on this run's figures.

    Status is ``met``, ``not met``, ``info`` (reported as is) or ``n/a``
    (what it needs was not run).
    """
    index = _index(records)
    cases = {kind: [r["case"] for r in records if r["kind"] == kind] for kind in METRICS}
    cases = {kind: list(dict.fromkeys(found)) for kind, found in cases.items()}
    found: list[dict[str, Any]] = []

    def add(name: str, status: str, detail: str) -> None:
        found.append({"target": name, "status": status, "detail": detail})

    # 1. IAMAT: trio >= 1.2x asyncio in throughput, p99 no worse, at every N.
    name = "IAMAT throughput trio/asyncio >= 1.2x, p99 no worse"
    if {BASELINE, "asyncio"} <= set(impls) and cases["iamat"]:
        details, ok = [], True
        for case in cases["iamat"]:
            tp = ratio(
                _figure(index, "iamat", case, BASELINE, "throughput"),
                _figure(index, "iamat", case, "asyncio", "throughput"),
            )
            p99 = ratio(
                _figure(index, "iamat", case, BASELINE, "p99_ms"),
                _figure(index, "iamat", case, "asyncio", "p99_ms"),
            )
            met = tp is not None and p99 is not None and tp >= 1.2 and p99 <= 1.0
            ok = ok and met
            details.append(
                f"{case}: {'-' if tp is None else f'{tp:.2f}x'} req/s, "
                f"p99 {'-' if p99 is None else f'{p99:.2f}x'}"
            )
        add(name, "met" if ok else "not met", "; ".join(details))
    else:
        add(name, "n/a", "needs iamat with trio and asyncio")

    # 2. uvloop: reported as is.
    name = "IAMAT throughput trio/uvloop (reported as is)"
    if {BASELINE, "uvloop"} <= set(impls) and cases["iamat"]:
        details = []
        for case in cases["iamat"]:
            tp = ratio(
                _figure(index, "iamat", case, BASELINE, "throughput"),
                _figure(index, "iamat", case, "uvloop", "throughput"),
            )
            details.append(f"{case}: {'-' if tp is None else f'{tp:.2f}x'}")
        add(name, "info", "; ".join(details))
    else:
        add(name, "n/a", "needs iamat with trio and uvloop")

    # Issue 13: the defaults (every line logged) against the quiet run.
    logged = f"{BASELINE}+logs"
    name = "IAMAT N=100, every line logged: trio >= 0.8x quiet req/s, p99 <= 1.2x quiet"
    if {BASELINE, logged} <= set(impls) and "N=100" in cases["iamat"]:
        tp = ratio(
            _figure(index, "iamat", "N=100", logged, "throughput"),
            _figure(index, "iamat", "N=100", BASELINE, "throughput"),
        )
        p99 = ratio(
            _figure(index, "iamat", "N=100", logged, "p99_ms"),
            _figure(index, "iamat", "N=100", BASELINE, "p99_ms"),
        )
        met = tp is not None and p99 is not None and tp >= 0.8 and p99 <= 1.2
        detail = f"{'-' if tp is None else f'{tp:.2f}x'} req/s, "
        detail += f"p99 {'-' if p99 is None else f'{p99:.2f}x'}"
        add(name, "met" if met else "not met", detail)
    else:
        add(name, "n/a", f"needs iamat N=100 with {BASELINE} and {logged}")
    name = "IAMAT, every line logged: trio+logs/asyncio+logs >= 1.0x req/s"
    if {logged, "asyncio+logs"} <= set(impls) and cases["iamat"]:
        details, ok = [], True
        for case in cases["iamat"]:
            tp = ratio(
                _figure(index, "iamat", case, logged, "throughput"),
                _figure(index, "iamat", case, "asyncio+logs", "throughput"),
            )
            ok = ok and tp is not None and tp >= 1.0
            details.append(f"{case}: {'-' if tp is None else f'{tp:.2f}x'}")
        add(name, "met" if ok else "not met", "; ".join(details))
    else:
        add(name, "n/a", f"needs iamat with {logged} and asyncio+logs")

    # 3. Flood to Campbell (two hops) under 1 ms median, unloaded.
    name = "flood Hill->Campbell median < 1 ms unloaded (trio; includes the probe's hop)"
    median = _figure(index, "flood", "unloaded", BASELINE, "servers.Campbell.median_ms")
    # At Campbell itself: the probe's hop taken out (the bench's estimate).
    estimate = _figure(index, "flood", "unloaded", BASELINE, "servers.Campbell.holds_estimate_ms")
    if median is not None:
        others = [
            f"{impl} {fmt(_figure(index, 'flood', 'unloaded', impl, 'servers.Campbell.median_ms'))}"
            for impl in impls
            if impl != BASELINE
        ]
        detail = f"trio {median:.3f} ms at the probe"
        if estimate is not None:
            detail += f" (about {estimate:.3f} ms at Campbell itself, less the probe's hop)"
        if others:
            detail += f"; others: {', '.join(others)} ms"
        add(name, "met" if median < 1.0 else "not met", detail)
    else:
        add(name, "n/a", "needs flood with trio")
    # Issue 14's sharper form, judged at Campbell itself.
    name = "flood Hill->Campbell median < 0.5 ms unloaded at Campbell itself (trio; issue 14)"
    if estimate is not None:
        add(name, "met" if estimate < 0.5 else "not met", f"trio about {estimate:.3f} ms")
    else:
        add(name, "n/a", "needs flood with trio")

    # 4. WHATSAT within 10% of ideal up to 500 concurrent.
    name = "WHATSAT throughput >= 90% of ideal up to 500 concurrent (trio)"
    whatsat = [c for c in cases["whatsat"] if index.get(("whatsat", c, BASELINE))]
    if whatsat:
        details, ok = [], True
        for case in whatsat:
            pct = _figure(index, "whatsat", case, BASELINE, "percent_of_ideal")
            ok = ok and pct is not None and pct >= 90
            details.append(f"{case}: {'-' if pct is None else f'{pct:.0f}%'}")
        for record in records:
            if record["kind"] == "places" and record.get("figures"):
                pct = lookup(record["figures"], "percent_of_ideal")
                details.append(
                    f"(the Places source asked directly, {record['case'].split()[-1]}: "
                    f"{'-' if pct is None else f'{pct:.0f}%'} of ideal)"
                )
        add(name, "met" if ok else "not met", "; ".join(details))
    else:
        add(name, "n/a", "needs whatsat with trio")

    # 5. Recovery: no acknowledged update lost, by any implementation.
    name = "recovery: no acknowledged update lost, no server crashed (every implementation)"
    runs = [r for r in records if r["kind"] == "recovery"]
    if runs:
        details, ok = [], True
        for record in runs:
            lost = lookup(record.get("figures"), "lost")
            crashed = (record.get("figures") or {}).get("servers_exited") or {}
            ok = ok and lost == 0 and not crashed
            text = f"{record['impl']}: {'FAILED' if lost is None else int(lost)} lost"
            if crashed:
                text += f" ({', '.join(crashed)} crashed)"
            details.append(text)
        add(name, "met" if ok else "not met", "; ".join(details))
    else:
        add(name, "n/a", "needs recovery")

    # 5b. Faults (issue 16): no acknowledged update lost to a kill loop, a
    # partition or a SIGSTOP; a whole-herd kill only loses what the last
    # sync interval held; no server crashes.
    name = "faults: 0 lost (kill, partition, stop), killall only within the sync interval"
    runs = [r for r in records if r["kind"] == "faults"]
    if runs:
        details, ok = [], True
        for record in runs:
            figures = record.get("figures") or {}
            if not figures:
                ok = False
                details.append(f"{record['impl']}: FAILED")
                continue
            parts = []
            for fault, result in figures.items():
                lost, crashed = result.get("lost"), result.get("crashed")
                if fault == "killall" and lost:
                    _, oldest = result.get("lost_acknowledged_s_before_kill") or (None, None)
                    good = oldest is not None and oldest <= SYNC_INTERVAL
                else:
                    good = lost == 0
                ok = ok and good and not crashed
                parts.append(f"{fault} {lost} lost" + (f", {crashed} crashed" if crashed else ""))
            details.append(f"{record['impl']}: {', '.join(parts)}")
        add(name, "met" if ok else "not met", "; ".join(details))
    else:
        add(name, "n/a", "needs faults")

    # 6. WHATSAT over HTTP (issue 15): trio at least as fast as asyncio, and
    # no more of Hill's CPU per WHATSAT.
    name = (
        "WHATSAT trio/asyncio: throughput >= 1.0x, p99 <= 1.0x, Hill CPU per WHATSAT <= asyncio's"
    )
    if {BASELINE, "asyncio"} <= set(impls) and cases["whatsat"]:
        details, ok = [], True
        for case in cases["whatsat"]:
            tp = ratio(
                _figure(index, "whatsat", case, BASELINE, "throughput"),
                _figure(index, "whatsat", case, "asyncio", "throughput"),
            )
            p99 = ratio(
                _figure(index, "whatsat", case, BASELINE, "p99_ms"),
                _figure(index, "whatsat", case, "asyncio", "p99_ms"),
            )
            cpu = ratio(
                _figure(index, "whatsat", case, BASELINE, "hill_cpu_us"),
                _figure(index, "whatsat", case, "asyncio", "hill_cpu_us"),
            )
            met = (
                tp is not None
                and p99 is not None
                and cpu is not None
                and tp >= 1.0
                and p99 <= 1.0
                and cpu <= 1.0
            )
            ok = ok and met
            details.append(
                f"{case}: {'-' if tp is None else f'{tp:.2f}x'} req/s, "
                f"p99 {'-' if p99 is None else f'{p99:.2f}x'}, "
                f"Hill CPU {'-' if cpu is None else f'{cpu:.2f}x'}"
            )
        add(name, "met" if ok else "not met", "; ".join(details))
    else:
        add(name, "n/a", "needs whatsat with trio and asyncio")

    # 7. The Places source is not what WHATSAT measures.
    name = "the Places source asked directly >= 3x the best herd's WHATSAT rate"
    direct = [
        lookup(r.get("figures"), "throughput") or 0.0
        for r in records
        if r["kind"] == "places" and r.get("figures")
    ]
    if direct and cases["whatsat"]:
        capacity = max(direct)
        details, ok = [], True
        for case in cases["whatsat"]:
            best = max(
                (_figure(index, "whatsat", case, name_, "throughput") or 0.0 for name_ in impls),
                default=0.0,
            )
            met = best == 0.0 or capacity >= 3 * best
            ok = ok and met
            details.append(
                f"{case}: best herd {fmt(best)} req/s"
                + ("" if met else " (the Places server limits here)")
            )
        add(
            name, "met" if ok else "not met", f"direct {fmt(capacity)} req/s; " + "; ".join(details)
        )
    else:
        add(name, "n/a", "needs whatsat and its direct step")

    # 8. The load generator is not the bottleneck.
    name = "load generator ceiling >= 2x the best herd IAMAT throughput"
    ceiling = [r for r in records if r["kind"] == "ceiling" and r["case"].startswith("iamat")]
    best = max(
        (lookup(r.get("figures"), "throughput") or 0.0 for r in records if r["kind"] == "iamat"),
        default=0.0,
    )
    top = lookup(ceiling[0].get("figures"), "throughput") if ceiling else None
    if top is not None and best:
        add(
            name,
            "met" if top >= 2 * best else "not met",
            f"ceiling {fmt(top)} req/s vs best herd {fmt(best)} req/s ({top / best:.1f}x)",
        )
    else:
        add(name, "n/a", "needs iamat and its ceiling step")
    return found


def render_targets(found: Sequence[Mapping[str, Any]]) -> str:
    """The targets as lines: ``[MET] name: detail``."""
    return "\n".join(f"  [{t['status'].upper():>7}] {t['target']}: {t['detail']}" for t in found)


def _clean(value: Any) -> Any:
    # JSON has no NaN: a figure that could not be computed is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write the results file (NaN becomes null)."""
    path.write_text(json.dumps(_clean(document), indent=1, ensure_ascii=False) + "\n")
