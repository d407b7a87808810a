"""Log files of a server process: nothing lost at SIGTERM, SIGHUP for logrotate."""

from __future__ import annotations

import re
import signal
from collections import Counter
from pathlib import Path

import pytest
import trio

from bench.procs import Herd

from processes import PER_LOOP, with_anyio_on
from support import WAIT, eventually


@pytest.fixture(params=PER_LOOP)
def implementation(request: pytest.FixtureRequest) -> str:
    """Log files are the same code on every implementation of an event loop: one each."""
    return str(request.param)


#: What starts every record: a UTC timestamp to the millisecond and a level.
RECORD = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|NOTICE|WARNING|ERROR) ")


def read_logs(log_dir: Path, name: str) -> list[bytes]:
    """Every record of server ``name``, rotated files first, oldest first."""
    rotated = [p for p in log_dir.glob(f"{name}.log.*") if p.suffix[1:].isdigit()]
    rotated.sort(key=lambda p: -int(p.suffix[1:]))
    records = []
    for path in [*rotated, log_dir / f"{name}.log"]:
        records += path.read_bytes().splitlines()
    for record in records:
        assert RECORD.match(record), record
    return records


async def client(address: tuple[str, int], n: int, sent: list[bytes], got: list[bytes]) -> None:
    """IAMAT after IAMAT, each after the last one's reply, until the server closes."""
    stream = await trio.open_tcp_stream(*address)
    pending = b""
    async with stream:
        for i in range(1_000_000):
            line = b"IAMAT load%d +34.068930-118.445127 %d.%09d" % (n, 1_600_000_000 + i, n)
            try:
                await stream.send_all(line + b"\n")
            except trio.BrokenResourceError:
                return
            sent.append(line)
            while b"\n" not in pending:
                try:
                    data = await stream.receive_some(4096)
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    return
                pending += data
            reply, pending = pending.split(b"\n", 1)
            got.append(reply)


@pytest.mark.parametrize("implementation", with_anyio_on("trio", PER_LOOP))
async def test_sigterm_under_load_loses_no_line(processes: Herd) -> None:
    # Small files, so that the load also rotates them: no record may be
    # lost at a rotation either.
    await processes.start("Hill", "--log-max-bytes", "30000", "--log-backups", "1000")
    sent: list[list[bytes]] = [[] for _ in range(20)]
    got: list[list[bytes]] = [[] for _ in range(20)]
    with trio.fail_after(WAIT * 2):
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(client, processes.address("Hill"), n, sent[n], got[n])

            async def loaded() -> bool:
                return sum(map(len, got)) >= 1000

            await eventually(loaded, "1000 replies")
            processes.servers["Hill"].signal(signal.SIGTERM)
    with trio.fail_after(WAIT):
        assert await processes.servers["Hill"].exited() == 0
    records = read_logs(processes.log_dir, "Hill")
    logged_in = Counter(r.split(b" < ", 1)[1] for r in records if b" < IAMAT load" in r)
    logged_out = Counter(r.split(b" > ", 1)[1] for r in records if b" > AT Hill " in r)
    # Every reply a client got was logged, and no other...
    assert logged_out == Counter(reply for replies in got for reply in replies)
    # ...and so was every line answered; one more per client may have
    # arrived as the server stopped, unanswered.
    answered = Counter(
        line for lines, replies in zip(sent, got, strict=True) for line in lines[: len(replies)]
    )
    assert not answered - logged_in
    assert not logged_in - Counter(line for lines in sent for line in lines)
    assert len(list(processes.log_dir.glob("Hill.log.*"))) >= 2
    assert records[-1].endswith(b"NOTICE log closed")
    assert any(b"NOTICE received SIGTERM" in r for r in records)


@pytest.mark.parametrize("implementation", with_anyio_on("asyncio", PER_LOOP))
async def test_sighup_reopens_a_moved_log(processes: Herd) -> None:
    # At warning: line records are off, start, reopen and stop lines are not.
    await processes.start("Hill", "--log-level", "warning")
    log = processes.log_dir / "Hill.log"
    moved = processes.log_dir / "Hill.log.moved"

    async def started() -> bool:
        # And the offline index's last note (ready, or failed) is written,
        # so the reopened log's first record is the reopen's own.
        text = log.read_bytes() if log.exists() else b""
        return b"NOTICE Hill listening on" in text and (
            b"offline places index ready" in text or b"index failed to load" in text
        )

    await eventually(started, "the start line and the index's note")
    log.rename(moved)
    processes.servers["Hill"].signal(signal.SIGHUP)

    async def reopened() -> bool:
        return log.exists() and b"received SIGHUP: log reopened" in log.read_bytes()

    await eventually(reopened, "a new log at the old path")
    processes.servers["Hill"].signal(signal.SIGTERM)
    with trio.fail_after(WAIT):
        assert await processes.servers["Hill"].exited() == 0
    records = read_logs(processes.log_dir, "Hill")
    assert b"SIGHUP" not in moved.read_bytes()
    assert records[0].endswith(b"NOTICE received SIGHUP: log reopened")
    assert b"NOTICE received SIGTERM: stopping" in records[1]
    assert records[-1].endswith(b"NOTICE log closed")
