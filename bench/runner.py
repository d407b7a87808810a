"""Planning and running the benchmark's steps.

A *step* is one measurement: one workload, one case (``N=100``), one
implementation. :func:`plan` lists them all before anything runs, so the
progress line can say ``[3/18]``. Steps are grouped in *sessions*, each with
what its steps share, set up once for every implementation and torn down
after its last step:

* ``ceiling``: the load generator's trivial server;
* ``herd``: a five-server herd per implementation (plus our Places server
  if WHATSAT runs), for IAMAT, churn and WHATSAT;
* ``probe``: a herd per implementation with the probe as every server's
  neighbour, for flood and recovery;
* ``memory``: nothing: each step starts a fresh one-server herd;
* ``faults``: nothing: each step starts a herd of its own, with durable
  state and its links through relays (bench.faults).

Within a session the herds of every implementation run side by side (idle
ones cost nothing), and each case is measured for every implementation one
after the other, the order rotating from case to case. So the figures a
ratio compares were taken seconds apart, not minutes, on a machine whose
speed drifts, and no implementation always goes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import traceback
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bench import sysinfo
from bench.impls import IMPLEMENTATIONS, Implementation
from bench.probe import Probe
from bench.procs import (
    PROBE,
    ChildProcess,
    Herd,
    bench_herd,
    free_ports,
    places_url,
    start_ceiling_server,
    start_places_server,
)
from bench.settings import Settings
from bench.workloads import FLOOD_ORDER, STEPS, UNUSED_PLACES_URL, VICTIM, Env

#: The pseudo-implementation that ceiling steps are run for.
LOADGEN = "loadgen"
#: The pseudo-implementation for our Places server asked directly.
PLACES = "places"
#: The longest one step may take before it is abandoned.
STEP_TIMEOUT = 900.0
#: How long the herd's servers have to link to the probe.
LINK_TIMEOUT = 20.0
#: After a step, wait (at most QUIET_TIMEOUT seconds) until the session's
#: servers together use less than QUIET_CPU % of a core: a herd still
#: working off the last step's backlog must not slow the next step down,
#: which may be another implementation's.
QUIET_CPU = 10.0
QUIET_TIMEOUT = 15.0


@dataclass(frozen=True)
class Step:
    """One measurement."""

    kind: str
    workload: str
    case: str
    impl: str
    session: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``trio iamat N=100``, and ``(round 2)`` when cases run in rounds."""
        label = f"{self.impl} {self.workload} {self.case}"
        round_ = self.params.get("round")
        return label if round_ is None else f"{label} (round {round_})"


def _count(n: int) -> str:
    """1000 as ``1k``, 1000000 as ``1M``."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def _takes_part(name: str, workload: str) -> bool:
    impl = IMPLEMENTATIONS.get(name)
    return impl is None or impl.runs(workload)


def plan(settings: Settings, workloads: Iterable[str], impls: Sequence[str]) -> list[Step]:
    """Every step of a run, in the order they will run."""
    chosen = set(workloads)
    steps: list[Step] = []
    turn = 0

    def each_impl(kind: str, workload: str, case: str, session: str, **params: Any) -> None:
        nonlocal turn
        taking_part = [name for name in impls if _takes_part(name, workload)]
        if not taking_part:
            return
        # Rotate who goes first, case by case.
        first = turn % len(taking_part)
        turn += 1
        for impl in [*taking_part[first:], *taking_part[:first]]:
            steps.append(Step(kind, workload, case, impl, session, {"case": case, **params}))

    if "iamat" in chosen:
        n = settings.ceiling_clients
        steps.append(Step("ceiling", "ceiling", f"iamat N={n}", LOADGEN, "ceiling", {"clients": n}))
    if "churn" in chosen:
        c = max(settings.churn_clients)
        params = {"clients": c, "mode": "churn"}
        steps.append(Step("ceiling", "ceiling", f"churn C={c}", LOADGEN, "ceiling", params))
    if not impls:
        return steps
    # Timed cases run `rounds` times, the rounds interleaved within their
    # session, so that a slow spell of the machine hits one round of every
    # case rather than every round of one case.
    rounds = [{"round": r} if settings.rounds > 1 else {} for r in range(1, settings.rounds + 1)]
    for extra in rounds:
        if "iamat" in chosen:
            for n in settings.iamat_clients:
                each_impl("iamat", "iamat", f"N={n}", "herd", clients=n, **extra)
        if "churn" in chosen:
            for c in settings.churn_clients:
                each_impl("churn", "churn", f"C={c}", "herd", clients=c, **extra)
        if "whatsat" in chosen:
            # Three times the herds' largest concurrency: a closed loop of C
            # clients behind the Places latency can do at most C / latency a
            # second, so at the herds' own C the check "the Places source
            # serves at least 3x the best herd" could never pass, whatever
            # the server could do.
            c = 3 * max(settings.whatsat_clients)
            params = {"clients": c, **extra}
            steps.append(Step("places", "whatsat", f"direct C={c}", PLACES, "herd", params))
            for c in settings.whatsat_clients:
                each_impl("whatsat", "whatsat", f"C={c}", "herd", clients=c, **extra)
    if "flood" in chosen:
        n = settings.flood_load_clients
        for extra in rounds:
            each_impl("flood", "flood", "unloaded", "probe", loaded=False, **extra)
            each_impl("flood", "flood", f"under load N={n}", "probe", loaded=True, **extra)
    if "recovery" in chosen:
        each_impl("recovery", "recovery", f"kill {VICTIM}", "probe")
    if "memory" in chosen:
        for n in settings.idle_connections:
            each_impl("memory-idle", "memory", f"idle {_count(n)}", "memory", connections=n)
        for n in settings.table_clients:
            each_impl("memory-table", "memory", f"table {_count(n)}", "memory", clients=n)
    if "faults" in chosen:
        seconds = f"{settings.fault_seconds:g} s"
        case = f"kill x{settings.fault_cycles}, killall, partition {seconds}, stop {seconds}"
        each_impl("faults", "faults", case, "faults")
    return steps


class Progress:
    """One line per step on a stream (standard error)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.width = len(str(total))

    def begin(self, step: Step) -> None:
        """Say what runs now (the line is finished by :meth:`end`)."""
        self.done += 1
        counter = f"[{self.done:>{self.width}}/{self.total}]"
        print(f"{counter} {step.label} ...", end=" ", file=self.stream, flush=True)

    def end(self, text: str, elapsed: float) -> None:
        """Finish the step's line."""
        print(f"{text} ({elapsed:.1f} s)", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A line that is not a step (a herd started, ...)."""
        print(f"{'':>{2 * self.width + 3}} {text}", file=self.stream, flush=True)


class Runner:
    """Runs planned steps and keeps a record of each.

    Args:
        settings: sizes and durations.
        impls: the implementations to run, by name.
        workdir: where configurations, logs and standard errors go.
        log_level: the servers' ``--log-level``.
        progress: where progress goes.
    """

    def __init__(
        self,
        settings: Settings,
        impls: dict[str, Implementation],
        workdir: Path,
        log_level: str,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.impls = impls
        self.workdir = workdir
        self.log_level = log_level
        self.progress = progress
        #: One record per step run so far (see :meth:`_run_step`).
        self.records: list[dict[str, Any]] = []
        self.sessions: list[dict[str, Any]] = []

    async def run(self, steps: Sequence[Step]) -> list[dict[str, Any]]:
        """Run ``steps`` (in order, session by session); return their records."""
        index = 0
        while index < len(steps):
            session = steps[index].session
            group = []
            while index < len(steps) and steps[index].session == session:
                group.append(steps[index])
                index += 1
            async with self._session(session, group) as envs:
                for step in group:
                    await self._run_step(step, envs)
        return self.records

    def _env(self, impl: Implementation | None, tag: str) -> Env:
        return Env(self.settings, self.workdir / tag, self.log_level, impl=impl)

    @contextlib.asynccontextmanager
    async def _session(
        self, session: str, steps: Sequence[Step]
    ) -> AsyncIterator[dict[str, Env | str]]:
        """What ``steps`` share, for each implementation they run (or why it failed)."""
        started = _Started()
        try:
            if session == "ceiling":
                env = self._env(None, "ceiling")
                env.ceiling, env.ceiling_port = await start_ceiling_server(env.workdir)
                started.children.append(env.ceiling)
                yield {LOADGEN: env}
            elif session in ("memory", "faults"):
                # Each memory or faults step starts servers of its own.
                impls = dict.fromkeys(step.impl for step in steps)
                yield {name: self._env(self.impls[name], f"{name}-{session}") for name in impls}
            else:
                yield await self._herds(session, steps, started)
        finally:
            await started.stop()

    async def _herds(
        self, session: str, steps: Sequence[Step], started: _Started
    ) -> dict[str, Env | str]:
        """A herd per implementation (with a probe in the probe session), and Places."""
        envs: dict[str, Env | str] = {}
        places, url = None, UNUSED_PLACES_URL
        if any(step.kind in ("whatsat", "places") for step in steps):
            places, port = await start_places_server(
                self.workdir / "places",
                self.settings.places_latency_ms,
                stub=self.settings.places_stub,
            )
            started.children.append(places)
            self.progress.note(f"{places.label} up on port {port}")
            url = places_url(port)
            env = self._env(None, "places")
            env.places, env.places_port = places, port
            envs[PLACES] = env
        for name in dict.fromkeys(step.impl for step in steps):
            if name == PLACES:
                continue
            env = self._env(self.impls[name], f"{name}-{session}")
            env.places = places
            probe_port = None
            if session == "probe":
                env.probe = Probe()
                started.probes.append(env.probe)
                (probe_port,) = free_ports(1)
                await env.probe.listen(probe_port)
            env.herd = bench_herd(
                self.impls[name], FLOOD_ORDER, env.workdir, self.log_level, url, probe_port
            )
            started.herds.append(env.herd)
            failure = await self._start_herd(name, env.herd, env.probe)
            envs[name] = env if failure is None else failure
        return envs

    async def _start_herd(self, name: str, herd: Herd, probe: Probe | None) -> str | None:
        """Start ``herd`` (and wait for its links to ``probe``); say why it failed, if it did."""
        what = "herd" if probe is None else f"herd with {PROBE}"
        try:
            took = await herd.start_all()
            if probe is not None:
                async with asyncio.timeout(LINK_TIMEOUT):
                    await probe.wait_for_links(FLOOD_ORDER)
                took = max(took, time.monotonic() - herd.servers[FLOOD_ORDER[0]].started_at)
        except Exception as exc:
            reason = f"{name} {what} did not start: {_describe(exc)}"
            self.progress.note(reason)
            self.sessions.append({"impl": name, "what": what, "error": reason})
            return reason
        self.progress.note(f"{name} {what} up in {took:.2f} s ({len(herd.names)} processes)")
        self.sessions.append({"impl": name, "what": what, "start_s": took, "ports": herd.ports})
        return None

    async def _run_step(self, step: Step, envs: dict[str, Env | str]) -> None:
        self.progress.begin(step)
        started = time.monotonic()
        record: dict[str, Any] = {
            "workload": step.workload,
            "case": step.case,
            "impl": step.impl,
            "kind": step.kind,
            "params": step.params,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "figures": None,
            "cpu": {},
            "error": None,
        }
        env = envs.get(step.impl)
        try:
            if not isinstance(env, Env):
                raise RuntimeError(env or "no environment")
            async with asyncio.timeout(STEP_TIMEOUT):
                outcome = await STEPS[step.kind](env, step.params)
        except Exception as exc:
            record["error"] = _describe(exc)
            record["traceback"] = traceback.format_exc()
            text = f"FAILED: {record['error']}"
        else:
            record.update(figures=outcome.figures, cpu=outcome.cpu, **outcome.extra)
            _cpu_per_request(record)
            text = outcome.summary
        elapsed = time.monotonic() - started
        record["elapsed_s"] = elapsed
        self.records.append(record)
        self.progress.end(text, elapsed)
        record["quiet_after_s"] = await _quiet(_session_pids(envs))
        if record["quiet_after_s"] is None:
            self.progress.note(f"servers still busy {QUIET_TIMEOUT:g} s after the step; going on")


@dataclass
class _Started:
    """What a session started, to stop when it ends (also when cancelled)."""

    herds: list[Herd] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    children: list[ChildProcess] = field(default_factory=list)

    async def stop(self) -> None:
        for herd in self.herds:
            await herd.stop()
        for probe in self.probes:
            await probe.close()
        for child in self.children:
            await child.stop()


def _session_pids(envs: dict[str, Env | str]) -> dict[str, int]:
    pids: dict[str, int] = {}
    for name, env in envs.items():
        if not isinstance(env, Env):
            continue
        if env.herd is not None:
            pids.update({f"{name} {server}": pid for server, pid in env.herd.pids().items()})
        for child in (env.places, env.ceiling):
            if child is not None and child.running:
                pids[child.label] = child.pid
    return pids


async def _quiet(pids: dict[str, int]) -> float | None:
    """Wait until ``pids`` are (nearly) idle; the seconds it took, or ``None`` if never."""
    started = time.monotonic()
    while time.monotonic() - started < QUIET_TIMEOUT:
        meter = sysinfo.CpuMeter(pids)
        meter.start()
        await asyncio.sleep(0.2)
        meter.stop()
        if sum(meter.percent().values()) < QUIET_CPU:
            return time.monotonic() - started
    return None


def _cpu_per_request(record: dict[str, Any]) -> None:
    """Add Hill's and the whole herd's CPU per request (µs) to a rate step's figures.

    Whole-herd throughput mixes five servers' costs on two shared cores;
    Hill, which takes every request, is the fairer figure for one event
    loop's layer: with each server on its own core, it decides throughput.
    """
    figures, cpu = record.get("figures"), record.get("cpu") or {}
    if record["kind"] not in ("iamat", "whatsat") or not isinstance(figures, dict):
        return
    rate = figures.get("throughput")
    if not rate or "Hill" not in cpu:
        return
    per = 1e4 / rate  # % of a core over requests a second, in µs
    figures["hill_cpu_us"] = cpu["Hill"] * per
    figures["herd_cpu_us"] = sum(v for k, v in cpu.items() if k in FLOOD_ORDER) * per


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError) and not str(exc):
        text = "timed out"
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
