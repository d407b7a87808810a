"""Durable state: a server's journal on disk, written by a thread.

Used by every herd (trio, asyncio, anyio): nothing here touches an event loop.
The division of work is Redis's ``appendfsync everysec``:

* the event loop collects what the state stores (the table's ``on_store``
  and the marks' ``on_mark`` are :meth:`Journal.add`, a ``list.append``)
  and, before a reply or a link's batch can carry them out of the process,
  writes them to ``STATE_DIR/NAME.journal`` with one ``write()``
  (:meth:`Journal.write`; the records of every client read since the last
  write go in one, a group commit). That puts them in the kernel's page cache, not
  on the disk: it costs a system call, never a wait for the disk, and from
  then on a kill -9 of the server cannot lose them;
* a thread fsyncs the file every :data:`SYNC_INTERVAL`, so a power cut
  loses at most about a second of records;
* the same thread compacts the file when it holds more than twice as many
  records as the table plus :data:`COMPACT_SLACK`: it writes a snapshot
  (the table and the marks) to a temporary file, fsyncs it, renames it over
  the journal and fsyncs the directory.

:func:`open_journal` reads the journal back into a fresh server state before
the server listens, so a restarted server answers at once. The journal
also holds the table's epoch and its stores' numbers (``Position``
records), so the restarted table continues the same life and its links
resume where they were (core/resume.py) instead of resending the table. A torn or corrupt
tail (a crash in the middle of a write) is cut off, logged, and the records
before it are loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from trioherd.core.journal import (
    MAGIC_RUNS,
    Entry,
    Mark,
    NotAJournal,
    Position,
    decode,
    encode,
    encode_all,
)
from trioherd.core.messages import parse_at, parse_at_run
from trioherd.core.state import ServerState
from trioherd.core.table import LocationTable

#: How often the file is fsynced: the most a power cut can lose.
SYNC_INTERVAL = 1.0
#: Compaction waits until the file holds this many records more than twice
#: the table, so a small table is not rewritten over and over.
COMPACT_SLACK = 100_000
#: Records encoded per write while snapshotting, to bound the memory a
#: snapshot of a large table takes at once.
SNAPSHOT_CHUNK = 50_000
#: How far a restarted table's sequence numbers jump past the journal's
#: last. Every store is written before it can reach a neighbour, so after a
#: kill -9 no neighbour holds a mark past the journal; after a power cut the
#: last second of stores may be gone from the journal though a neighbour
#: has marked them, and reusing their numbers would hide new stores from
#: that neighbour's resume. No herd stores this many in a second.
RESTART_SEQ_GAP = 1 << 32


class StateDirError(Exception):
    """The state directory or a journal in it is unusable; one line for the user."""


def journal_path(state_dir: Path, name: str) -> Path:
    """Where server ``name`` keeps its journal."""
    return state_dir / f"{name}.journal"


class Journal:
    """One server's journal file: written by the event loop, synced by a thread.

    Made by :func:`open_journal`; stop it with :meth:`close`, which writes
    and syncs what is left.
    """

    def __init__(
        self,
        path: Path,
        file: BinaryIO,
        state: ServerState,
        records: int,
        log: logging.Logger,
        *,
        runs: bool = True,
    ) -> None:
        self.path = path
        self.log = log
        self._fd = file.fileno()
        self._file = file
        self._state = state
        self._records_in_file = records
        # Whether the file is of the format with run records (core/journal.py);
        # a file of the first format is appended to in it until a snapshot.
        self._runs = runs
        self._added: list[Entry] = []
        # The table's sequence number when the loop last wrote: the AT
        # records it writes next are the stores numbered from one past it.
        self._written_seq = state.table.seq
        # Whether the next AT records need a Position ahead of them: the
        # first after loading, and the first after a snapshot's copy (the
        # snapshot's last Position says nothing about them).
        self._position_due = True
        #: What the event loop calls for each record it stores.
        self.add = self._added.append
        # Held for a write() or for swapping files: never across an fsync
        # or a snapshot, so the loop never waits on the disk for it.
        self._lock = threading.Lock()
        # While a snapshot is being written: what was written after its copy.
        self._since_snapshot: list[bytes] | None = None
        self._failed = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"journal {path.name}", daemon=True)

    def start(self) -> None:
        """Start the sync thread, and journal whatever the state stores."""
        self._state.table.on_store = self.add
        self._state.marks.on_mark = self.add
        self._state.write_stored = self.write
        self._thread.start()

    def write(self) -> None:
        """Write what was added since the last call (ServerState.write_stored).

        The loop calls it before a client's reply is made, before a link
        takes records and after each read of a neighbour's, so the replies
        of one pass of the loop share one write (a group commit).
        One ``write()`` into the kernel's page cache, before the replies go
        out (as Redis writes its append-only file before answering): an
        acknowledged record survives a kill -9 of the server. Only a power
        cut can lose what the last fsync did not cover.
        """
        if not self._added:
            return
        table = self._state.table
        data = encode_all(self._added, runs=self._runs)
        count = len(self._added)
        self._added.clear()
        stored_from = self._written_seq + 1
        self._written_seq = table.seq
        with self._lock:
            if self._failed:
                return
            if self._position_due and table.seq >= stored_from:
                data = encode(Position(table.epoch, stored_from)) + data
                count += 1
                self._position_due = False
            try:
                os.write(self._fd, data)
            except OSError as exc:
                self._give_up(exc)
                return
            self._records_in_file += count
            if self._since_snapshot is not None:
                self._since_snapshot.append(data)

    def close(self) -> None:
        """Write and sync what is left, then close the file (blocks briefly)."""
        self.write()
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join()
        self._file.close()

    def _give_up(self, exc: OSError) -> None:
        # A full or failing disk must not take the server down: it keeps
        # serving from memory, as it would without a state directory.
        self.log.error("journal %s: %s; no longer journaling", self.path, exc)
        self._failed = True
        self._state.table.on_store = None
        self._state.marks.on_mark = _forget

    def _run(self) -> None:
        try:
            while not self._closing.wait(SYNC_INTERVAL):
                os.fsync(self._fd)
                if self._records_in_file > 2 * len(self._state.table) + COMPACT_SLACK:
                    self._compact()
            os.fsync(self._fd)
        except OSError as exc:
            with self._lock:
                self._give_up(exc)

    def _compact(self) -> None:
        started = time.monotonic()
        with self._lock:
            self._since_snapshot = []
            self._position_due = True
        # Marks first: a mark vouches for records stored before it, and
        # those are all in the table copied after it.
        marks: list[Entry] = list(self._state.marks.all())
        table = self._state.table
        lines = table.numbered_lines()
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "wb") as snapshot:
            snapshot.write(MAGIC_RUNS)
            follows = -1
            for start in range(0, len(lines), SNAPSHOT_CHUNK):
                chunk: list[Entry] = []
                for line, seq in lines[start : start + SNAPSHOT_CHUNK]:
                    # A Position only where the numbers skip (a record
                    # stored again since moved to the end).
                    if seq != follows:
                        chunk.append(Position(table.epoch, seq))
                    chunk.append(line)
                    follows = seq + 1
                snapshot.write(encode_all(chunk, runs=True))
            snapshot.write(encode_all(marks, runs=True))
            snapshot.flush()
            os.fsync(snapshot.fileno())
        new_file = _open_locked(temporary)
        with self._lock:
            # What the loop wrote meanwhile goes after the snapshot. (Records
            # it wrote just before the copy are in both: loading one twice
            # changes nothing.)
            late = self._since_snapshot
            self._since_snapshot = None
            os.write(new_file.fileno(), b"".join(late))
            os.replace(temporary, self.path)
            self._runs = True
            old, self._file = self._file, new_file
            self._fd = new_file.fileno()
            self._records_in_file = len(lines) + len(marks) + len(late)
        old.close()
        os.fsync(self._fd)
        _sync_directory(self.path.parent)
        self.log.info(
            "journal %s: compacted to %d records in %.2f s",
            self.path,
            self._records_in_file,
            time.monotonic() - started,
        )


def _forget(mark: Mark) -> None:
    pass


@contextlib.contextmanager
def journaling(
    state_dir: Path | None, servers: Sequence[tuple[ServerState, logging.Logger]]
) -> Iterator[None]:
    """Load each server's journal from ``state_dir`` and keep journaling until exit.

    With ``state_dir`` ``None`` this does nothing: state lives in memory only.

    Raises:
        StateDirError: see :func:`open_journal`.
    """
    if state_dir is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        for state, log in servers:
            journal = open_journal(state_dir, state, log)
            stack.callback(journal.close)
            journal.start()
        yield


def open_journal(state_dir: Path, state: ServerState, log: logging.Logger) -> Journal:
    """Load ``state``'s journal from ``state_dir`` into it; return the journal, not started.

    Raises:
        StateDirError: the directory cannot be made, the journal cannot be
            read or is not one, or another process holds it.
    """
    path = journal_path(state_dir, state.name)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        file = _open_locked(path)
    except OSError as exc:
        raise StateDirError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        started = time.monotonic()
        file.seek(0)
        data = file.read()
        try:
            decoded = decode(data)
        except NotAJournal:
            raise StateDirError(f"{path} is not a trioherd journal; not touching it") from None
        if decoded.problem is not None:
            log.warning(
                "journal %s: %s: cut off %d bytes, loading the %d records before it",
                path,
                decoded.problem,
                len(data) - decoded.good_length,
                len(decoded.entries),
            )
            file.truncate(decoded.good_length)
        runs = decoded.runs
        if decoded.good_length == 0:
            file.seek(0)
            file.truncate()
            file.write(MAGIC_RUNS)
            file.flush()
            runs = True
        file.seek(0, os.SEEK_END)
        del data
        loaded = _apply(state, decoded.entries)
        log.info(
            "journal %s: loaded %d clients from %d records in %.2f s",
            path,
            loaded,
            len(decoded.entries),
            time.monotonic() - started,
        )
        return Journal(path, file, state, len(decoded.entries), log, runs=runs)
    except OSError as exc:
        file.close()
        raise StateDirError(f"cannot read {path}: {exc.strerror or exc}") from None
    except BaseException:
        file.close()
        raise


#: AT records parsed at once while loading (parse_at_run's run).
LOAD_RUN = 4096


def _apply(state: ServerState, entries: list[Entry]) -> int:
    """Replay the journal into ``state``; the table takes up the life it records."""
    table = state.table
    # The number of the next AT record, once a Position has said it.
    number: int | None = None
    highest = 0
    # Consecutive AT records, taken a run at a time (a million load as
    # fast as a resync's reads are taken).
    run: list[bytes] = []
    for entry in [*entries, None]:
        if type(entry) is bytes:
            run.append(entry)
            if len(run) < LOAD_RUN:
                continue
        if run:
            records = parse_at_run(run)
            if records is not None:
                table.offer_many(records, number)
                if number is not None:
                    number += len(run)
                highest = max(highest, table.seq)
            else:
                number, highest = _apply_one_by_one(table, run, number, highest)
            run = []
        if isinstance(entry, Mark):
            state.marks.restore(entry)
        elif isinstance(entry, Position):
            table.epoch = entry.epoch
            number = entry.seq
    if number is not None:
        table.seq = highest + RESTART_SEQ_GAP
    return len(table)


def _apply_one_by_one(
    table: LocationTable, lines: list[bytes], number: int | None, highest: int
) -> tuple[int | None, int]:
    """AT records that are not all as servers write them, one at a time."""
    for line in lines:
        if number is not None:
            # Stored again under its own number, whether or not the
            # table takes it (a record both in a snapshot and in what
            # was written during it is offered twice).
            table.seq = number - 1
            number += 1
        at = parse_at(line)
        # A journal holds only lines that were valid when stored.
        if at is not None:
            table.offer(at, from_client=False)
        highest = max(highest, table.seq)
    return number, highest


def _open_locked(path: Path) -> BinaryIO:
    """``path`` opened for reading and appending, locked against a second server."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateDirError(f"{path} is in use by another server") from None
    return os.fdopen(fd, "r+b", buffering=1 << 20)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
