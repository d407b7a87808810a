"""Line framing for the herd's wire protocol, with no I/O.

Bytes go in with :meth:`LineBuffer.feed`, whole lines come out. A message is
one line ending in ``\\n`` (a ``\\r`` just before it is dropped); at EOF,
:meth:`LineBuffer.close` hands back a last line that had no ``\\n``. A line
longer than the limit is reported as :class:`LineTooLong` instead of being
buffered: the server answers it and closes the connection, so memory per
connection stays bounded by the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The default longest line, in bytes, not counting the line ending.
DEFAULT_MAX_LINE = 64 * 1024
#: A read of at least this many bytes is split in bulk (the same rule,
#: cheaper for many lines); a smaller one line by line.
BULK_READ = 512


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line passed the limit; ``prefix`` holds its first ``limit`` bytes."""

    prefix: bytes


class LineBuffer:
    """Splits a byte stream into lines.

    Args:
        max_line: the longest line accepted, in bytes, without its ending.
    """

    __slots__ = ("_buffer", "_failed", "_scanned", "max_line")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self._buffer = bytearray()
        # How far the buffer is known to hold no b"\n": each byte is scanned
        # once, so a line arriving one byte per read costs O(n), not O(n^2).
        self._scanned = 0
        self._failed = False

    @property
    def pending(self) -> bool:
        """Whether part of a line is buffered, waiting for the rest."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> tuple[list[bytes], LineTooLong | None]:
        """Add received bytes.

        Returns:
            The complete lines now available, in order and without their
            endings, and a :class:`LineTooLong` if a line passed the limit.
            After a :class:`LineTooLong` the stream is unusable: the buffer
            drops everything fed to it.
        """
        if self._failed:
            return [], None
        buffer = self._buffer
        buffer += data
        if len(data) < BULK_READ:
            # A client's read: a line or two, split one by one (for so few
            # the bulk split below costs more than it saves).
            lines: list[bytes] = []
            start = 0
            search = self._scanned
            while (end := buffer.find(b"\n", search)) >= 0:
                line_end = end - 1 if end > start and buffer[end - 1] == 0x0D else end
                if line_end - start > self.max_line:
                    return lines, self._fail(bytes(buffer[start : start + self.max_line]))
                lines.append(bytes(buffer[start:line_end]))
                start = search = end + 1
            del buffer[:start]
        elif (end := buffer.rfind(b"\n", self._scanned)) < 0:
            lines = []
        else:
            # Every complete line at once: one split in C, however many
            # lines the read brought (a resync's reads bring about a
            # thousand), then the rarer cases over the whole list.
            block = bytes(buffer[:end])
            del buffer[: end + 1]
            lines = block.split(b"\n")
            if b"\r" in block:
                lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
            if max(map(len, lines)) > self.max_line:
                for index, line in enumerate(lines):
                    if len(line) > self.max_line:
                        return lines[:index], self._fail(line[: self.max_line])
        # A trailing b"\r" may yet be part of a b"\r\n" ending, so a pending
        # line is too long only once it holds max_line bytes plus one that is
        # not that b"\r".
        pending = len(buffer)
        if pending > self.max_line + 1 or (pending == self.max_line + 1 and buffer[-1] != 0x0D):
            return lines, self._fail(bytes(buffer[: self.max_line]))
        self._scanned = pending
        return lines, None

    def receive(self, data: bytes) -> tuple[list[bytes], LineTooLong | None]:
        """What one read brought: :meth:`feed` for bytes, :meth:`close` for EOF.

        Args:
            data: the bytes read, or ``b""`` at EOF.

        Returns:
            As :meth:`feed`; at EOF, the last line if it had no ``\\n``.
        """
        if data:
            return self.feed(data)
        last = self.close()
        return ([] if last is None else [last]), None

    def close(self) -> bytes | None:
        """Signal EOF and return the last line if it had no ``\\n``."""
        if self._failed or not self._buffer:
            return None
        line = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    def _fail(self, prefix: bytes) -> LineTooLong:
        self._failed = True
        self._buffer = bytearray()
        self._scanned = 0
        return LineTooLong(prefix)
