"""What TLS costs a server: IAMATs per second over plain TCP and over TLS.

    python bench/results/hardening/tls/tls_cost.py [--rounds 3] [--seconds 3] [--connections 20]

(from the repository's root; writes tls_cost.json here). Per round and
implementation, one server (``--log-level warning``) is started plain and
once with ``--tls-cert``/``--tls-key`` (a trustme certificate), in
alternating order; a trio client in this process keeps ``--connections``
connections each sending one IAMAT and waiting for its reply, for
``--seconds``. The client shares the machine (and its TLS costs) with the
server, so read the ratio TLS/plain within a round, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
import trustme

HERE = Path(__file__).parent
IMPLEMENTATIONS = ("trioherd", "bench.asyncio_herd")


async def _client(address: tuple[str, int], context: ssl.SSLContext | None, until: float) -> int:
    stream: trio.abc.Stream = await trio.open_tcp_stream(*address)
    if context is not None:
        stream = trio.SSLStream(stream, context, server_hostname="127.0.0.1")
    done = 0
    async with stream:
        while time.monotonic() < until:
            await stream.send_all(b"IAMAT c%d +34.068930-118.445127 %d\n" % (done, time.time()))
            reply = b""
            while not reply.endswith(b"\n"):
                reply += await stream.receive_some(4096)
            done += 1
    return done


async def _rate(
    address: tuple[str, int], context: ssl.SSLContext | None, args: argparse.Namespace
) -> float:
    counts: list[int] = []
    until = time.monotonic() + args.seconds

    async def one() -> None:
        counts.append(await _client(address, context, until))

    async with trio.open_nursery() as nursery:
        for _ in range(args.connections):
            nursery.start_soon(one)
    seconds: float = args.seconds
    return sum(counts) / seconds


async def _round(
    module: str,
    tls: list[str],
    context: ssl.SSLContext | None,
    args: argparse.Namespace,
    workdir: Path,
) -> float:
    config = workdir / "herd.toml"
    config.write_text("[servers.Solo]\nport = 0\n")
    process = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", module, "Solo", "--config", str(config),
         "--log-dir", str(workdir / "logs"), "--log-level", "warning", *tls],
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
        return await _rate(("127.0.0.1", port), context, args)
    finally:
        process.terminate()
        process.wait(10)
        process.stderr.close()  # type: ignore[union-attr]


async def _main(args: argparse.Namespace) -> dict[str, object]:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    results: dict[str, dict[str, list[float]]] = {
        m: {"plain": [], "tls": []} for m in IMPLEMENTATIONS
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp)
        cert, key = files / "cert.pem", files / "key.pem"
        cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        issued.private_key_pem.write_to_path(str(key))
        context = ssl.create_default_context()
        ca.configure_trust(context)
        tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
        for n in range(args.rounds):
            for module in IMPLEMENTATIONS:
                # Alternate which goes first, so a trend in the machine's load
                # falls on both.
                order = [("plain", [], None), ("tls", tls, context)]
                for kind, flags, ctx in order if n % 2 == 0 else reversed(order):
                    with tempfile.TemporaryDirectory() as workdir:
                        rate = await _round(module, flags, ctx, args, Path(workdir))
                    results[module][kind].append(rate)
                    print(
                        f"round {n + 1} {module} {kind}: {rate:.0f}/s", file=sys.stderr, flush=True
                    )
    ratios = {
        m: [round(t / p, 3) for p, t in zip(r["plain"], r["tls"], strict=True)]
        for m, r in results.items()
    }
    return {
        "command": "python bench/results/hardening/tls/tls_cost.py " + " ".join(sys.argv[1:]),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "connections": args.connections,
        "seconds": args.seconds,
        "iamat_per_second": results,
        "tls_over_plain": ratios,
        "tls_over_plain_min_max": {m: [min(r), max(r)] for m, r in ratios.items()},
    }


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="tls_cost.py")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args()
    report = trio.run(_main, args)
    text = json.dumps(report, indent=2)
    (HERE / "tls_cost.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
