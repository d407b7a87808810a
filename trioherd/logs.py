"""Per-server log files: every line in and out, at the event loop's speed.

Each server logs to ``DIR/NAME.log``. Two kinds of record land there, in the
order they happened:

* *line records*, one per line a connection or a link carries. There are
  tens of thousands a second under load, so they skip :mod:`logging`
  entirely: :class:`LineLog` formats them to bytes on the event loop's
  thread (the timestamp is cached per millisecond) and appends them to the
  file's buffer, which costs about as much as building the reply did;
* *events* (connections accepted and closed, links, warnings, errors), few
  and varied, through an ordinary :class:`logging.Logger` whose handler
  appends to the same buffer.

One writer thread per process empties every buffer in large writes: at
least every :data:`FLUSH_INTERVAL`, sooner when a buffer passes
:data:`FLUSH_BYTES`, and once more when the logs close, so a clean stop
(SIGTERM, Ctrl-C, an error) loses no record. The event loop never waits for
the disk. If the disk is slow, full or gone, a buffer grows to its bound and
then new records are dropped and counted, and the next write that succeeds
says ``N log lines dropped``; the servers serve on either way.

A file is rotated when the next record would take it past its size limit
(``NAME.log`` becomes ``NAME.log.1`` and so on), and :meth:`HerdLogs.reopen`
(SIGHUP) reopens every file at its path, for logrotate.

A record is one physical line whatever a client sends: control bytes,
backslashes and bytes outside printable ASCII are written as ``\\xNN``
escapes (``\\\\`` for a backslash), so a client ID holding a newline or a
terminal escape can neither forge a record nor garble the reader's screen.
This module is shared by the trio herd and the asyncio contrast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

#: The writer thread writes every buffer at least this often (seconds)...
FLUSH_INTERVAL = 0.1
#: ...and as soon as one holds this many bytes.
FLUSH_BYTES = 64 * 1024
#: A buffer the writer cannot empty grows to this many bytes, then drops records.
DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024
#: Rotation: a file is rotated before it would pass this size...
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
#: ...and this many old files are kept (``NAME.log.1`` is the newest).
DEFAULT_BACKUPS = 5
#: How long closing the logs waits for a last write to a disk that hangs.
CLOSE_TIMEOUT = 5.0


class LogSetupError(Exception):
    """The log directory or a log file cannot be used; one line for the user."""


# Printable ASCII but the backslash passes; every other byte is escaped.
_UNSAFE = re.compile(rb"[^\x20-\x5b\x5d-\x7e]")
# The same, passing the newline: escapes a batch of lines in one pass.
_UNSAFE_BUT_NEWLINE = re.compile(rb"[^\n\x20-\x5b\x5d-\x7e]")
_ESCAPES = {bytes([b]): b"\\x%02x" % b for b in range(256)}
_ESCAPES[b"\\"] = b"\\\\"


def _escape_match(match: re.Match[bytes]) -> bytes:
    return _ESCAPES[match.group()]


def escape(data: bytes) -> bytes:
    """``data`` as one safe line of log: printable ASCII, everything else escaped."""
    if _UNSAFE.search(data) is None:
        return data
    return _UNSAFE.sub(_escape_match, data)


def show(line: bytes) -> str:
    """A received or sent line as text for a message: escaped, never garbling a log."""
    return escape(line).decode("ascii")


def summary(reply: bytes) -> bytes:
    """A reply as one line of text (not escaped): a WHATSAT reply's JSON is reduced to its size."""
    first, _, rest = reply.partition(b"\n")
    rest = rest.rstrip(b"\n")
    if rest:
        return b"%s [+ places JSON, %d bytes]" % (first, len(rest))
    return first


def _stamp_of(ms: int) -> bytes:
    seconds, milli = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode() + b".%03dZ" % milli


class _Clock:
    """UTC timestamps to the millisecond, formatted once per millisecond.

    The cache is one tuple, replaced whole, so a second thread reading it
    mid-update sees an old stamp or a new one, never half of each.
    """

    def __init__(self) -> None:
        self._cached = (-1, b"")

    def stamp(self) -> bytes:
        ms = time.time_ns() // 1_000_000
        cached_ms, stamp = self._cached
        if ms != cached_ms:
            stamp = _stamp_of(ms)
            self._cached = (ms, stamp)
        return stamp


_CLOCK = _Clock()


class LogFile:
    """One ``NAME.log``: a buffer the event loop appends to, the writer thread empties.

    Args:
        path: the file.
        max_bytes: rotate before the file would pass this size (0: never).
        backups: rotated files kept.
        buffer_bytes: the bound on records waiting for the disk.
        wake: called when the buffer passes :data:`FLUSH_BYTES`.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        backups: int,
        buffer_bytes: int,
        wake: threading.Event,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.buffer_bytes = buffer_bytes
        self._wake = wake
        # Held for a list append on the loop's side, a swap on the writer's.
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._woken = False
        #: Whether any record was ever appended (a server that never
        #: started leaves no empty file behind: HerdLogs.__exit__).
        self.used = False
        #: Records dropped since the last that was written, and in all.
        self._dropped = 0
        self.dropped_total = 0
        # From here on only the writer thread (or the closing one) touches these.
        self._reopen = False
        self._failing = False
        self._torn = False
        self._done = 0
        self._fd: int | None = None
        self._size = 0
        self._open()

    def append(self, data: bytes, records: int, *, always: bool = False) -> None:
        """Queue ``records`` whole records (``data``, each ending in ``\\n``) for writing.

        Past the buffer's bound they are dropped and counted, unless
        ``always`` (a start or stop line: a few per server's life).
        """
        self.used = True
        with self._lock:
            if self._pending_bytes + len(data) > self.buffer_bytes and not always:
                self._dropped += records
                self.dropped_total += records
                return
            self._pending.append(data)
            self._pending_bytes += len(data)
            wake = self._pending_bytes >= FLUSH_BYTES and not self._woken
            if wake:
                self._woken = True
        if wake:
            self._wake.set()

    def reopen(self) -> None:
        """Have the writer close the file and open its path anew (after logrotate moved it)."""
        self._reopen = True

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def close(self) -> None:
        """Close the file; only once the writer thread is done with it."""
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def flush(self) -> None:
        """Write what the buffer holds (the writer thread's job)."""
        with self._lock:
            chunk, self._pending, self._pending_bytes = self._pending, [], 0
            dropped, self._dropped = self._dropped, 0
            self._woken = False
        if not chunk and not dropped and not self._reopen and self._fd is not None:
            return
        torn = self._torn
        # A record cut short by a failed write is ended before the next one.
        data = b"".join(([b"\n"] if torn else []) + chunk)
        if dropped:
            # After the records that were kept: the drops came once the
            # buffer was full, that is after every record in it.
            data += b"%s WARNING %d log lines dropped: the disk was full, failing or too slow\n" % (
                _stamp_of(time.time_ns() // 1_000_000),
                dropped,
            )
        self._done = 0
        try:
            if self._reopen or self._fd is None:
                self._reopen = False
                self._close()
                self._open()
            self._write(data)
        except OSError as exc:
            self._fail(exc, data, dropped, torn)
        else:
            self._failing = False
            self._torn = False

    def _fail(self, exc: OSError, data: bytes, dropped: int, torn: bool) -> None:
        done = self._done
        rest = data[done:]
        lost = rest.count(b"\n")
        owed = 0
        if dropped and rest:
            lost -= 1  # the note of earlier drops went unwritten too...
            owed = dropped  # ...so they are still to be told
        if torn and done == 0:
            lost -= 1  # the newline that ends a torn record is no record
        if done:
            self._torn = data[done - 1 : done] != b"\n"
        with self._lock:
            self._dropped += lost + owed
            self.dropped_total += lost
        if not self._failing:
            self._failing = True
            print(
                f"trioherd: cannot write {self.path}: {exc.strerror or exc}; "
                "dropping log lines until it works again",
                file=sys.stderr,
                flush=True,
            )

    def _write(self, data: bytes) -> None:
        start = 0
        while start < len(data):
            stop = len(data)
            if self.max_bytes and self._size + stop - start > self.max_bytes:
                # The whole lines that fit, then a new file.
                stop = data.rfind(b"\n", start, start + self.max_bytes - self._size) + 1
                if stop <= start:
                    if self._size:
                        self._rotate()
                        continue
                    # One line longer than a whole file: alone in one.
                    stop = data.find(b"\n", start) + 1 or len(data)
            self._write_all(data, start, stop)
            start = stop

    def _write_all(self, data: bytes, start: int, stop: int) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while start < stop:
            written = os.write(self._fd, view[start:stop])
            self._size += written
            start += written
            self._done = start

    def _rotate(self) -> None:
        self._close()
        if self.backups:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._open()


class LineLog:
    """The line records of one server: what each connection and link carried.

    The layers call it for every line; when the server's level is above
    ``info`` every method returns at once.
    """

    def __init__(self, file: LogFile, *, enabled: bool) -> None:
        self._notices = file
        self._file = file if enabled else None
        #: Whether line records are written at all.
        self.enabled = enabled

    def received(self, conn: str, lines: Sequence[bytes]) -> None:
        """The lines of one read from connection ``conn`` (without their newlines)."""
        if self._file is not None and lines:
            head = b"%s INFO %s < " % (_CLOCK.stamp(), conn.encode())
            self._records(self._file, head, b"\n".join(lines), len(lines))

    def sent(self, conn: str, replies: Sequence[bytes]) -> None:
        """The replies of one write to connection ``conn``."""
        if self._file is not None and replies:
            head = b"%s INFO %s > " % (_CLOCK.stamp(), conn.encode())
            body = b"\n".join([summary(reply) for reply in replies])
            self._records(self._file, head, body, len(replies))

    def link_sent(self, peer: str, batch: bytes) -> None:
        """A batch of AT lines (each ending in a newline) written to the link to ``peer``."""
        if self._file is not None and batch:
            head = b"%s INFO link to %s > " % (_CLOCK.stamp(), peer.encode())
            body = batch[:-1] if batch.endswith(b"\n") else batch
            self._records(self._file, head, body, body.count(b"\n") + 1)

    @staticmethod
    def _records(file: LogFile, head: bytes, body: bytes, count: int) -> None:
        """``head`` and a line of ``body``, for each line of it: ``count`` records.

        One escape pass, one replace and one append for a whole read or
        write, however many lines it held: the cost is per call, not per line.
        """
        if _UNSAFE_BUT_NEWLINE.search(body) is not None:
            body = _UNSAFE_BUT_NEWLINE.sub(_escape_match, body)
        file.append(head + body.replace(b"\n", b"\n" + head) + b"\n", count)

    def notice(self, message: str) -> None:
        """An event written whatever the level: a server's start and stop."""
        record = b"%s NOTICE %s\n" % (_CLOCK.stamp(), escape(message.encode()))
        self._notices.append(record, 1, always=True)


class _FileHandler(logging.Handler):
    """Appends events to a :class:`LogFile`'s buffer, one safe record each."""

    def __init__(self, file: LogFile) -> None:
        super().__init__()
        self.file = file

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = escape(record.getMessage().encode("utf-8", "backslashreplace"))
            data = b"%s %s %s\n" % (_CLOCK.stamp(), record.levelname.encode(), message)
            records = 1
            if record.exc_info:
                # A traceback's lines follow, each indented under a bar, so
                # no line of it can pass for a record of its own.
                trace = logging.Formatter().formatException(record.exc_info)
                data += b"".join(
                    b"    | %s\n" % escape(line.encode("utf-8", "backslashreplace"))
                    for line in trace.splitlines()
                )
                records += trace.count("\n") + 1
            self.file.append(data, records)
        except Exception:
            self.handleError(record)


class HerdLogs:
    """The log files of the servers run by one process, and their writer thread.

    Use as a context manager: the writer thread runs inside the ``with``,
    and leaving it writes every record still buffered.

    Args:
        log_dir: the directory for ``NAME.log`` files; made if missing.
        names: the servers that will log.
        level: the least severe records written; ``info`` and below write
            line records.
        echo_errors: also print warnings and errors to standard error.
        max_bytes: rotate a file before it would pass this size (0: never).
        backups: rotated files kept per server.
        buffer_bytes: per file, the most bytes of records waiting for the disk.
    """

    def __init__(
        self,
        log_dir: Path,
        names: Iterable[str],
        *,
        level: int = logging.INFO,
        echo_errors: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> None:
        self.log_dir = log_dir
        self._wake = threading.Event()
        self._stopping = False
        self._files: dict[str, LogFile] = {}
        self._loggers: dict[str, logging.Logger] = {}
        self._lines: dict[str, LineLog] = {}
        #: Files (and the directory) this process made: if it fails before
        #: writing to them, it takes them away again (see __exit__).
        self._made: list[Path] = []
        if not log_dir.is_dir():
            try:
                log_dir.mkdir(parents=True)
            except (FileExistsError, NotADirectoryError):
                # Another server of the herd, starting beside us, may have
                # made it a moment ago: only a file in the way is an error.
                if not log_dir.is_dir():
                    raise LogSetupError(
                        f"cannot use log directory {log_dir}: a file is in the way, not a directory"
                    ) from None
            except OSError as exc:
                raise LogSetupError(f"cannot use log directory {log_dir}: {exc.strerror}") from None
            else:
                self._made.append(log_dir)
        stderr = None
        if echo_errors:
            stderr = logging.StreamHandler()
            stderr.setLevel(logging.WARNING)
            stderr.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        for name in names:
            path = log_dir / f"{name}.log"
            existed = path.exists()
            try:
                file = LogFile(
                    log_dir / f"{name}.log",
                    max_bytes=max_bytes,
                    backups=backups,
                    buffer_bytes=buffer_bytes,
                    wake=self._wake,
                )
            except OSError as exc:
                self._close_files()
                self._remove_unused()
                raise LogSetupError(f"cannot write {path}: {exc.strerror}") from None
            if not existed:
                self._made.append(path)
            self._files[name] = file
            # A logger of our own, not one from logging's global registry,
            # so that two herds in one process (tests do that) never share.
            logger = logging.Logger(name, level)
            logger.addHandler(_FileHandler(file))
            if stderr is not None:
                logger.addHandler(stderr)
            self._loggers[name] = logger
            self._lines[name] = LineLog(file, enabled=level <= logging.INFO)
        self._writer = threading.Thread(target=self._write, name="herd log writer", daemon=True)

    def logger(self, name: str) -> logging.Logger:
        """The event logger of server ``name``."""
        return self._loggers[name]

    def lines(self, name: str) -> LineLog:
        """The line records of server ``name``."""
        return self._lines[name]

    def dropped_records(self) -> int:
        """Records dropped so far, every file together (the metrics endpoint's count).

        Read on the event loop's thread while the writer adds to it: a
        scrape may miss the last few drops, never count one twice.
        """
        return sum(file.dropped_total for file in self._files.values())

    def reopen(self) -> None:
        """Reopen every file at its path (SIGHUP: logrotate has moved them)."""
        for file in self._files.values():
            file.reopen()
        self._wake.set()

    def _write(self) -> None:
        while not self._stopping:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            for file in self._files.values():
                file.flush()
        # Stopping: what was appended before stop() asked is written now.
        for file in self._files.values():
            file.flush()

    def __enter__(self) -> HerdLogs:
        self._writer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for name, file in self._files.items():
            if exc is not None and not file.used:
                continue  # never started: its file goes below
            total = file.dropped_total
            self._lines[name].notice(
                f"log closed; {total} log lines dropped in all" if total else "log closed"
            )
        self._stopping = True
        self._wake.set()
        self._writer.join(CLOSE_TIMEOUT)
        if not self._writer.is_alive():
            # A disk that hangs keeps its descriptors: the thread may yet write.
            self._close_files()
        if exc is not None:
            # A server that never started (its port in use, say) leaves no
            # empty NAME.log behind to suggest that it did.
            self._remove_unused()

    def _remove_unused(self) -> None:
        for path in reversed(self._made):
            with contextlib.suppress(OSError):
                if path.is_dir():
                    path.rmdir()  # only if empty
                elif path.stat().st_size == 0:
                    path.unlink()

    def _close_files(self) -> None:
        for file in self._files.values():
            file.close()


def note(logs: HerdLogs, names: Iterable[str], message: str) -> None:
    """Say ``message`` on standard error and in the log of every server ``names``.

    For news about the whole process (the offline index is ready), which a
    user at a terminal and each server's log both want.
    """
    print(message, file=sys.stderr, flush=True)
    for name in names:
        logs.lines(name).notice(message)
