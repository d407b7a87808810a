"""Issue 12's WHATSAT attack against each herd, measured in interleaved rounds.

    python -m bench.attack_probe [--rounds 3] [--attackers 50] [--impls MODULE ...] [--out FILE]

Per round and implementation: start one server (``--log-level warning``),
warm it with one WHATSAT, then open ``--attackers`` connections that each
send 64 KiB of ``WHATSAT w 50 20`` and read nothing. It records:

* ``during_s``: how long a fresh client's IAMAT takes just after the
  attackers have sent (the server is still working through their bounded
  share of WHATSATs);
* ``during_cpu_s``: the server's CPU time from the attack to that reply,
  which a loaded machine does not stretch as it does ``during_s``;
* ``after_s``: the slowest of five fresh IAMATs once the server uses no CPU;
* ``burst_cpu_s``: the server's CPU time from the attack to rest;
* ``rss_growth_mb``: resident memory at rest less before the attack;
* ``sigterm_s``: SIGTERM to exit, with the attackers still connected.

Rounds interleave the implementations, so a noisy neighbour on the machine
spreads over all of them; report min-max, not one number.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

IMPLEMENTATIONS = ("trioherd", "bench.asyncio_herd", "bench.asyncio_herd.protocol")
UCLA = b"+34.068930-118.445127"
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int]:
    """CPU ticks and resident bytes of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")


async def _talk(address: tuple[str, int], payload: bytes) -> bytes:
    with trio.fail_after(60):
        stream = await trio.open_tcp_stream(*address)
        async with stream:
            await stream.send_all(payload)
            await stream.send_eof()
            chunks = []
            while chunk := await stream.receive_some(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def _iamat(client: bytes) -> bytes:
    return b"IAMAT %s %s %d\n" % (client, UCLA, time.time())


async def _at_rest(pid: int) -> None:
    with trio.fail_after(60):
        while True:
            before = _stat(pid)[0]
            await trio.sleep(0.5)
            if _stat(pid)[0] == before:
                return


async def _round(module: str, attackers: int, workdir: Path) -> dict[str, float]:
    config = workdir / "herd.toml"
    config.write_text("[servers.Hill]\nport = 0\n")
    # Popen returns as soon as the child is forked: nothing here waits.
    process = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", module, "Hill", "--config", str(config),
         "--log-dir", str(workdir / "logs"), "--log-level", "warning"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        banner = b""
        while b"listening on" not in banner:
            banner = process.stderr.readline()
            if not banner:
                raise RuntimeError(f"{module} did not start")
        port = int(banner.split(b"listening on ")[1].split(b",")[0].rsplit(b":", 1)[1])
        hill = ("127.0.0.1", port)
        await _talk(hill, _iamat(b"w"))
        await _talk(hill, b"WHATSAT w 50 20\n")
        await _at_rest(process.pid)
        cpu_before, rss_before = _stat(process.pid)
        flood = b"WHATSAT w 50 20\n" * 4096
        held = []
        try:
            for _ in range(attackers):
                sock = trio.socket.socket()
                await sock.connect(hill)
                held.append(sock)

            async def send(sock: trio.socket.SocketType) -> None:
                sent = 0
                with trio.move_on_after(0.5):
                    while sent < len(flood):
                        sent += await sock.send(flood[sent : sent + 65536])

            async with trio.open_nursery() as nursery:
                for sock in held:
                    nursery.start_soon(send, sock)
            started = time.monotonic()
            await _talk(hill, _iamat(b"during"))
            during = time.monotonic() - started
            cpu_during = _stat(process.pid)[0]
            await _at_rest(process.pid)
            cpu_after, rss_after = _stat(process.pid)
            after = []
            for n in range(5):
                started = time.monotonic()
                await _talk(hill, _iamat(b"after%d" % n))
                after.append(time.monotonic() - started)
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            status = process.wait(30)
            sigterm = time.monotonic() - started
        finally:
            for sock in held:
                sock.close()
        return {
            "during_s": during,
            "during_cpu_s": (cpu_during - cpu_before) / TICKS,
            "after_s": max(after),
            "burst_cpu_s": (cpu_after - cpu_before) / TICKS,
            "rss_growth_mb": (rss_after - rss_before) / 2**20,
            "sigterm_s": sigterm,
            "exit_status": status,
        }
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


async def _main(
    rounds: int, attackers: int, modules: list[str]
) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modules}
    for n in range(rounds):
        for module in modules:
            with tempfile.TemporaryDirectory() as workdir:
                result = await _round(module, attackers, Path(workdir))
            results[module].append(result)
            print(f"round {n + 1} {module}: {result}", file=sys.stderr, flush=True)
    return results


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.attack_probe")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attackers", type=int, default=50)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--impls", nargs="+", default=list(IMPLEMENTATIONS))
    args = parser.parse_args()
    results = trio.run(_main, args.rounds, args.attackers, args.impls)
    summary = {
        module: {key: [min(r[key] for r in runs), max(r[key] for r in runs)] for key in runs[0]}
        for module, runs in results.items()
    }
    report = {
        "command": " ".join(["python -m bench.attack_probe", *sys.argv[1:]]),
        "load_average_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "min_max": summary,
        "rounds": results,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
