"""Conformance: docs/protocol.md over TCP against servers run as ``python -m IMPL``.

These tests know nothing of the implementation but its module name (see
``conftest.py``), so the asyncio contrast runs them unchanged.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from functools import partial
from pathlib import Path

import pytest
import trio

from bench.procs import Herd
from trioherd.core.config import CS131_HERD
from trioherd.offline.nearby import KeyPolicy

from processes import command, make_herd, run_cli
from support import WAIT, eventually, holds, places_server, talk, whatsat_line

UCLA = b"+34.068930-118.445127"


def now() -> bytes:
    seconds, nanos = divmod(time.time_ns(), 10**9)
    return b"%d.%09d" % (seconds, nanos)


async def test_iamat_reply_is_exact(herd: Herd) -> None:
    before = time.time_ns()
    reply = await talk(
        herd.address("Hill"), b"IAMAT kiwi.cs.ucla.edu %s 1621464827.959498503\n" % UCLA
    )
    after = time.time_ns()
    at, server, skew, client, location, client_time = reply.rstrip(b"\n").split(b" ")
    assert (at, server, client, location, client_time) == (
        b"AT",
        b"Hill",
        b"kiwi.cs.ucla.edu",
        UCLA,
        b"1621464827.959498503",
    )
    assert skew[:1] == b"+"
    seconds, fraction = skew[1:].split(b".")
    assert len(fraction) == 9
    skew_ns = int(seconds) * 10**9 + int(fraction)
    client_ns = 1621464827_959498503
    assert before - client_ns <= skew_ns <= after - client_ns


async def test_negative_skew_for_a_client_clock_ahead(herd: Herd) -> None:
    future = b"%d.5" % (time.time() + 3600)
    reply = await talk(herd.address("Jaquez"), b"IAMAT ahead +0+0 %s\n" % future)
    skew = reply.split()[2]
    assert skew.startswith(b"-3599.") or skew.startswith(b"-3600.")


async def test_flood_reaches_every_server_and_whatsat_names_the_first_server(
    herd: Herd,
) -> None:
    reply = await talk(herd.address("Hill"), b"IAMAT flood %s %s\n" % (UCLA, now()))
    at_line = reply.rstrip(b"\n")
    for name in CS131_HERD.names:
        await eventually(partial(holds, herd.address(name), b"flood", at_line), f"{name}")
    whatsat = await talk(herd.address("Campbell"), b"WHATSAT flood 10 5\n")
    first, _, body = whatsat.partition(b"\n")
    assert first == at_line
    assert whatsat.endswith(b"}\n\n")
    places = json.loads(body)
    assert places["status"] == "OK"
    assert 1 <= len(places["results"]) <= 5
    assert set(places) >= {"html_attributions", "results", "status"}
    for result in places["results"]:
        assert set(result) >= {"geometry", "name", "place_id", "types", "vicinity"}


async def test_invalid_commands_are_echoed_and_the_connection_lives_on(
    herd: Herd,
) -> None:
    bad = [
        b"",
        b"HELLO world",
        b"IAMAT only three",
        b"IAMAT x 34.0-118.0 5",
        b"IAMAT x +91+0 5",
        b"IAMAT x +0+0 5.1234567890",
        b"WHATSAT unknown-client 10 5",
        b"WHATSAT x 51 5",
        b"WHATSAT x 10 21",
        b"AT Hill +0.000000000 x +0+0 5",
        b"\xff\xfe garbage",
    ]
    payload = b"IAMAT x +0+0 5\n" + b"".join(line + b"\n" for line in bad) + b"IAMAT y +0+0 5\n"
    reply = await talk(herd.address("Smith"), payload)
    lines = reply.split(b"\n")
    assert lines[0].startswith(b"AT Smith ")
    assert lines[1 : 1 + len(bad)] == [b"? " + line for line in bad]
    assert lines[1 + len(bad)].startswith(b"AT Smith ")


async def test_pipelined_split_and_unterminated_messages(herd: Herd) -> None:
    payload = b"IAMAT p1 +1+1 1\r\nIAMAT p2 +2+2 2\nWHATSAT p1 5 1\nIAMAT p3 +3+3 3"
    async with await trio.open_tcp_stream(*herd.address("Singleton")) as stream:
        for i in range(0, len(payload), 7):
            await stream.send_all(payload[i : i + 7])
        await stream.send_eof()
        chunks = []
        with trio.fail_after(WAIT):
            while data := await stream.receive_some(65536):
                chunks.append(data)
    reply = b"".join(chunks)
    head, _, tail = reply.partition(b"\n\n")
    lines = head.split(b"\n")
    assert lines[0].endswith(b" p1 +1+1 1")
    assert lines[1].endswith(b" p2 +2+2 2")
    assert lines[2] == lines[0]
    json.loads(b"\n".join(lines[3:]))
    assert tail.startswith(b"AT Singleton ")
    assert tail.endswith(b" p3 +3+3 3\n")


async def test_stale_and_tied_iamats(herd: Herd) -> None:
    first = (await talk(herd.address("Hill"), b"IAMAT st +1+1 500\n")).rstrip(b"\n")
    await eventually(partial(holds, herd.address("Campbell"), b"st", first), "Campbell")
    for line in (b"IAMAT st +2+2 499.9", b"IAMAT st +3+3 500.000"):
        reply = await talk(herd.address("Campbell"), line + b"\n")
        assert reply.split()[1] == b"Campbell"
        assert reply.split()[3:] == line.split()[1:]
    assert await whatsat_line(herd.address("Campbell"), b"st") == first


async def test_long_line_is_refused(herd: Herd) -> None:
    reply = await talk(herd.address("Hill"), b"y" * (64 * 1024 + 10) + b"\nIAMAT z +0+0 1\n")
    assert reply == b"? " + b"y" * 64 * 1024 + b"\n"


async def test_killed_neighbour_catches_up_after_restart(processes: Herd) -> None:
    for name in CS131_HERD.names:
        await processes.start(name)
    await processes.kill("Smith")
    hill = (await talk(processes.address("Hill"), b"IAMAT h +1+1 %s\n" % now())).rstrip(b"\n")
    far = (await talk(processes.address("Campbell"), b"IAMAT c +2+2 %s\n" % now())).rstrip(b"\n")
    await processes.start("Smith")
    smith = processes.address("Smith")
    await eventually(partial(holds, smith, b"h", hill), "Smith to learn Hill's update")
    await eventually(partial(holds, smith, b"c", far), "Smith to learn Campbell's update")
    # The restarted server is linked again both ways: a new update at Smith
    # reaches Hill.
    new = (await talk(smith, b"IAMAT s +3+3 %s\n" % now())).rstrip(b"\n")
    await eventually(partial(holds, processes.address("Hill"), b"s", new), "Hill to learn")

    # The log is written at most 100 ms after the fact: wait for it.
    async def hill_logged_the_links() -> bool:
        log = (processes.log_dir / "Hill.log").read_text()
        return "link to Smith" in log and "link from Smith accepted" in log

    await eventually(hill_logged_the_links, "Hill to log both links to Smith")


@pytest.mark.parametrize("implementation", ["bench.anyio_herd --backend trio"])
async def test_a_killed_server_keeps_its_table_in_its_state_dir(
    processes: Herd, tmp_path: Path
) -> None:
    # trio and asyncio are proved by the fault harness (tests/bench/test_faults.py),
    # whose kill loop costs a minute a herd; this checks the anyio herd's wiring.
    state_dir = str(tmp_path / "state")
    await processes.start("Hill", "--state-dir", state_dir)
    hill = processes.address("Hill")
    at = (await talk(hill, b"IAMAT kept +1+1 %s\n" % now())).rstrip(b"\n")
    await processes.kill("Hill")
    await processes.start("Hill", "--state-dir", state_dir)
    assert await holds(hill, b"kept", at)


async def test_out_of_descriptors_the_server_waits_and_serves_again(
    processes: Herd,
) -> None:
    # 64 descriptors: the interpreter, logs and links take some; a burst of
    # 100 connections runs the server out while accepting.
    await processes.start("Hill", open_files=64)
    hill = processes.address("Hill")
    log = processes.log_dir / "Hill.log"

    async def warned() -> bool:
        return "cannot accept: Too many open files" in log.read_text()

    burst = [socket.create_connection(hill, timeout=WAIT) for _ in range(100)]
    try:
        first = burst[0]
        first.sendall(b"IAMAT early " + UCLA + b" " + now() + b"\n")
        assert first.recv(4096).startswith(b"AT Hill ")
        # Held open until the server has run out: one that accepts one
        # connection at a time (the anyio herd) gets there after the reply.
        await eventually(warned, "the warning about descriptors")
    finally:
        for sock in burst:
            sock.close()
    # Descriptors are free again: new connections are served, every one of
    # those left waiting in the backlog has been dealt with.
    for client in (b"late1", b"late2"):
        reply = await talk(hill, b"IAMAT " + client + b" " + UCLA + b" " + now() + b"\n")
        assert reply.startswith(b"AT Hill ")
    # Said at most once a second, not once per failed accept.
    assert log.read_text().count("cannot accept") <= 10
    # And it still stops promptly.
    process = processes.servers.pop("Hill")
    process.signal(signal.SIGTERM)
    with trio.fail_after(WAIT):
        assert await process.exited() == 0


async def test_sigterm_stops_a_server_cleanly(processes: Herd) -> None:
    await processes.start("Hill")
    process = processes.servers.pop("Hill")
    async with await trio.open_tcp_stream(*processes.address("Hill")):
        process.signal(signal.SIGTERM)
        started = time.monotonic()
        with trio.fail_after(WAIT):
            assert await process.exited() == 0
    assert time.monotonic() - started < 3
    assert "Traceback" not in process.stderr_text()
    assert "stopped" in (processes.log_dir / "Hill.log").read_text()


def test_unknown_server_is_a_one_line_error(cli_implementation: str, tmp_path: Path) -> None:
    result = run_cli(*command(cli_implementation), "Westwood", "--log-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "unknown server 'Westwood'" in result.stderr


def test_bad_config_is_a_one_line_error(cli_implementation: str, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[servers.Hill]\nport = 'eight thousand'\n")
    result = run_cli(*command(cli_implementation), "Hill", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "port must be an integer" in result.stderr
    missing = run_cli(*command(cli_implementation), "Hill", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_no_server_named_is_a_one_line_error(cli_implementation: str) -> None:
    result = run_cli(*command(cli_implementation))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1


def test_port_in_use_is_a_one_line_error(cli_implementation: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "taken.toml"
        config.write_text(f"[servers.Hill]\nport = {port}\n")
        result = run_cli(
            *command(cli_implementation),
            "Hill",
            "--config",
            str(config),
            "--log-dir",
            str(tmp_path / "logs"),
        )
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        f"cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert result.stderr.count("\n") == 1


def test_help_describes_the_flags(cli_implementation: str) -> None:
    result = run_cli(*command(cli_implementation), "--help")
    assert result.returncode == 0
    for flag in ("--all", "--config", "--log-dir"):
        assert flag in result.stdout


async def test_all_servers_in_one_process(processes: Herd) -> None:
    await processes.start_together()
    reply = await talk(processes.address("Hill"), b"IAMAT one +1+1 %s\n" % now())
    await eventually(
        partial(holds, processes.address("Campbell"), b"one", reply.rstrip(b"\n")), "Campbell"
    )
    assert sorted(p.name for p in processes.log_dir.iterdir()) == sorted(
        f"{name}.log" for name in CS131_HERD.names
    )


def test_unusable_log_dir_is_a_one_line_error(cli_implementation: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(*command(cli_implementation), "Hill", "--log-dir", str(blocker / "logs"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cannot use log directory" in result.stderr


KEY = "AIzaSy-conformance-key-0123456789"


async def test_whatsat_over_http_with_a_key_from_the_environment(
    processes: Herd,
) -> None:
    keys = KeyPolicy(required=True, expected=KEY)
    async with places_server(keys=keys) as (server, url):
        await processes.start("Hill", "--places-url", url, env={"GOOGLE_PLACES_API_KEY": KEY})
        hill = processes.address("Hill")
        at_line = (await talk(hill, b"IAMAT web %s %s\n" % (UCLA, now()))).rstrip(b"\n")
        reply = await talk(hill, b"WHATSAT web 10 2\n")
        assert server.requests == 1
    first, _, body = reply.partition(b"\n")
    assert first == at_line
    assert json.loads(body)["status"] == "OK"
    assert KEY.encode() not in reply
    await processes.stop()
    log = (processes.log_dir / "Hill.log").read_text()
    assert f"Nearby Search over HTTP at {url}" in log
    assert KEY not in log


async def test_the_whole_path_over_http_in_one_command(processes: Herd) -> None:
    await processes.start_together("--places-server")
    at_line = await talk(processes.address("Hill"), b"IAMAT all %s %s\n" % (UCLA, now()))
    at_line = at_line.rstrip(b"\n")
    campbell = processes.address("Campbell")
    await eventually(partial(holds, campbell, b"all", at_line), "Campbell")
    reply = await talk(campbell, b"WHATSAT all 10 2\n")
    assert json.loads(reply.partition(b"\n")[2])["status"] == "OK"
    await processes.stop()
    assert (
        "Nearby Search over HTTP at http://127.0.0.1:"
        in (processes.log_dir / "Campbell.log").read_text()
    )


def test_bad_places_options_are_one_line_errors(cli_implementation: str, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + " and more")
    cases = [
        (["--places-url", "ftp://example.org/"], "not an http:// or https:// URL"),
        (["--places-key-file", str(tmp_path / "none")], "cannot read key file"),
        (["--places-key-file", str(key_file)], "key is empty or holds white space"),
        (["--places-url", "http://127.0.0.1:1/", "--places-server"], "not both"),
        (["--places-timeout", "0"], "--places-timeout must be"),
        (["--places-concurrency", "0"], "--places-concurrency must be"),
    ]
    for options, message in cases:
        result = run_cli(*command(cli_implementation), "Hill", *options, "--log-dir", str(tmp_path))
        assert result.returncode == 2, options
        assert result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr
        assert KEY not in result.stderr


async def test_a_mixed_herd_converges(implementation: str, processes: Herd) -> None:
    """Trio and asyncio servers in one herd: the wire protocol is the same."""
    # Every other implementation (asyncio's and anyio's) is mixed with trio.
    other = "bench.asyncio_herd" if implementation == "trioherd" else "trioherd"
    for i, name in enumerate(CS131_HERD.names):
        # Alternate, so every link joins a trio server with an asyncio one
        # somewhere along each route.
        module = implementation if i % 2 else other
        await processes.start(name, command=command(module))
    await _converges(processes)


async def test_a_herd_of_every_implementation_converges(tmp_path: Path) -> None:
    """Native trio, native asyncio and anyio on both backends, in one herd."""
    herd = make_herd("trioherd", tmp_path)
    try:
        # Every route from Hill (trio) to Campbell (asyncio) goes through
        # anyio servers, and every anyio server has a native neighbour.
        for name, implementation in zip(
            ("Hill", "Jaquez", "Smith", "Campbell", "Singleton"),
            (
                "trioherd",
                "bench.anyio_herd --backend trio",
                "bench.anyio_herd --backend asyncio",
                "bench.asyncio_herd",
                "bench.anyio_herd --backend asyncio --uvloop",
            ),
            strict=True,
        ):
            await herd.start(name, command=command(implementation))
        await _converges(herd)
    finally:
        await herd.stop()


async def _converges(processes: Herd) -> None:
    updates = {}
    for name in ("Hill", "Campbell", "Jaquez"):
        line = await talk(processes.address(name), b"IAMAT m%s +1+1 %s\n" % (name.encode(), now()))
        updates[b"m" + name.encode()] = line.rstrip(b"\n")
    for server in CS131_HERD.names:
        for client, at_line in updates.items():
            await eventually(
                partial(holds, processes.address(server), client, at_line), f"{server}: {client!r}"
            )


async def test_asyncio_on_uvloop(tmp_path: Path) -> None:
    herd = make_herd("bench.asyncio_herd", tmp_path)
    try:
        for name in CS131_HERD.names:
            await herd.start(name, "--uvloop")
        line = (await talk(herd.address("Hill"), b"IAMAT uv +1+1 %s\n" % now())).rstrip(b"\n")
        await eventually(partial(holds, herd.address("Campbell"), b"uv", line), "Campbell")
    finally:
        await herd.stop()
