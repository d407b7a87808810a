"""Per-server log files, written by a thread so no event loop waits on the disk.

Each server logs to ``DIR/NAME.log``: every line in (``<``) and out (``>``)
with its connection, and peer links made, accepted and dropped. Servers hand
records to a queue; one :class:`logging.handlers.QueueListener` thread
formats nothing and only writes. This is shared by the trio herd and the
asyncio contrast, so neither pays for file writes on its event loop.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import queue
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType


class LogSetupError(Exception):
    """The log directory or a log file cannot be used; one line for the user."""


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.created % 1 * 1_000_000):06d}Z"


_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def show(line: bytes) -> str:
    """A received or sent line as log text: undecodable bytes escaped, not lost."""
    return line.decode("utf-8", "backslashreplace")


def summary(reply: bytes) -> str:
    """A reply as one log line: a WHATSAT reply's JSON is reduced to its size."""
    first, _, rest = reply.rstrip(b"\n").partition(b"\n")
    if rest:
        return f"{show(first)} [+ places JSON, {len(rest)} bytes]"
    return show(first)


class HerdLogs:
    """The log files of the servers run by one process.

    Use as a context manager: the writer thread runs inside the ``with``.

    Args:
        log_dir: the directory for ``NAME.log`` files; made if missing.
        names: the servers that will log.
        level: the least severe records written.
        echo_errors: also print warnings and errors to standard error.
    """

    def __init__(
        self,
        log_dir: Path,
        names: Iterable[str],
        *,
        level: int = logging.INFO,
        echo_errors: bool = True,
    ) -> None:
        self.log_dir = log_dir
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._handlers: list[logging.Handler] = []
        self._loggers: dict[str, logging.Logger] = {}
        formatter = _UTCFormatter(_FORMAT)
        #: Files (and the directory) this process made: if it fails before
        #: writing to them, it takes them away again (see __exit__).
        self._made: list[Path] = []
        if not log_dir.is_dir():
            try:
                log_dir.mkdir(parents=True)
            except (FileExistsError, NotADirectoryError):
                raise LogSetupError(
                    f"cannot use log directory {log_dir}: a file is in the way, not a directory"
                ) from None
            except OSError as exc:
                raise LogSetupError(f"cannot use log directory {log_dir}: {exc.strerror}") from None
            self._made.append(log_dir)
        for name in names:
            # A logger of our own, not one from logging's global registry,
            # so that two herds in one process (tests do that) never share.
            logger = logging.Logger(f"trioherd.{name}", level)
            path = log_dir / f"{name}.log"
            existed = path.exists()
            try:
                handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
            except OSError as exc:
                for opened in self._handlers:
                    opened.close()
                self._remove_unused()
                raise LogSetupError(f"cannot write {path}: {exc.strerror}") from None
            if not existed:
                self._made.append(path)
            handler.setFormatter(formatter)
            # Records carry their server's name to the one writer thread,
            # which sends each to its own file.
            handler.addFilter(_OnlyServer(logger.name))
            self._handlers.append(handler)
            logger.addHandler(logging.handlers.QueueHandler(self._queue))
            self._loggers[name] = logger
        if echo_errors:
            stderr = logging.StreamHandler()
            stderr.setLevel(logging.WARNING)
            stderr.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            self._handlers.append(stderr)
        self._listener = logging.handlers.QueueListener(
            self._queue, *self._handlers, respect_handler_level=True
        )

    def logger(self, name: str) -> logging.Logger:
        """The logger of server ``name``."""
        return self._loggers[name]

    def __enter__(self) -> HerdLogs:
        self._listener.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._listener.stop()
        for handler in self._handlers:
            handler.close()
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


class _OnlyServer(logging.Filter):
    def __init__(self, logger_name: str) -> None:
        super().__init__()
        self._logger_name = logger_name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == self._logger_name


def note(logs: HerdLogs, names: Iterable[str], message: str) -> None:
    """Say ``message`` on standard error and in the log of every server ``names``.

    For news about the whole process (the offline index is ready), which a
    user at a terminal and each server's log both want.
    """
    print(message, file=sys.stderr, flush=True)
    for name in names:
        logs.logger(name).info("%s", message)
