"""PNG plots of a run's figures (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.report import lookup
from bench.workloads import FLOOD_ORDER

COLOURS = {
    "trio": "#1f77b4",
    "asyncio": "#ff7f0e",
    "uvloop": "#2ca02c",
    "trio-socketstream": "#9467bd",
    "anyio-trio": "#17becf",
    "anyio-asyncio": "#d62728",
    "anyio-uvloop": "#8c564b",
}

Record = Mapping[str, Any]


def _of(records: Sequence[Record], kind: str) -> list[Record]:
    return [r for r in records if r["kind"] == kind and r.get("figures")]


def _colour(impl: str) -> str:
    return COLOURS.get(impl, "#7f7f7f")


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _bars(
    ax: Axes,
    records: Sequence[Record],
    impls: Sequence[str],
    path: str,
    *,
    upper: str | None = None,
) -> None:
    """Grouped bars: one group per case, one bar per implementation."""
    cases = list(dict.fromkeys(r["case"] for r in records))
    width = 0.8 / max(1, len(impls))
    for i, impl in enumerate(impls):
        xs, heights, errors = [], [], []
        for j, case in enumerate(cases):
            found = [r for r in records if r["impl"] == impl and r["case"] == case]
            value = lookup(found[0]["figures"], path) if found else None
            if value is None:
                continue
            xs.append(j + (i - (len(impls) - 1) / 2) * width)
            heights.append(value)
            top = lookup(found[0]["figures"], upper) if upper else None
            errors.append(max(0.0, top - value) if top is not None else 0.0)
        if xs:
            ax.bar(
                xs,
                heights,
                width,
                label=impl,
                color=_colour(impl),
                yerr=[[0.0] * len(errors), errors] if upper else None,
                capsize=3,
            )
    ax.set_xticks(range(len(cases)), cases)
    ax.legend()


def _iamat(records: Sequence[Record], impls: Sequence[str], out: Path) -> Path | None:
    runs = _of(records, "iamat")
    if not runs:
        return None
    fig = Figure(figsize=(11, 4.2))
    rate, latency = fig.subplots(1, 2)
    for impl in impls:
        mine = sorted((r for r in runs if r["impl"] == impl), key=lambda r: r["params"]["clients"])
        if not mine:
            continue
        ns = [r["params"]["clients"] for r in mine]
        colour = _colour(impl)
        rate.plot(ns, [r["figures"]["throughput"] for r in mine], "o-", color=colour, label=impl)
        latency.plot(
            ns, [r["figures"]["p50_ms"] for r in mine], "o-", color=colour, label=f"{impl} p50"
        )
        latency.plot(
            ns, [r["figures"]["p99_ms"] for r in mine], "s--", color=colour, label=f"{impl} p99"
        )
    for record in _of(records, "ceiling"):
        if record["case"].startswith("iamat"):
            rate.axhline(
                record["figures"]["throughput"], color="grey", ls=":", label="load gen. ceiling"
            )
    rate.set(xscale="log", xlabel="clients (closed loop)", ylabel="IAMAT/s", title="IAMAT at Hill")
    rate.set_ylim(bottom=0)
    latency.set(xscale="log", yscale="log", xlabel="clients", ylabel="ms", title="IAMAT latency")
    rate.legend()
    latency.legend(fontsize="small")
    return _save(fig, out / "iamat.png")


def _churn(records: Sequence[Record], impls: Sequence[str], out: Path) -> Path | None:
    runs = _of(records, "churn")
    if not runs:
        return None
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    _bars(ax, runs, impls, "throughput")
    ax.set(ylabel="connections/s", title="Churn: a new connection per IAMAT")
    return _save(fig, out / "churn.png")


def _whatsat(records: Sequence[Record], impls: Sequence[str], out: Path) -> Path | None:
    runs = _of(records, "whatsat")
    if not runs:
        return None
    fig = Figure(figsize=(11, 4.2))
    rate, latency = fig.subplots(1, 2)
    clients = sorted({r["params"]["clients"] for r in runs})
    ideal = {r["params"]["clients"]: r["figures"]["ideal_throughput"] for r in runs}
    rate.plot(clients, [ideal[c] for c in clients], "k:", label="ideal (C / mean Places latency)")
    for impl in impls:
        mine = sorted((r for r in runs if r["impl"] == impl), key=lambda r: r["params"]["clients"])
        if not mine:
            continue
        cs = [r["params"]["clients"] for r in mine]
        colour = _colour(impl)
        rate.plot(cs, [r["figures"]["throughput"] for r in mine], "o-", color=colour, label=impl)
        latency.plot(
            cs, [r["figures"]["p50_ms"] for r in mine], "o-", color=colour, label=f"{impl} p50"
        )
        latency.plot(
            cs, [r["figures"]["p99_ms"] for r in mine], "s--", color=colour, label=f"{impl} p99"
        )
    rate.set(xlabel="concurrent clients", ylabel="WHATSAT/s", title="WHATSAT via Places server")
    latency.set(xlabel="concurrent clients", ylabel="ms", title="WHATSAT latency")
    rate.legend(fontsize="small")
    latency.legend(fontsize="small")
    return _save(fig, out / "whatsat.png")


def _flood(records: Sequence[Record], impls: Sequence[str], out: Path) -> Path | None:
    runs = _of(records, "flood")
    if not runs:
        return None
    cases = list(dict.fromkeys(r["case"] for r in runs))
    fig = Figure(figsize=(6 * len(cases), 4.2))
    axes = fig.subplots(1, len(cases), squeeze=False)[0]
    for ax, case in zip(axes, cases, strict=True):
        width = 0.8 / max(1, len(impls))
        for i, impl in enumerate(impls):
            found = [r for r in runs if r["impl"] == impl and r["case"] == case]
            if not found:
                continue
            servers = found[0]["figures"]["servers"]
            medians = [servers[name]["median_ms"] or 0.0 for name in FLOOD_ORDER]
            p99s = [servers[name]["p99_ms"] or 0.0 for name in FLOOD_ORDER]
            xs = [j + (i - (len(impls) - 1) / 2) * width for j in range(len(FLOOD_ORDER))]
            ax.bar(
                xs,
                medians,
                width,
                color=_colour(impl),
                label=f"{impl} (median, bar to p99)",
                yerr=[
                    [0.0] * len(xs),
                    [max(0.0, p - m) for p, m in zip(p99s, medians, strict=True)],
                ],
                capsize=3,
            )
        labels = [f"{n}\n{h} hop{'' if h == 1 else 's'} + 1" for n, h in _hops()]
        ax.set_xticks(range(len(FLOOD_ORDER)), labels)
        ax.set(ylabel="ms from IAMAT sent to AT at the probe", title=f"Flood from Hill, {case}")
        ax.legend(fontsize="small")
    return _save(fig, out / "flood.png")


def _hops() -> list[tuple[str, int]]:
    hops = {"Hill": 0, "Jaquez": 1, "Smith": 1, "Singleton": 2, "Campbell": 2}
    return [(name, hops[name]) for name in FLOOD_ORDER]


def _recovery(records: Sequence[Record], impls: Sequence[str], out: Path) -> Path | None:
    runs = _of(records, "recovery")
    if not runs:
        return None
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    names = [r["impl"] for r in runs]
    listening = [r["figures"]["listening_s"] for r in runs]
    reconverge = [r["figures"]["reconverge_s"] or 0.0 for r in runs]
    ax.bar(names, reconverge, color=[_colour(n) for n in names], label="restart to reconverged")
    ax.bar(
        names, listening, color="none", edgecolor="black", hatch="//", label="restart to listening"
    )
    for x, record in enumerate(runs):
        ax.annotate(
            f"{record['figures']['lost']} lost",
            (x, reconverge[x]),
            ha="center",
            va="bottom",
        )
    ax.set(ylabel="seconds", title="Smith killed under load and restarted")
    ax.set_ylim(top=max([*reconverge, *listening, 0.1]) * 1.3)
    ax.legend(fontsize="small", loc="upper left")
    return _save(fig, out / "recovery.png")


def _memory(records: Sequence[Record], impls: Sequence[str], out: Path) -> Path | None:
    idle, table = _of(records, "memory-idle"), _of(records, "memory-table")
    if not idle and not table:
        return None
    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    if idle:
        _bars(left, idle, impls, "bytes_per_connection")
    left.set(ylabel="bytes of RSS", title="Per idle client connection")
    if table:
        _bars(right, table, impls, "bytes_per_client")
    right.set(ylabel="bytes of RSS", title="Per client in the location table")
    return _save(fig, out / "memory.png")


def plot_all(records: Sequence[Record], impls: Sequence[str], out: Path) -> list[Path]:
    """Draw every plot the run has figures for; return the files written."""
    drawn = []
    for draw in (_iamat, _churn, _whatsat, _flood, _recovery, _memory):
        path = draw(records, impls, out)
        if path is not None:
            drawn.append(path)
    return drawn
