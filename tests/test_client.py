"""The people's client, ``python -m trioherd.client``, against a live herd."""

from __future__ import annotations

import subprocess
import sys
import time

import trio

from trioherd.client import fill_in_now, resolve
from trioherd.core.config import CS131_HERD
from trioherd.herd import RunningHerd

from support import WAIT, free_ports


async def run_client(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(WAIT * 2):
        return await trio.run_process(
            [sys.executable, "-m", "trioherd.client", *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


def test_now_becomes_the_time_to_the_nanosecond() -> None:
    before = time.time_ns()
    filled = fill_in_now("IAMAT kiwi +1+1 now").split()
    seconds, fraction = filled[3].split(".")
    assert len(fraction) == 9
    assert before <= int(seconds) * 10**9 + int(fraction) <= time.time_ns()
    assert fill_in_now("WHATSAT kiwi 10 now") == "WHATSAT kiwi 10 now"


def test_targets() -> None:
    assert resolve("127.0.0.1:8000", CS131_HERD) == ("127.0.0.1", 8000)
    assert resolve("Campbell", CS131_HERD) == ("127.0.0.1", 8003)


async def test_iamat_then_whatsat_from_the_command_line(herd: RunningHerd) -> None:
    host, port = herd.addresses["Hill"]
    iamat = await run_client(f"{host}:{port}", "IAMAT", "cli", "+34.068930-118.445127", "now")
    assert iamat.returncode == 0
    assert iamat.stdout.startswith(b"AT Hill +")
    whatsat = await run_client(f"{host}:{port}", "WHATSAT", "cli", "5", "2")
    assert whatsat.stdout.startswith(iamat.stdout)
    assert whatsat.stdout.endswith(b"}\n\n")


async def test_messages_from_standard_input(herd: RunningHerd) -> None:
    host, port = herd.addresses["Smith"]
    result = await run_client(f"{host}:{port}", stdin=b"IAMAT in +1+1 now\nnonsense\n")
    lines = result.stdout.splitlines()
    assert lines[0].startswith(b"AT Smith")
    assert lines[1] == b"? nonsense"


async def test_bad_targets_and_dead_servers_are_one_line_errors() -> None:
    (port,) = free_ports(1)
    refused = await run_client(f"127.0.0.1:{port}", "IAMAT", "x", "+1+1", "now")
    assert refused.returncode == 1
    assert refused.stderr.count(b"\n") == 1
    assert b"cannot talk to 127.0.0.1" in refused.stderr
    for target in ("Westwood", "host:notaport"):
        bad = await run_client(target, "IAMAT")
        assert bad.returncode == 2
        assert bad.stderr.count(b"\n") == 1
