"""The journal on disk: load, torn tails, compaction, the lock (no sockets)."""

import logging
import time
from pathlib import Path

import pytest

from trioherd import durable
from trioherd.core.journal import MAGIC, Mark, encode
from trioherd.core.state import ServerState
from trioherd.durable import StateDirError, journal_path, open_journal

NOW = 1621464828_000000000
LOG = logging.getLogger("test_durable")


def hill() -> ServerState:
    return ServerState("Hill", ["Jaquez"])


def fill(state: ServerState, count: int, time_base: int = 100) -> None:
    for i in range(count):
        state.handle(b"IAMAT c%d +1+1 %d" % (i, time_base + i), NOW)
    # What a connection does once a read's lines are handled.
    state.lines_handled()


def test_records_and_marks_outlive_the_server(tmp_path: Path) -> None:
    state = hill()
    journal = open_journal(tmp_path, state, LOG)
    journal.start()
    fill(state, 50)
    state.handle(b"MARK beef 7", NOW, "Jaquez")
    journal.close()

    again = hill()
    open_journal(tmp_path, again, LOG).close()
    assert len(again.table) == 50
    assert again.table.line(b"c3") == state.table.line(b"c3")
    assert again.marks.resume_reply("Jaquez") == b"RESUME beef 7\n"


def test_a_torn_tail_is_cut_off_logged_and_the_rest_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = hill()
    journal = open_journal(tmp_path, state, LOG)
    journal.start()
    fill(state, 10)
    journal.close()
    path = journal_path(tmp_path, "Hill")
    good = path.stat().st_size
    # A crash in the middle of writing a record.
    with path.open("ab") as file:
        file.write(encode(b"AT Hill +0.1 late +1+1 999")[:-5])

    again = hill()
    with caplog.at_level(logging.WARNING):
        open_journal(tmp_path, again, LOG).close()
    assert "torn record" in caplog.text
    assert len(again.table) == 10
    assert again.table.line(b"late") is None
    assert path.stat().st_size == good


def test_a_corrupt_record_loses_only_what_follows(tmp_path: Path) -> None:
    path = journal_path(tmp_path, "Hill")
    first = encode(b"AT Hill +0.100000000 a +1+1 1")
    bad = bytearray(encode(b"AT Hill +0.100000000 b +1+1 2"))
    bad[-1] ^= 0xFF
    path.write_bytes(MAGIC + first + bytes(bad) + encode(Mark("Jaquez", b"ab", 3)))
    state = hill()
    open_journal(tmp_path, state, LOG).close()
    assert list(state.table.clients()) == [b"a"]
    assert path.read_bytes() == MAGIC + first


def test_a_foreign_file_or_a_second_server_is_refused(tmp_path: Path) -> None:
    journal_path(tmp_path, "Jaquez").write_bytes(b"precious data")
    with pytest.raises(StateDirError, match="not a trioherd journal"):
        open_journal(tmp_path, ServerState("Jaquez", ["Hill"]), LOG)
    first = open_journal(tmp_path, hill(), LOG)
    try:
        with pytest.raises(StateDirError, match="in use"):
            open_journal(tmp_path, hill(), LOG)
    finally:
        first.close()


def test_a_growing_journal_is_compacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(durable, "COMPACT_SLACK", 100)
    state = hill()
    journal = open_journal(tmp_path, state, LOG)
    path = journal_path(tmp_path, "Hill")
    original = path.stat().st_ino
    journal.start()
    # 20 clients moving 30 times each: 600 records for a table of 20.
    for round_ in range(30):
        fill(state, 20, time_base=1000 * (round_ + 1))
    state.handle(b"MARK beef 9", NOW, "Jaquez")
    # Compaction renames a new file over the journal.
    deadline = time.monotonic() + 10
    while path.stat().st_ino == original and time.monotonic() < deadline:
        time.sleep(0.02)
    journal.close()
    assert path.stat().st_size < 20 * 80
    again = hill()
    open_journal(tmp_path, again, LOG).close()
    assert [again.table.line(c) for c in state.table.clients()] == [
        state.table.line(c) for c in state.table.clients()
    ]
    assert again.marks.resume_reply("Jaquez") == b"RESUME beef 9\n"
