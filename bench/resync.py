"""``python -m bench.resync``: how long a link takes to bring a neighbour level.

Two servers, Hill and Jaquez, each a process of its own. Hill is filled
with ``--clients`` records (sent as a neighbour would, over a peer link);
then:

* ``fresh``: Jaquez starts with an empty table; timed from the moment it
  listens until it holds the last record of Hill's table;
* ``restart`` (with ``--state-dir``): Jaquez, level with Hill, is killed
  with SIGKILL; ``--changed`` clients move at Hill while it is away
  (``--away`` seconds); Jaquez restarts from its journal. Reported: spawn
  to listening (``restart_start_s``), then until an unmoved record is
  answered, i.e. the journal is loaded (``restart_loaded_s``: the port
  accepts before that, connections wait in the backlog), then until it
  holds the last of the moved records (``restart_resync_s``). Also
  reported: the lines the restarted Jaquez sends Hill on its own link
  (``restart_lines_to_hill``, from Hill's ``/metrics``, counted until they
  stop coming): with its table's life journaled, and marks from it now and
  then on a link that only carries records to it, it owes Hill only the
  few records after its last mark; before that it resent its whole table.

With ``--profile DIR``, Hill and Jaquez are sampled with py-spy during
the fresh resync (from Jaquez listening until it holds the last record):
``DIR/IMPL-{hill,jaquez}-fresh.folded`` and a summary of each beside it
(``bench.profile.summarise``).

Whether Jaquez holds a record is asked with ``WHATSAT``: its reply starts
with the stored AT line (or is ``? ...`` for an unknown client); the Places
URL points at a closed port, so the Places half of the answer is a quick
error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import procs, sysinfo
from bench.impls import IMPLEMENTATIONS, Implementation

PROG = "python -m bench.resync"
HILL_JAQUEZ = {"Hill": ["Jaquez", "Filler"], "Jaquez": ["Hill"], "Filler": ["Hill"]}
#: Records a filler write carries.
CHUNK = 10_000


def _toml(ports: dict[str, int]) -> str:
    lines = []
    for name, peers in HILL_JAQUEZ.items():
        quoted = ", ".join(f'"{p}"' for p in peers)
        lines += [f"[servers.{name}]", f"port = {ports[name]}", f"peers = [{quoted}]", ""]
    return "\n".join(lines)


def _prepare(workdir: Path) -> dict[str, int]:
    workdir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(HILL_JAQUEZ, procs.free_ports(3), strict=True))
    (workdir / "herd.toml").write_text(_toml(ports))
    return ports


def at_line(client: int, version: int) -> bytes:
    """An AT line as Hill would have stored it, ``version`` making it newer."""
    return b"AT Hill +0.100000000 c%d +34.068930-118.445127 %d.000000000" % (
        client,
        1_700_000_000 + version,
    )


async def fill(port: int, clients: Sequence[int], version: int) -> None:
    """Hand Hill these clients' records over a peer link, and wait till it has them all."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"PEER Filler 1\n")
    for start in range(0, len(clients), CHUNK):
        writer.write(b"".join(at_line(c, version) + b"\n" for c in clients[start : start + CHUNK]))
        await writer.drain()
    # Lines of one connection are handled in order: the answer to this one
    # means every record before it is stored.
    writer.write(b"DONE\n")
    await writer.drain()
    reply = await reader.readline()
    assert reply == b"? DONE\n", reply
    writer.close()


async def holds(port: int, client: int, line: bytes, limit: float) -> float:
    """Seconds until the server on ``port`` holds ``line`` for ``client``; polls WHATSAT."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() - started < limit:
            writer.write(b"WHATSAT c%d 1 1\n" % client)
            first = await reader.readline()
            if first.startswith(b"AT "):
                # The Places half: JSON, then an empty line.
                while (await reader.readline()) not in (b"\n", b""):
                    pass
                if first.rstrip(b"\n") == line:
                    return time.monotonic() - started
            await asyncio.sleep(0.01)
    finally:
        writer.close()
    raise TimeoutError(f"not level within {limit:g} s")


async def peer_lines(metrics_port: int, server: str) -> int:
    """Lines ``server`` has received on peer links so far, from its ``/metrics``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", metrics_port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        text = (await reader.read()).decode()
    finally:
        writer.close()
    pattern = r'^trioherd_lines_total\{(?=[^}]*kind="at")(?=[^}]*server="%s")[^}]*\} (\S+)$'
    found = re.search(pattern % server, text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no peer line count for {server} in its metrics")
    return int(float(found.group(1)))


async def quiet_lines(metrics_port: int, server: str, since: int, limit: float) -> int:
    """Peer lines ``server`` received after ``since``, once they stop coming for 1 s."""
    deadline = time.monotonic() + limit
    last, still_since = await peer_lines(metrics_port, server), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = await peer_lines(metrics_port, server)
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= 1.0:
            break
    return last - since


async def start_spy(pid: int, folded: Path) -> asyncio.subprocess.Process:
    """py-spy sampling ``pid`` into ``folded`` until it is sent SIGINT."""
    folded.parent.mkdir(parents=True, exist_ok=True)
    return await asyncio.create_subprocess_exec(
        shutil.which("py-spy") or "py-spy", "record", "--pid", str(pid), "--rate", "100",
        "--duration", "600", "--format", "raw", "--output", str(folded), "--nonblocking",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


async def stop_spies(spies: dict[Path, asyncio.subprocess.Process], command: str) -> None:
    """Stop the samplers, and write each profile's summary beside it."""
    from bench.profile import summarise

    for folded, spy in spies.items():
        spy.send_signal(signal.SIGINT)
        _, err = await spy.communicate()
        if not folded.exists():
            raise SystemExit(f"py-spy wrote no {folded}: {err.decode().strip()}")
        folded.with_suffix(".txt").write_text(summarise(folded, command))


def _child(impl: Implementation, name: str, workdir: Path, *extra: str) -> procs.ChildProcess:
    args = [
        *impl.command(),
        name,
        "--config",
        str(workdir / "herd.toml"),
        "--log-dir",
        str(workdir / "logs"),
        "--log-level",
        "warning",
        "--places-url",
        "http://127.0.0.1:9/nearby",
        *extra,
    ]
    return procs.ChildProcess(f"{impl.name} {name}", args, workdir / f"{name}.stderr")


async def run(
    impl: Implementation,
    clients: int,
    changed: int,
    away: float,
    workdir: Path,
    profile: Path | None = None,
    command: str = PROG,
) -> dict[str, Any]:
    """Both measurements for one implementation."""
    ports = _prepare(workdir)
    state = ["--state-dir", str(workdir / "state")]
    metrics_port = procs.free_ports(1)[0]
    hill = _child(impl, "Hill", workdir, "--metrics-port", str(metrics_port))
    hill.spawn()
    result: dict[str, Any] = {"clients": clients, "changed": changed, "away_s": away}
    jaquez = None
    try:
        await hill.wait_listening(ports["Hill"])
        started = time.monotonic()
        await fill(ports["Hill"], range(clients), 0)
        result["fill_s"] = round(time.monotonic() - started, 2)

        jaquez = _child(impl, "Jaquez", workdir, *state)
        jaquez.spawn()
        result["fresh_start_s"] = round(await jaquez.wait_listening(ports["Jaquez"]), 2)
        cpu_before = {
            who: sysinfo.cpu_seconds(c.pid) for who, c in (("hill", hill), ("jaquez", jaquez))
        }
        spies = {}
        if profile is not None:
            for sampled, who in ((hill, "hill"), (jaquez, "jaquez")):
                folded = profile / f"{impl.name}-{who}-fresh.folded"
                spies[folded] = await start_spy(sampled.pid, folded)
        last = clients - 1
        limit = 300.0
        result["fresh_resync_s"] = round(
            await holds(ports["Jaquez"], last, at_line(last, 0), limit), 2
        )
        # On a shared machine the wall time swings with the load; the CPU
        # the two servers spent on the resync is steadier.
        for who, c in (("hill", hill), ("jaquez", jaquez)):
            result[f"fresh_cpu_s_{who}"] = round(sysinfo.cpu_seconds(c.pid) - cpu_before[who], 2)
        result["load_average"] = sysinfo.load_average()
        await stop_spies(spies, command)

        # Let the MARK that follows the resync reach Jaquez's journal (written
        # every 50 ms): a crash before it would cost a full resync, rightly.
        await asyncio.sleep(1.0)
        jaquez.kill()
        await jaquez.exited()
        started = time.monotonic()
        moved = list(range(0, clients, max(1, clients // changed)))[:changed]
        await fill(ports["Hill"], moved, 1)
        await asyncio.sleep(max(0.0, away - (time.monotonic() - started)))
        hill_lines = await peer_lines(metrics_port, "Hill")
        jaquez = _child(impl, "Jaquez", workdir, *state)
        jaquez.spawn()
        result["restart_start_s"] = round(await jaquez.wait_listening(ports["Jaquez"]), 2)
        # The port accepts before the journal is loaded (connections wait in
        # the backlog): an unmoved client's record answers once it is.
        unmoved = 1 if moved[0] != 1 else clients - 1
        result["restart_loaded_s"] = round(
            await holds(ports["Jaquez"], unmoved, at_line(unmoved, 0), limit), 3
        )
        result["restart_resync_s"] = round(
            await holds(ports["Jaquez"], moved[-1], at_line(moved[-1], 1), limit), 3
        )
        # Its link's handshake, RESUME and MARK lines are counted too.
        result["restart_lines_to_hill"] = await quiet_lines(metrics_port, "Hill", hill_lines, limit)
    finally:
        for child in (hill, jaquez):
            if child is not None:
                await child.stop()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--impls", default="trio,asyncio")
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--away", type=float, default=60.0, help="seconds Jaquez is down")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--profile", type=Path, help="sample the fresh resync with py-spy into DIR")
    args = parser.parse_args(argv)
    document: dict[str, Any] = {
        "command": " ".join([PROG, *(argv if argv is not None else sys.argv[1:])]),
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="trioherd-resync-") as tmp:
        for name in args.impls.split(","):
            result = asyncio.run(
                run(
                    IMPLEMENTATIONS[name],
                    args.clients,
                    args.changed,
                    args.away,
                    Path(tmp) / name,
                    args.profile,
                    document["command"],
                )
            )
            document["results"][name] = result
            print(f"{name}: {json.dumps(result)}", file=sys.stderr)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
