"""The log files: escaped records, rotation at the size, a disk that blocks or fills."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio

from trioherd.core.config import build_herd
from trioherd.herd import RunningHerd, run_herd
from trioherd.logs import HerdLogs, escape
from trioherd.places import OfflinePlaces

from support import WAIT, herd_running, talk

RECORD = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|NOTICE|WARNING|ERROR) ")
SOLO = build_herd({"Solo": ("127.0.0.1", 0, [])})


def test_escape_keeps_printable_ascii_and_escapes_the_rest() -> None:
    assert escape(b"IAMAT kiwi +1+1 5") == b"IAMAT kiwi +1+1 5"
    assert escape(b"a\nb\rc\x1b[2Jd\\e\x85\xc2\x85\x7f") == (
        b"a\\x0ab\\x0dc\\x1b[2Jd\\\\e\\x85\\xc2\\x85\\x7f"
    )


async def test_control_characters_cannot_forge_a_record(
    tmp_path: Path, offline_places: OfflinePlaces
) -> None:
    forged = b"2026-01-01T00:00:00.000Z INFO conn 9 127.0.0.1:9 < IAMAT forged +1+1 5"
    # Every byte that some reader takes for the end of a line (str.splitlines
    # takes \x0b, \x0c, \x1c-\x1e and \x85 too), and a terminal escape.
    separators = [b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x85", b"\xc2\x85", b"\x1b[2K\r"]
    payload = b"".join(b"IAMAT kiwi%s%s\n" % (sep, forged) for sep in separators)
    payload += b"IAMAT kiwi\n" + forged + b"\n"
    async with herd_running(SOLO, ["Solo"], tmp_path, offline_places) as running:
        reply = await talk(running.addresses["Solo"], payload)
    assert reply.count(b"\n") == len(separators) + 2
    text = (tmp_path / "Solo.log").read_bytes()
    records = text.decode("ascii").splitlines()
    assert len(records) == text.count(b"\n")
    for record in records:
        assert RECORD.match(record.encode()), record
    received = [r for r in records if re.match(r"\S+ INFO conn 1 \S+ < ", r)]
    assert len(received) == len(separators) + 2
    # The forged record stays inside the real one that carried it, escaped...
    for sep, record in zip(separators, received, strict=False):
        assert record.endswith(" < IAMAT kiwi" + escape(sep).decode() + forged.decode())
    # ...and a line of its own is a record of its own, under its real stamp.
    assert received[-1].endswith(" < " + forged.decode())
    assert not received[-1].startswith("2026-01-01T00:00:00.000Z")


def test_rotation_at_the_size(tmp_path: Path) -> None:
    max_bytes = 4096
    with HerdLogs(tmp_path, ["Solo"], echo_errors=False, max_bytes=max_bytes, backups=2) as logs:
        lines = logs.lines("Solo")
        for i in range(1000):
            lines.received("conn 1 127.0.0.1:1", [b"IAMAT c%d +1+1 %d" % (i, i)])
    files = [tmp_path / name for name in ("Solo.log.2", "Solo.log.1", "Solo.log")]
    assert sorted(tmp_path.iterdir()) == sorted(files)
    records = [record for path in files for record in path.read_bytes().splitlines()]
    longest = max(map(len, records)) + 1
    for path in files[:2]:
        # Rotated when the next record would not fit: full to one record.
        assert max_bytes - longest < path.stat().st_size <= max_bytes
    numbers = [int(r.split(b"IAMAT c", 1)[1].split()[0]) for r in records if b" < IAMAT" in r]
    # The newest records, whole and in order; the oldest went with the third backup.
    assert numbers == list(range(numbers[0], 1000))
    assert records[-1].endswith(b"NOTICE log closed")


def _drain(fd: int, start: threading.Event, into: list[bytes]) -> None:
    start.wait(WAIT)
    while data := os.read(fd, 65536):
        into.append(data)


async def test_a_blocked_disk_drops_lines_counts_them_and_serving_goes_on(
    tmp_path: Path, offline_places: OfflinePlaces
) -> None:
    # The log is a pipe nobody reads yet: the writer thread blocks in
    # write() as on a hung disk, until the test starts draining it.
    fifo = tmp_path / "Solo.log"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(reader, True)
    drain, read = threading.Event(), list[bytes]()
    drainer = threading.Thread(target=_drain, args=(reader, drain, read))
    drainer.start()
    count = 20000
    try:
        with HerdLogs(tmp_path, ["Solo"], echo_errors=False, buffer_bytes=2**20) as logs:
            with trio.fail_after(WAIT):
                async with trio.open_nursery() as nursery:
                    serve = partial(run_herd, SOLO, ["Solo"], offline_places, logs)
                    running: RunningHerd = await nursery.start(partial(serve, handle_signals=False))
                    payload = b"".join(b"IAMAT c%d +1+1 %d\n" % (i, i) for i in range(count))
                    reply = await talk(running.addresses["Solo"], payload)
                    # Served in full while its log could not be written.
                    assert reply.count(b"\nAT Solo ") == count - 1
                    drain.set()
                    nursery.cancel_scope.cancel()
    finally:
        drain.set()
        drainer.join(WAIT)
        os.close(reader)
    text = b"".join(read)
    records = text.splitlines()
    for record in records:
        assert RECORD.match(record), record
    notes = [re.search(rb"WARNING (\d+) log lines dropped", r) for r in records]
    dropped = sum(int(note.group(1)) for note in notes if note)
    assert dropped > 0
    written = sum(1 for r in records if b" < IAMAT" in r or b" > AT Solo" in r)
    # Every line in and out was either written or counted as dropped (the
    # count also holds a few events: accepted, closed).
    assert 2 * count <= written + dropped <= 2 * count + 10
    # The last note of drops may follow the stop line that was written with
    # the records kept before them.
    closed = b"NOTICE log closed; %d log lines dropped in all" % dropped
    assert any(record.endswith(closed) for record in records[-2:])


def _fill(path: Path) -> int:
    """Write ``path`` until the disk is full; the error number that said so."""
    with path.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(b"x" * 65536)
            except OSError as exc:
                return exc.errno or 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of our own (root only), unmounted at the end."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_drops_lines_and_says_so_when_there_is_room(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = small_disk / "Solo.log"
    filler = small_disk / "filler"
    with HerdLogs(small_disk, ["Solo"], echo_errors=False) as logs:
        lines = logs.lines("Solo")
        # Fill the disk, then log on.
        assert _fill(filler) == errno.ENOSPC
        lines.received("conn 1 127.0.0.1:1", [b"IAMAT lost%d +1+1 5" % i for i in range(5000)])
        # The writer thread says so once it has failed: poll for that, bounded.
        deadline = time.monotonic() + WAIT
        while "cannot write" not in capsys.readouterr().err:
            assert time.monotonic() < deadline, "the writer never reported the full disk"
            time.sleep(0.01)
        filler.unlink()
        lines.received("conn 1 127.0.0.1:1", [b"IAMAT kept +1+1 5"])
    records = log.read_bytes().splitlines()
    kept = [r for r in records if b"IAMAT kept" in r]
    assert len(kept) == 1
    notes = [re.search(rb"WARNING (\d+) log lines dropped", r) for r in records]
    dropped = sum(int(note.group(1)) for note in notes if note)
    lost = sum(1 for r in records if b"IAMAT lost" in r)
    assert lost + dropped == 5000
