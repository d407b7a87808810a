"""The durable journal's format, with no I/O: records to bytes and back.

A server started with a state directory appends every record it stores to
a journal file, and reads the file back at start (``trioherd/durable.py``
does the disk work, in a thread). This module only says what the bytes are:

    file    = MAGIC record*
    record  = length:u32le crc:u32le body          (length = len(body))
    body    = b"A" at-line                         a stored AT record
            | b"R" at-line (LF at-line)*           stored AT records, one per line
            | b"M" peer SP epoch SP seq            a resume mark (core/resume.py)
            | b"N" epoch SP seq                    where the next A records stand

An ``N`` record (a :class:`Position`) says that the ``A`` records after it
are the stores numbered ``seq``, ``seq + 1``, ... of the table's life
``epoch`` (core/table.py). The server writes one ahead of each batch it
appends, and a snapshot one wherever its records' numbers skip, so a
restarted server takes up its table's life where it left off: its
neighbours' RESUME marks still name that life, and a neighbour is sent
only what it lacks, not the whole table. (A journal of an older build has
no ``N`` records: its table starts a new life, as before.)

An ``R`` record (a run) holds the AT records one read stored, or a
snapshot's chunk, in one frame: an AT line never holds a ``\n``. It counts
as that many ``A`` records, in order. A resync stores a million records a
few hundred per read, and framing and checking each alone was a fifth of
the receiver's work. Runs came with the second format: a file that may
hold them starts with :data:`MAGIC_RUNS`, which an older build refuses
("not a trioherd journal") instead of cutting the file at the first run it
does not know. A file in the first format (:data:`MAGIC`) is still read,
and is appended to in its own format until a snapshot replaces it.

The CRC (zlib's CRC-32) covers the body. A crash can leave the file ending
in the middle of a record, or (on some file systems, after a power cut)
ending in garbage; :func:`decode` stops at the first record that is short,
too long or fails its CRC and says where the good part ends, so the caller
can truncate there and keep everything before it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

#: The first bytes of a journal file of the first format (no ``R`` records);
#: a file that starts otherwise than with this or :data:`MAGIC_RUNS` is not
#: ours (or is a future format) and is not read.
MAGIC = b"trioherd journal 1\n"
#: The first bytes of a journal file that may hold ``R`` records (what this
#: build writes).
MAGIC_RUNS = b"trioherd journal 2\n"
#: A run record holds AT lines up to about this many bytes (and at least one).
RUN_BYTES = 1 << 20

#: No record is longer than this: an AT line is bounded by the line limit
#: (64 KiB by default), and a length field above this means the header itself
#: is garbage.
MAX_RECORD = 1 << 24

_HEADER = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class Mark:
    """How far a neighbour's stream of records has reached us.

    ``epoch`` names one life of the neighbour's table, ``seq`` a point in it
    (docs/peer-protocol.md, "Resuming").
    """

    peer: str
    epoch: bytes
    seq: int


@dataclass(frozen=True, slots=True)
class Position:
    """The ``A`` records that follow are stores ``seq``, ``seq + 1``, ... of life ``epoch``."""

    epoch: bytes
    seq: int


Entry = bytes | Mark | Position
"""A journal entry: an AT line (without ``\\n``), a :class:`Mark` or a :class:`Position`."""


def encode(entry: Entry) -> bytes:
    """One record, framed."""
    if isinstance(entry, Mark):
        body = b"M%s %s %d" % (entry.peer.encode(), entry.epoch, entry.seq)
    elif isinstance(entry, Position):
        body = b"N%s %d" % (entry.epoch, entry.seq)
    else:
        body = b"A" + entry
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


_CRC_OF_A = zlib.crc32(b"A")
_KIND_A = ord("A")


def encode_all(entries: list[Entry], *, runs: bool = False) -> bytes:
    """Many records, framed, as one string of bytes.

    With ``runs``, consecutive AT lines go into ``R`` records (the second
    format); otherwise each is an ``A`` record.
    """
    parts: list[bytes] = []
    append = parts.append
    if runs:
        run: list[bytes] = []
        size = 0
        for entry in [*entries, None]:
            if type(entry) is bytes:
                run.append(entry)
                size += len(entry) + 1
                if size < RUN_BYTES:
                    continue
            if run:
                body = b"R" + b"\n".join(run)
                append(_HEADER.pack(len(body), zlib.crc32(body)))
                append(body)
                run = []
                size = 0
            if entry is not None and type(entry) is not bytes:
                append(encode(entry))
        return b"".join(parts)
    # AT records are nearly all of them (a resync journals a million): framed
    # here without the calls and the copy of the body that encode() makes.
    pack = _HEADER.pack
    crc32 = zlib.crc32
    for entry in entries:
        if type(entry) is bytes:
            append(pack(len(entry) + 1, crc32(entry, _CRC_OF_A)))
            append(b"A")
            append(entry)
        else:
            append(encode(entry))
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Decoded:
    """What :func:`decode` found in a journal file."""

    entries: list[Entry]
    #: How many bytes from the start of the file are good records.
    good_length: int
    #: Why reading stopped before the end of the data, or ``None``.
    problem: str | None
    #: The file is of the second format (:data:`MAGIC_RUNS`).
    runs: bool = False


class NotAJournal(Exception):
    """The file does not start with :data:`MAGIC`."""


def decode(data: bytes) -> Decoded:
    """The records of a journal file's contents, up to the first bad one.

    Raises:
        NotAJournal: ``data`` is not empty and does not start with :data:`MAGIC`.
    """
    if not data:
        return Decoded([], 0, None)
    runs = data.startswith(MAGIC_RUNS)
    if not runs and not data.startswith(MAGIC):
        if MAGIC_RUNS.startswith(data) or MAGIC.startswith(data):
            # A crash while the file was being created.
            return Decoded([], 0, "torn header")
        raise NotAJournal("not a trioherd journal")
    entries: list[Entry] = []
    append = entries.append
    offset = len(MAGIC_RUNS if runs else MAGIC)
    end = len(data)
    unpack = _HEADER.unpack_from
    header = _HEADER.size
    crc32 = zlib.crc32
    # A million records load in this loop: an AT record (nearly all of
    # them) is sliced once, without its kind byte, and checked from the CRC
    # of that byte on (the CRC of a concatenation continues the CRC of its
    # start).
    while offset < end:
        if end - offset < header:
            return Decoded(entries, offset, f"torn record header at byte {offset}", runs)
        length, crc = unpack(data, offset)
        if length == 0 or length > MAX_RECORD:
            return Decoded(entries, offset, f"bad record length {length} at byte {offset}", runs)
        start = offset + header
        stop = start + length
        if stop > end:
            return Decoded(entries, offset, f"torn record at byte {offset}", runs)
        if data[start] == _KIND_A:
            line = data[start + 1 : stop]
            if crc32(line, _CRC_OF_A) != crc:
                return Decoded(entries, offset, f"bad checksum at byte {offset}", runs)
            append(line)
        else:
            body = data[start:stop]
            if crc32(body) != crc:
                return Decoded(entries, offset, f"bad checksum at byte {offset}", runs)
            if runs and body[:1] == b"R":
                entries += body[1:].split(b"\n")
                offset = stop
                continue
            entry = _entry(body)
            if entry is None:
                return Decoded(entries, offset, f"unknown record at byte {offset}", runs)
            append(entry)
        offset = stop
    return Decoded(entries, offset, None, runs)


def _entry(body: bytes) -> Entry | None:
    kind = body[:1]
    if kind == b"A":
        return body[1:]
    if kind == b"M":
        fields = body[1:].split(b" ")
        if len(fields) == 3 and fields[2].isdigit():
            try:
                peer = fields[0].decode()
            except UnicodeDecodeError:
                return None
            return Mark(peer, fields[1], int(fields[2]))
    if kind == b"N":
        fields = body[1:].split(b" ")
        if len(fields) == 2 and fields[0].isalnum() and fields[1].isdigit():
            return Position(fields[0], int(fields[1]))
    return None
