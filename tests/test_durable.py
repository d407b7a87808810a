"""The journal on disk: load, torn tails, compaction, the lock (no sockets)."""

import logging
import time
from pathlib import Path

import pytest

from trioherd import durable
from trioherd.core.journal import MAGIC, MAGIC_RUNS, Mark, Position, decode, encode
from trioherd.core.resume import owed_since
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
    state.write_stored()


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


def owed_after(state: ServerState, mark: tuple[bytes, int]) -> list[bytes]:
    """What a neighbour that marked ``mark`` is owed by ``state``."""
    return owed_since(state.table, mark)


def test_a_restart_takes_up_the_table_s_life_where_it_was(tmp_path: Path) -> None:
    state = hill()
    journal = open_journal(tmp_path, state, LOG)
    journal.start()
    fill(state, 50)
    # Clients 0-9 move again: they go to the end of the order, numbered 51-60.
    fill(state, 10, time_base=1000)
    # Jaquez got up to store 55 before we went down.
    mark = (state.table.epoch, 55)
    before = owed_after(state, mark)
    state.handle(b"MARK beef 7", NOW, "Jaquez")
    journal.close()

    again = hill()
    journal = open_journal(tmp_path, again, LOG)
    assert again.table.epoch == state.table.epoch
    assert owed_after(again, mark) == before == [b"c%d" % i for i in range(5, 10)]
    # A neighbour whose mark we hold answers RESUME: our link may ask it at once.
    assert again.marks.answers("Jaquez")
    journal.start()
    state_seq = state.table.seq
    again.handle(b"IAMAT new +1+1 5000", NOW)
    again.write_stored()
    journal.close()
    # A store after the restart is numbered past anything a neighbour marked.
    assert again.table.seq > state_seq
    assert owed_after(again, (state.table.epoch, state_seq)) == [b"new"]

    # ...and still after a second restart.
    third = hill()
    open_journal(tmp_path, third, LOG).close()
    assert owed_after(third, (state.table.epoch, state_seq)) == [b"new"]
    assert owed_after(third, mark) == [*before, b"new"]


def test_a_compacted_journal_keeps_the_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durable, "COMPACT_SLACK", 100)
    state = hill()
    journal = open_journal(tmp_path, state, LOG)
    path = journal_path(tmp_path, "Hill")
    original = path.stat().st_ino
    journal.start()
    for round_ in range(30):
        # Half the clients move each round: numbers skip in the table's order.
        fill(state, 20 if round_ % 2 else 10, time_base=1000 * (round_ + 1))
    deadline = time.monotonic() + 10
    while path.stat().st_ino == original and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.stat().st_ino != original, "not compacted"
    fill(state, 3, time_base=99_000)
    journal.close()
    again = hill()
    open_journal(tmp_path, again, LOG).close()
    assert again.table.epoch == state.table.epoch
    for seq in range(0, state.table.seq + 1, 7):
        assert owed_after(again, (state.table.epoch, seq)) == owed_after(
            state, (state.table.epoch, seq)
        ), seq


def test_a_torn_position_loses_only_the_tail(tmp_path: Path) -> None:
    state = hill()
    journal = open_journal(tmp_path, state, LOG)
    journal.start()
    fill(state, 10)
    journal.close()
    path = journal_path(tmp_path, "Hill")
    good = path.stat().st_size
    with path.open("ab") as file:
        file.write(encode(Position(state.table.epoch, 11))[:-3])

    again = hill()
    open_journal(tmp_path, again, LOG).close()
    assert path.stat().st_size == good
    assert again.table.epoch == state.table.epoch
    assert owed_after(again, (state.table.epoch, 7)) == [b"c7", b"c8", b"c9"]


def test_an_older_journal_starts_a_new_life(tmp_path: Path) -> None:
    # What a build before Position records wrote: AT records only.
    lines = [b"AT Hill +0.100000000 c%d +1+1 %d" % (i, i + 1) for i in range(3)]
    journal_path(tmp_path, "Hill").write_bytes(MAGIC + b"".join(encode(line) for line in lines))
    state = hill()
    open_journal(tmp_path, state, LOG).close()
    assert len(state.table) == 3
    # No neighbour holds a mark of this life: each is owed the whole table.
    assert owed_after(state, (b"0123456789abcdef", 1)) == [b"c0", b"c1", b"c2"]


def test_a_journal_of_the_first_format_stays_in_it_until_compacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = journal_path(tmp_path, "Hill")
    path.write_bytes(MAGIC + encode(b"AT Hill +0.100000000 old +1+1 1"))
    state = hill()
    journal = open_journal(tmp_path, state, LOG)
    journal.start()
    fill(state, 5)
    journal.close()
    # An older build can still read it: no run records in it.
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    assert decode(data).entries[2:] == [state.table.line(b"c%d" % i) for i in range(5)]

    # A snapshot rewrites it in the format with runs.
    monkeypatch.setattr(durable, "COMPACT_SLACK", 0)
    monkeypatch.setattr(durable, "SYNC_INTERVAL", 0.01)
    again = hill()
    journal = open_journal(tmp_path, again, LOG)
    journal.start()
    # Five clients moving ten times: 50 records for a table of 6.
    for round_ in range(10):
        fill(again, 5, time_base=1000 * (round_ + 1))
    deadline = time.monotonic() + 10
    while not path.read_bytes().startswith(MAGIC_RUNS):
        assert time.monotonic() < deadline, "never compacted"
        time.sleep(0.01)
    fill(again, 3, time_base=5000)
    journal.close()
    last = hill()
    open_journal(tmp_path, last, LOG).close()
    assert [last.table.line(c) for c in again.table.clients()] == [
        again.table.line(c) for c in again.table.clients()
    ]
    assert len(last.table) == 6


def test_a_new_journal_writes_runs(tmp_path: Path) -> None:
    state = hill()
    journal = open_journal(tmp_path, state, LOG)
    journal.start()
    fill(state, 300)
    journal.close()
    data = journal_path(tmp_path, "Hill").read_bytes()
    assert data.startswith(MAGIC_RUNS)
    # One Position and one run: the 300 records of one read in one frame.
    assert (
        len(data)
        < len(MAGIC_RUNS)
        + 8 * 3
        + sum(len(state.table.line(c) or b"") + 1 for c in state.table.clients())
        + 40
    )
    again = hill()
    open_journal(tmp_path, again, LOG).close()
    assert list(again.table.clients()) == list(state.table.clients())
