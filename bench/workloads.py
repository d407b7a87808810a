"""The benchmark's workloads: one async function per kind of step.

Each takes an :class:`Env` (the herd, probe or servers its session set up,
and the settings) and the step's parameters, drives load through
:mod:`bench.workers` or times floods through :mod:`bench.probe`, and returns
an :class:`Outcome`: the figures for the results file, a one-line summary
for the progress line, and the CPU each process used while it was measured.

Closed-loop steps all follow one pattern: start the load generator, let it
connect, start the load, let it warm up, measure for a fixed time while
sampling every process's CPU time, then collect what completed inside the
window. Throughput is completions inside the window over its length.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import sysinfo
from bench.faults import FAULTS, run_faults
from bench.impls import Implementation
from bench.loadgen import DRAIN_S, Job, iamat_line
from bench.probe import Probe
from bench.procs import ChildProcess, Herd, bench_herd
from bench.settings import Settings
from bench.stats import histogram, latency_summary, percentile
from bench.workers import LoadWorkers, merge, split

#: Servers in the order a flood from Hill reaches them (hops: 0, 1, 1, 2, 2).
FLOOD_ORDER = ("Hill", "Jaquez", "Smith", "Singleton", "Campbell")
#: The server killed and restarted by the recovery workload.
VICTIM = "Smith"
#: A Places URL nobody listens on, for herds that never answer WHATSAT.
UNUSED_PLACES_URL = "http://127.0.0.1:9/maps/api/place/nearbysearch/json"
#: How long to wait for a flood to reach every server before calling it lost.
FLOOD_TIMEOUT = 5.0
#: How long, after the recovery load stops, every server has to hold every record.
SETTLE_TIMEOUT = 20.0
#: The longest wait for a server's RSS to stop moving.
RSS_SETTLE_TIMEOUT = 5.0


@dataclass
class Env:
    """What a step can use; its session fills in what it set up."""

    settings: Settings
    workdir: Path
    log_level: str
    impl: Implementation | None = None
    herd: Herd | None = None
    probe: Probe | None = None
    places: ChildProcess | None = None
    places_port: int = 0
    ceiling: ChildProcess | None = None
    ceiling_port: int = 0

    def need_herd(self) -> Herd:
        """The session's herd (a step that needs one cannot run without)."""
        assert self.herd is not None
        return self.herd


@dataclass
class Outcome:
    """What a step measured."""

    figures: dict[str, Any]
    summary: str
    cpu: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


async def sleep_until(monotonic_ns: int) -> None:
    """Sleep until ``time.monotonic_ns()`` reaches ``monotonic_ns``."""
    await asyncio.sleep(max(0.0, (monotonic_ns - time.monotonic_ns()) / 1e9))


def slug(text: str) -> str:
    """``text`` with only its letters and digits: a piece of a client ID.

    Client IDs are one word on the wire; a case name like ``under load``
    must not put a space in one.
    """
    return "".join(c for c in text if c.isalnum())


def _own_pid() -> dict[str, int]:
    # The benchmark process itself: it runs the probe and the flood timing.
    return {"bench": os.getpid()}


@dataclass
class _Measured:
    result: dict[str, Any]
    cpu: dict[str, float]
    ready: list[dict[str, Any]]


async def _measure_load(
    env: Env,
    job: Job,
    pids: Mapping[str, int],
    *,
    warmup_s: float,
    duration_s: float | None = None,
    during: Callable[[int], Awaitable[None]] | None = None,
) -> _Measured:
    """Run ``job`` with a warm-up then ``duration_s`` measured; CPU of ``pids`` too.

    ``duration_s`` defaults to the settings' ``duration_s``.

    ``during``, if given, runs in this process while the window is open
    (given the window's end) instead of a plain sleep.
    """
    settings = env.settings
    async with LoadWorkers(split(job, settings.loadgen_procs), env.workdir) as workers:
        ready = await workers.start()
        start_ns = time.monotonic_ns() + int(warmup_s * 1e9)
        end_ns = start_ns + int((duration_s or settings.duration_s) * 1e9)
        meter = sysinfo.CpuMeter({**pids, **workers.pids, **_own_pid()})
        await workers.go(start_ns, end_ns)
        await sleep_until(start_ns)
        meter.start()
        if during is not None:
            await during(end_ns)
        await sleep_until(end_ns)
        meter.stop()
        async with asyncio.timeout(DRAIN_S + 60):
            results = await workers.results()
    return _Measured(merge(results), meter.percent(), ready)


def _server_pids(env: Env) -> dict[str, int]:
    pids = env.need_herd().pids()
    if env.places is not None and env.places.running:
        pids["places"] = env.places.pid
    return pids


def _rate_figures(measured: _Measured) -> dict[str, Any]:
    result = measured.result
    samples = result["samples"]
    window = result["window_s"]
    figures: dict[str, Any] = {
        "throughput": result["completed"] / window if window else 0.0,
        "completed": result["completed"],
        "errors": result["errors"],
        "window_s": window,
        **latency_summary(samples),
    }
    for key in ("dropped", "unanswered", "failures"):
        if key in result:
            figures[key] = result[key]
    if measured.ready and "connect_s" in measured.ready[0]:
        figures["connect_s"] = max(r["connect_s"] for r in measured.ready)
    return figures


def _rate_summary(figures: Mapping[str, Any], unit: str) -> str:
    text = (
        f"{figures['throughput']:,.0f} {unit}, p50 {figures['p50_ms']:.2f} ms, "
        f"p99 {figures['p99_ms']:.2f} ms"
    )
    if figures["errors"]:
        text += f", {figures['errors']} errors"
    return text


def _closed_job(address: tuple[str, int], clients: int, prefix: str, **options: Any) -> Job:
    host, port = address
    return {
        "kind": "closed",
        "host": host,
        "port": port,
        "clients": clients,
        "first_slot": 0,
        "id_prefix": prefix,
        **options,
    }


async def iamat(env: Env, params: Mapping[str, Any]) -> Outcome:
    """IAMAT throughput and latency: N persistent clients in a closed loop at Hill."""
    herd = env.need_herd()
    clients = params["clients"]
    # One client ID per connection and a growing client time: every IAMAT
    # changes the table, so every one floods, and the table stays N big.
    job = _closed_job(herd.address("Hill"), clients, f"iamat{clients}-")
    measured = await _measure_load(env, job, _server_pids(env), warmup_s=env.settings.warmup_s)
    figures = _rate_figures(measured)
    return Outcome(
        figures,
        _rate_summary(figures, "req/s"),
        measured.cpu,
        {"latency_histogram": histogram(measured.result["samples"])},
    )


async def churn(env: Env, params: Mapping[str, Any]) -> Outcome:
    """A new connection per IAMAT (connect, send, read the reply, close), C at a time."""
    herd = env.need_herd()
    host, port = herd.address("Hill")
    job: Job = {
        "kind": "churn",
        "host": host,
        "port": port,
        "clients": params["clients"],
        "first_slot": 0,
        "id_prefix": f"churn{params['clients']}-",
    }
    measured = await _measure_load(env, job, _server_pids(env), warmup_s=env.settings.warmup_s)
    figures = _rate_figures(measured)
    return Outcome(
        figures,
        _rate_summary(figures, "conn/s"),
        measured.cpu,
        {"latency_histogram": histogram(measured.result["samples"])},
    )


async def whatsat(env: Env, params: Mapping[str, Any]) -> Outcome:
    """WHATSAT through our Places server (50-150 ms latency), C clients in a closed loop."""
    herd = env.need_herd()
    clients = params["clients"]
    job = _closed_job(herd.address("Hill"), clients, f"whatsat{clients}-", message="whatsat")
    measured = await _measure_load(
        env, job, _server_pids(env), warmup_s=env.settings.whatsat_warmup_s
    )
    figures = _rate_figures(measured)
    # A closed loop of C clients, each waiting the Places latency L per
    # request, can at best do C / L requests a second.
    ideal = clients / env.settings.places_mean_s
    figures["ideal_throughput"] = ideal
    figures["percent_of_ideal"] = 100 * figures["throughput"] / ideal
    summary = f"{_rate_summary(figures, 'req/s')}, {figures['percent_of_ideal']:.0f}% of ideal"
    return Outcome(
        figures,
        summary,
        measured.cpu,
        {"latency_histogram": histogram(measured.result["samples"])},
    )


async def places_alone(env: Env, params: Mapping[str, Any]) -> Outcome:
    """Our Places server asked directly by C closed-loop HTTP clients: its own capacity.

    WHATSAT can go no faster than the Places server answers; on a small
    machine that, not the herd, may be what stands between a herd and the
    ideal.
    """
    assert env.places is not None
    clients = params["clients"]
    job = _closed_job(("127.0.0.1", env.places_port), clients, "places-", message="http")
    measured = await _measure_load(
        env, job, {"places": env.places.pid}, warmup_s=env.settings.whatsat_warmup_s
    )
    figures = _rate_figures(measured)
    ideal = clients / env.settings.places_mean_s
    figures["ideal_throughput"] = ideal
    figures["percent_of_ideal"] = 100 * figures["throughput"] / ideal
    summary = (
        f"{_rate_summary(figures, 'req/s')}, {figures['percent_of_ideal']:.0f}% of ideal; "
        f"Places server CPU {measured.cpu.get('places', 0):.0f}%"
    )
    return Outcome(figures, summary, measured.cpu)


async def _time_floods(
    address: tuple[str, int],
    probe: Probe,
    tag: str,
    count: int,
    discard: int,
    deadline_ns: int,
) -> tuple[dict[str, list[int]], list[int], int]:
    """Send IAMATs to ``address`` one at a time; time each one's arrival from every server.

    Returns:
        Per server, the ns from sending the IAMAT to its AT line reaching
        the probe from that server; the IAMAT round trips; how many floods
        did not reach every server within :data:`FLOOD_TIMEOUT`.
    """
    probe.watch(b"fp")
    arrivals: dict[str, list[int]] = {name: [] for name in FLOOD_ORDER}
    round_trips: list[int] = []
    timeouts = 0
    reader, writer = await asyncio.open_connection(*address)
    try:
        for i in range(count + discard):
            if time.monotonic_ns() >= deadline_ns:
                break
            # A fresh client ID each time: the record is new everywhere.
            client_id = b"fp%s-%d" % (tag.encode(), i)
            expected = probe.expect(client_id, FLOOD_ORDER)
            message = iamat_line(client_id, time.time_ns())
            sent = time.monotonic_ns()
            writer.write(message)
            reply = await asyncio.wait_for(reader.readline(), FLOOD_TIMEOUT)
            replied = time.monotonic_ns()
            if not reply.startswith(b"AT "):
                raise RuntimeError(f"Hill answered {reply[:100]!r}")
            try:
                arrived = await asyncio.wait_for(expected, FLOOD_TIMEOUT)
            except TimeoutError:
                timeouts += 1
                continue
            if i >= discard:  # the first few warm up links and caches
                round_trips.append(replied - sent)
                for name in FLOOD_ORDER:
                    arrivals[name].append(arrived[name] - sent)
    finally:
        writer.close()
    return arrivals, round_trips, timeouts


def _flood_figures(
    arrivals: Mapping[str, list[int]], round_trips: list[int], timeouts: int
) -> dict[str, Any]:
    if not round_trips:
        raise RuntimeError(f"no flood reached every server ({timeouts} timed out)")
    servers = {}
    for name, samples in arrivals.items():
        ordered = sorted(samples)
        servers[name] = {
            "median_ms": percentile(ordered, 0.5) / 1e6,
            "p99_ms": percentile(ordered, 0.99) / 1e6,
            "mean_ms": sum(ordered) / len(ordered) / 1e6 if ordered else float("nan"),
            "count": len(ordered),
        }
    rtt = latency_summary(round_trips)
    # What the probe's own hop adds cannot be seen from here; a fair guess
    # of when a server itself held the record: the IAMAT's way to Hill (half
    # the round trip), then how much later than Hill's its line reached the
    # probe (both crossed one link to the probe, so that hop cancels out).
    hill = servers["Hill"]["median_ms"]
    for figures in servers.values():
        figures["holds_estimate_ms"] = rtt["p50_ms"] / 2 + figures["median_ms"] - hill
    return {
        "servers": servers,
        "floods": len(round_trips),
        "timeouts": timeouts,
        "rtt_p50_ms": rtt["p50_ms"],
        "rtt_p99_ms": rtt["p99_ms"],
    }


def _flood_summary(figures: Mapping[str, Any]) -> str:
    far = figures["servers"]["Campbell"]
    text = f"Campbell median {far['median_ms']:.3f} ms, p99 {far['p99_ms']:.3f} ms"
    text += f" ({figures['floods']} floods"
    if figures["timeouts"]:
        text += f", {figures['timeouts']} timed out"
    return text + ")"


async def flood(env: Env, params: Mapping[str, Any]) -> Outcome:
    """Flood propagation from Hill to every server, seen by the probe.

    ``params["loaded"]``: whether the IAMAT workload at N clients runs
    against Hill meanwhile (in a load generator process).
    """
    herd = env.need_herd()
    assert env.probe is not None
    probe = env.probe
    settings = env.settings
    # A tag per case and round: each flood's client ID is new to the herd.
    tag = slug(f"{params['case']} {params.get('round', '')}")
    if not params["loaded"]:
        meter = sysinfo.CpuMeter({**herd.pids(), **_own_pid()})
        meter.start()
        arrivals, round_trips, timeouts = await _time_floods(
            herd.address("Hill"),
            probe,
            tag,
            settings.flood_count,
            settings.flood_discard,
            time.monotonic_ns() + 60 * 10**9,
        )
        meter.stop()
        figures = _flood_figures(arrivals, round_trips, timeouts)
        return Outcome(figures, _flood_summary(figures), meter.percent())

    timed: dict[str, Any] = {}

    async def time_floods_under_load(end_ns: int) -> None:
        timed["floods"] = await _time_floods(
            herd.address("Hill"), probe, tag, settings.flood_count, 0, end_ns
        )

    clients = settings.flood_load_clients
    job = _closed_job(herd.address("Hill"), clients, f"floodload{clients}-")
    measured = await _measure_load(
        env, job, herd.pids(), warmup_s=settings.warmup_s, during=time_floods_under_load
    )
    figures = _flood_figures(*timed["floods"])
    load = _rate_figures(measured)
    figures["load"] = {k: load[k] for k in ("throughput", "p50_ms", "p99_ms", "errors")}
    summary = f"{_flood_summary(figures)}, load {load['throughput']:,.0f} req/s"
    return Outcome(figures, summary, measured.cpu)


async def recovery(env: Env, params: Mapping[str, Any]) -> Outcome:
    """Kill Smith under load at Hill, restart it, time its catch-up, count lost updates.

    Every IAMAT of the load has a client ID of its own, so each
    acknowledged one is a record that must end up at every server and is
    never superseded; the probe sees a server's records as it stores them.

    * *reconverge*: from the restart (the new process spawned) until the
      probe has seen, on the restarted Smith's new link, every record
      acknowledged at Hill before the restart: the records it lost with its
      table and those it missed while down. It includes the process's start
      (interpreter and imports), reported on its own as *listening*.
    * *lost*: records acknowledged at any time that some server still does
      not hold once the load has stopped and :data:`SETTLE_TIMEOUT` passed.
    """
    herd = env.need_herd()
    assert env.probe is not None
    probe = env.probe
    settings = env.settings
    probe.watch(b"rc")
    job = _closed_job(
        herd.address("Hill"),
        settings.recovery_clients,
        f"rc{slug(params['case'])}-",
        fresh_ids=True,
        record_acks=True,
    )
    run_s = settings.recovery_kill_after_s + settings.recovery_down_s
    run_s += settings.recovery_after_restart_s
    marks: dict[str, int] = {}
    restarted: list[ChildProcess] = []

    async def kill_and_restart(end_ns: int) -> None:
        start_ns = end_ns - int(run_s * 1e9)
        await sleep_until(start_ns + int(settings.recovery_kill_after_s * 1e9))
        marks["kill"] = time.monotonic_ns()
        await herd.kill(VICTIM)
        await sleep_until(marks["kill"] + int(settings.recovery_down_s * 1e9))
        marks["restart"] = time.monotonic_ns()
        # Again on its port, not waiting for it to listen.
        restarted.append(herd.spawn(VICTIM))
        marks["listening"] = marks["restart"] + int(
            1e9 * await restarted[0].wait_listening(herd.ports[VICTIM])
        )

    measured = await _measure_load(
        env, job, herd.pids(), warmup_s=0.1, duration_s=run_s, during=kill_and_restart
    )
    acks: list[tuple[str, int]] = [(cid, t) for cid, t in measured.result.get("acks", [])]
    acked = {cid.encode() for cid, _ in acks}
    if not acked:
        raise RuntimeError("Hill acknowledged no IAMAT during the run")

    def held(name: str) -> dict[bytes, int]:
        # A server that died holds nothing; the restarted one holds what
        # came on its new link.
        link = probe.links.get(name)
        if link is None or not herd.servers[name].running:
            return {}
        if name == VICTIM and link.connected_ns < marks["restart"]:
            return {}
        return link.seen

    settle_start = time.monotonic()
    while not all(acked <= held(name).keys() for name in FLOOD_ORDER):
        # A server that died will not catch up: no point waiting for it.
        crashed = not all(server.running for server in herd.servers.values())
        if crashed or time.monotonic() - settle_start > SETTLE_TIMEOUT:
            break
        await asyncio.sleep(0.05)
    settle_s = time.monotonic() - settle_start

    missing_by_server = {name: acked - held(name).keys() for name in FLOOD_ORDER}
    lost = set().union(*missing_by_server.values())
    victim_seen = held(VICTIM)
    before_restart = [cid.encode() for cid, t in acks if t < marks["restart"]]
    missing = [cid for cid in before_restart if cid not in victim_seen]
    reconverge_s = None
    if before_restart and not missing:
        caught_up = max(victim_seen[cid] for cid in before_restart)
        reconverge_s = (caught_up - marks["restart"]) / 1e9
    load = _rate_figures(measured)
    figures: dict[str, Any] = {
        "victim": VICTIM,
        "acknowledged": len(acked),
        "acknowledged_while_down": sum(marks["kill"] <= t < marks["restart"] for _, t in acks),
        "acknowledged_before_restart": len(before_restart),
        "listening_s": (marks["listening"] - marks["restart"]) / 1e9,
        "reconverge_s": reconverge_s,
        "settle_s": settle_s,
        # Acknowledged records some server does not hold; and, per server,
        # how many it lacks.
        "lost": len(lost),
        "missing_by_server": {name: len(m) for name, m in missing_by_server.items()},
        "load_throughput": load["throughput"],
        "load_errors": load["errors"],
        # What could explain a loss: a server that died, a link to the
        # probe that dropped (and how many times each server linked).
        "servers_exited": {
            name: server.stderr_tail()
            for name, server in herd.servers.items()
            if not server.running
        },
        "crashed": sum(not server.running for server in herd.servers.values()),
        "probe_links": dict(probe.link_counts),
        "probe_links_down": [
            name for name in FLOOD_ORDER if probe.links.get(name) not in probe.connections
        ],
    }
    shown = "never" if reconverge_s is None else f"in {reconverge_s:.3f} s"
    summary = (
        f"{VICTIM} reconverged {shown} (listening after {figures['listening_s']:.3f} s), "
        f"{figures['lost']} lost of {len(acked)}"
        + (f"; exited: {', '.join(figures['servers_exited'])}" if figures["servers_exited"] else "")
    )
    return Outcome(figures, summary, measured.cpu)


async def _settled_rss(pid: int) -> int:
    """The process's RSS once it stops moving (two readings 0.2 s apart within 0.5%)."""
    deadline = time.monotonic() + RSS_SETTLE_TIMEOUT
    last = sysinfo.rss(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = sysinfo.rss(pid)
        if abs(now - last) <= max(64 * 1024, last // 200):
            return now
        last = now
    return last


async def _one_server(env: Env, tag: str) -> Herd:
    """A fresh one-server herd (Hill, no neighbours), warmed up by one IAMAT."""
    assert env.impl is not None
    herd = bench_herd(env.impl, ["Hill"], env.workdir / tag, env.log_level, UNUSED_PLACES_URL)
    try:
        await herd.start_all()
        # One exchange first, so that what the first connection allocates
        # once (code paths, buffers) is not charged to the workload.
        reader, writer = await asyncio.open_connection(*herd.address("Hill"))
        writer.write(iamat_line(b"warmup", time.time_ns()))
        await asyncio.wait_for(reader.readline(), 10)
        writer.close()
    except BaseException:
        await herd.stop()
        raise
    return herd


async def memory_idle(env: Env, params: Mapping[str, Any]) -> Outcome:
    """RSS per idle client connection: open many, measure the server's growth."""
    herd = await _one_server(env, f"idle{params['connections']}")
    try:
        pid = herd.pids()["Hill"]
        wanted = params["connections"]
        # Both ends need a descriptor per connection; the server inherited
        # our raised limit, but check rather than trust.
        soft, _ = sysinfo.nofile_limit(pid)
        own_soft, _ = sysinfo.nofile_limit(os.getpid())
        count = min(wanted, soft - 64, own_soft - 64)
        before = await _settled_rss(pid)
        fds_before = sysinfo.open_fds(pid)
        host, port = herd.address("Hill")
        job: Job = {"kind": "idle", "host": host, "port": port, "connections": count}
        async with LoadWorkers([job], env.workdir) as workers:
            # Every connection has had its reply when the worker is ready:
            # the server has accepted them all.
            await workers.start()
            accepted = sysinfo.open_fds(pid) - fds_before
            after = await _settled_rss(pid)
            await workers.go(0, 0)
            async with asyncio.timeout(60):
                await workers.results()
    finally:
        await herd.stop()
    figures = {
        "connections": count,
        "requested": wanted,
        "accepted": accepted,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_connection": (after - before) / count,
        "fd_limit": soft,
    }
    summary = f"{figures['bytes_per_connection'] / 1024:.2f} KiB per idle connection ({count:,})"
    if count < wanted:
        summary += f", capped from {wanted:,} by the fd limit"
    return Outcome(figures, summary)


async def memory_table(env: Env, params: Mapping[str, Any]) -> Outcome:
    """Location table memory per stored client: fill one server with distinct IAMATs."""
    count = params["clients"]
    herd = await _one_server(env, f"table{count}")
    settings = env.settings
    try:
        pid = herd.pids()["Hill"]
        before = await _settled_rss(pid)
        host, port = herd.address("Hill")
        job: Job = {
            "kind": "fill",
            "host": host,
            "port": port,
            "connections": settings.table_connections,
            "count": count,
            "first": 0,
            "window": settings.table_window,
        }
        async with LoadWorkers([job], env.workdir) as workers:
            await workers.start()
            meter = sysinfo.CpuMeter({"Hill": pid, **workers.pids})
            meter.start()
            await workers.go(0, 0)
            async with asyncio.timeout(120 + count / 1000):
                (result,) = await workers.results()
            meter.stop()
        after = await _settled_rss(pid)
    finally:
        await herd.stop()
    figures = {
        "clients": count,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_client": (after - before) / count,
        "fill_throughput": count / result["elapsed_s"],
        "replies": result["replies"],
        "errors": result["errors"],
    }
    if result["replies"] != count or result["errors"]:
        raise RuntimeError(f"{result['replies']} replies, {result['errors']} refused, of {count}")
    summary = (
        f"{figures['bytes_per_client']:.0f} B per client ({count:,}; "
        f"filled at {figures['fill_throughput']:,.0f} req/s pipelined)"
    )
    return Outcome(figures, summary, meter.percent())


async def ceiling(env: Env, params: Mapping[str, Any]) -> Outcome:
    """The load generator against a trivial server: its own ceiling."""
    assert env.ceiling is not None
    clients = params["clients"]
    address = ("127.0.0.1", env.ceiling_port)
    job: Job
    if params.get("mode") == "churn":
        job = {
            "kind": "churn",
            "host": address[0],
            "port": address[1],
            "clients": clients,
            "first_slot": 0,
            "id_prefix": "ceiling-",
        }
        unit = "conn/s"
    else:
        job = _closed_job(address, clients, "ceiling-")
        unit = "req/s"
    pids = {"ceiling": env.ceiling.pid}
    measured = await _measure_load(env, job, pids, warmup_s=env.settings.warmup_s)
    figures = _rate_figures(measured)
    loadgen_cpu = sum(v for k, v in measured.cpu.items() if k.startswith("loadgen"))
    summary = f"{_rate_summary(figures, unit)}; load generator CPU {loadgen_cpu:.0f}%"
    return Outcome(figures, summary, measured.cpu)


async def faults(env: Env, params: Mapping[str, Any]) -> Outcome:
    """bench.faults against a herd of its own: every fault in turn, lost updates counted.

    One herd of five processes with ``--state-dir`` (its links through
    relays, so that a partition can cut them) takes, under a steady IAMAT
    load, ``fault_cycles`` kill -9/restart cycles of a random server, a kill
    -9 of every server and their restart, a partition ({Hill, Jaquez} | the
    rest) and a SIGSTOP/SIGCONT of one server, each ``fault_seconds`` long.
    After each, every acknowledged update is looked for at every server.
    Figures, per fault: ``lost`` (acknowledged updates some server lacks
    once the herd has converged), ``converged_s`` (from the heal until
    every server holds them), ``crashed`` (servers that died on their own).
    """
    impl = env.impl
    assert impl is not None
    settings = env.settings
    chosen = params.get("faults", FAULTS)
    results = await run_faults(
        impl, chosen, env.workdir, settings.fault_cycles, settings.fault_seconds
    )
    figures: dict[str, Any] = {}
    for fault, result in results.items():
        result.pop("lost_clients", None)
        crashed = result.pop("crashed")
        figures[fault] = {**result, "crashed": len(crashed), "crashed_servers": crashed}
    summary = ", ".join(
        f"{fault}: {r['lost']} lost of {r['acknowledged']}, "
        + ("not converged" if r["converged_s"] is None else f"converged in {r['converged_s']} s")
        + (f", {r['crashed']} crashed" if r["crashed"] else "")
        for fault, r in figures.items()
    )
    return Outcome(figures, summary)


#: Step kinds and the functions that run them.
STEPS: dict[str, Callable[[Env, Mapping[str, Any]], Awaitable[Outcome]]] = {
    "ceiling": ceiling,
    "iamat": iamat,
    "churn": churn,
    "whatsat": whatsat,
    "places": places_alone,
    "flood": flood,
    "recovery": recovery,
    "memory-idle": memory_idle,
    "memory-table": memory_table,
    "faults": faults,
}
