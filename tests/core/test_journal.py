"""The journal's format and the resume bookmarks, without files or sockets."""

import unittest.mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioherd.core import journal
from trioherd.core.connection import Connection
from trioherd.core.journal import (
    MAGIC,
    MAGIC_RUNS,
    Mark,
    NotAJournal,
    decode,
    encode,
    encode_all,
)
from trioherd.core.link import LinkProtocol
from trioherd.core.state import ServerState

NOW = 1621464828_000000000

ENTRIES = [
    b"AT Hill +0.5 kiwi +1+1 100",
    Mark("Smith", b"0123abcd", 42),
    b"AT Smith +0.000000001 apple +2-2 7.25",
]

entries = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=80).map(lambda b: b"AT " + b),
        st.builds(
            Mark,
            st.sampled_from(["Hill", "Smith", "Jaquez"]),
            st.text("0123456789abcdef", min_size=1, max_size=16).map(str.encode),
            st.integers(0, 2**63),
        ),
    ),
    max_size=20,
)


def test_entries_round_trip() -> None:
    data = MAGIC + encode_all(ENTRIES)
    decoded = decode(data)
    assert decoded.entries == ENTRIES
    assert decoded.good_length == len(data)
    assert decoded.problem is None


def test_empty_and_foreign_files() -> None:
    assert decode(b"").entries == []
    assert decode(MAGIC[:5]).problem == "torn header"
    with pytest.raises(NotAJournal):
        decode(b"something else entirely")


@given(entries, st.data())
def test_a_torn_tail_keeps_every_whole_record_before_it(
    records: list[bytes | Mark], data: st.DataObject
) -> None:
    encoded = [encode(entry) for entry in records]
    whole = MAGIC + b"".join(encoded)
    cut = data.draw(st.integers(len(MAGIC), len(whole)))
    decoded = decode(whole[:cut])
    # The records that fit entirely before the cut, and nothing else.
    ends = [len(MAGIC) + sum(map(len, encoded[: i + 1])) for i in range(len(encoded))]
    kept = sum(1 for end in ends if end <= cut)
    assert decoded.entries == records[:kept]
    assert decoded.good_length == (ends[kept - 1] if kept else len(MAGIC))
    assert (decoded.problem is None) == (decoded.good_length == cut)


@given(entries.filter(bool), st.data())
def test_a_corrupt_byte_stops_reading_at_its_record(
    records: list[bytes | Mark], data: st.DataObject
) -> None:
    encoded = [encode(entry) for entry in records]
    whole = bytearray(MAGIC + b"".join(encoded))
    where = data.draw(st.integers(len(MAGIC), len(whole) - 1))
    whole[where] ^= data.draw(st.integers(1, 255))
    decoded = decode(bytes(whole))
    # Every record before the damaged one survives; the damaged one never does.
    before = 0
    offset = len(MAGIC)
    for chunk in encoded:
        if offset + len(chunk) > where:
            break
        offset += len(chunk)
        before += 1
    # (A flipped length field could frame a span whose CRC matches by
    # chance: one in 2**32.)
    assert decoded.entries == records[:before]
    assert decoded.good_length == offset
    assert decoded.problem is not None


def test_table_numbers_stores_and_lists_what_changed_since() -> None:
    state = ServerState("Hill", ["Jaquez"])
    for i, client in enumerate([b"a", b"b", b"c"]):
        state.handle(b"IAMAT %s +1+1 %d" % (client, 100 + i), NOW)
    mark = state.table.seq
    state.handle(b"IAMAT a +1+1 200", NOW)
    state.handle(b"IAMAT d +1+1 200", NOW)
    state.handle(b"IAMAT b +1+1 99", NOW)  # older: not a store
    assert state.table.clients_since(mark) == [b"a", b"d"]
    assert state.table.clients_since(0) == [b"b", b"c", b"a", b"d"]
    assert state.table.clients_since(state.table.seq) == []


def answer(connection: Connection, data: bytes) -> bytes:
    """What ``connection`` writes back for ``data``."""
    connection.receive(data, NOW)
    out = b""
    while (exchange := connection.next_exchange()) is not None:
        out += exchange.output()
    return out


def link_up(sender: ServerState, receiver: ServerState) -> int:
    """Connect ``sender``'s link to ``receiver``, deliver what it owes; count AT lines."""
    link = LinkProtocol(sender, receiver.name)
    # The receiver's own link has asked the sender: it speaks RESUME.
    sender.handle(b"RESUME", NOW, receiver.name)
    connection = Connection(receiver)
    assert link.receive(answer(connection, link.connected())) == []
    count = 0
    while link.owes():
        batch = link.take()
        count += sum(1 for line in batch.splitlines() if line.startswith(b"AT "))
        assert answer(connection, batch) == b""
    return count


def test_a_reconnected_link_resumes_from_the_receivers_mark() -> None:
    hill = ServerState("Hill", ["Jaquez"])
    jaquez = ServerState("Jaquez", ["Hill"])
    for i in range(100):
        hill.handle(b"IAMAT c%d +1+1 %d" % (i, 100 + i), NOW)
    hill.take("Jaquez", limit=10**6)  # the flood, lost: the link was down

    # First link: Jaquez has no mark, so it is sent everything.
    assert jaquez.marks.resume_reply("Hill") == b"RESUME - 0\n"
    assert link_up(hill, jaquez) == 100
    assert len(jaquez.table) == 100
    assert jaquez.marks.resume_reply("Hill") == b"RESUME %s 100\n" % hill.table.epoch

    # The link drops; three clients move meanwhile; the link comes back.
    for i in range(3):
        hill.handle(b"IAMAT c%d +2+2 %d" % (i, 500 + i), NOW)
    hill.take("Jaquez", limit=10**6)  # lost with the link
    assert link_up(hill, jaquez) == 3
    assert jaquez.table.line(b"c0") == hill.table.line(b"c0")
    # Nothing changed: nothing is sent, but the mark is renewed.
    assert link_up(hill, jaquez) == 0
    assert jaquez.marks.resume_reply("Hill") == b"RESUME %s 103\n" % hill.table.epoch


def test_a_mark_from_another_life_of_the_table_means_everything() -> None:
    hill = ServerState("Hill", ["Jaquez"])
    jaquez = ServerState("Jaquez", ["Hill"])
    hill.handle(b"IAMAT a +1+1 100", NOW)
    assert answer(Connection(jaquez), b"PEER Hill 1\nMARK 00ff 5\n") == b""
    assert link_up(hill, jaquez) == 1


def test_other_peers_get_the_whole_table_and_no_marks() -> None:
    hill = ServerState("Hill", ["Jaquez"])
    hill.handle(b"IAMAT a +1+1 100", NOW)
    link = LinkProtocol(hill, "Jaquez")
    assert link.connected() == b"PEER Hill 1\nRESUME\n"
    assert link.take() == hill.table.line(b"a") + b"\n"
    # A neighbour that once asked us, then came back speaking the older protocol.
    hill.handle(b"RESUME", NOW, "Jaquez")
    assert link.connected() == b"PEER Hill 1\nRESUME\n"
    assert not link.owes()
    # What a server of the older protocol answers to RESUME.
    assert link.receive(b"? RESUME\n") == []
    assert link.take() == hill.table.line(b"a") + b"\n"
    assert not link.owes()
    # A malformed mark is an invalid line on a link.
    jaquez = ServerState("Jaquez", ["Hill"])
    assert jaquez.handle(b"MARK x", NOW, "Hill") == b"? MARK x\n"


@given(entries, st.integers(8, 200), st.data())
def test_runs_round_trip_and_a_torn_tail_keeps_every_whole_run_before_it(
    records: list[bytes | Mark], run_bytes: int, data: st.DataObject
) -> None:
    # AT lines never hold a newline: a run is split on them.
    records = [r.replace(b"\n", b"") if isinstance(r, bytes) else r for r in records]
    with unittest.mock.patch.object(journal, "RUN_BYTES", run_bytes):
        whole = MAGIC_RUNS + encode_all(records, runs=True)
    decoded = decode(whole)
    assert decoded.entries == records
    assert decoded.runs
    assert decoded.problem is None
    cut = data.draw(st.integers(len(MAGIC_RUNS), len(whole)))
    torn = decode(whole[:cut])
    assert torn.entries == records[: len(torn.entries)]
    assert (torn.problem is None) == (torn.good_length == cut)
    assert decode(whole[: torn.good_length]).entries == torn.entries


def test_a_run_in_a_file_of_the_first_format_is_not_read() -> None:
    lines = [b"AT Hill +0.5 kiwi +1+1 100", b"AT Hill +0.5 apple +1+1 100"]
    run = encode_all(lines, runs=True)
    assert decode(MAGIC_RUNS + run).entries == lines
    assert decode(MAGIC + run).problem == f"unknown record at byte {len(MAGIC)}"
    assert decode(MAGIC + encode_all(lines)).entries == lines
    assert decode(MAGIC_RUNS[:7]).problem == "torn header"
