"""The run paths agree with the line-by-line paths they speed up.

A resync's receiver takes a neighbour's AT lines a read at a time
(``parse_at_run``, ``LocationTable.offer_many``,
``ServerState.handle_peer_run``), and a journal is loaded the same way. The
rules are those of ``parse_at``, ``LocationTable.offer`` and
``ServerState.handle``: these properties hold the two paths to the same
results on the same input, bad lines, ties and a full table included.
"""

from __future__ import annotations

import dataclasses
import unittest.mock

from hypothesis import given, settings
from hypothesis import strategies as st

from trioherd import durable
from trioherd.core import framing
from trioherd.core.connection import Connection
from trioherd.core.framing import LineBuffer, LineTooLong
from trioherd.core.journal import Entry, Mark, Position
from trioherd.core.limits import DEFAULT_LIMITS
from trioherd.core.messages import Record, parse_at, parse_at_run
from trioherd.core.state import ServerState
from trioherd.core.table import LocationTable

NOW = 1621464828_000000000

# Fields near the edges of what is valid, so that runs hold valid lines,
# invalid ones and valid ones the run pattern refuses.
degrees = st.sampled_from(
    [b"0", b"00", b"000", b"9", b"34.068930", b"89.9", b"90", b"090", b"90.0", b"90.000",
     b"90.5", b"91", b"99", b"100", b"118.445127", b"179.999", b"180", b"180.00", b"180.1",
     b"181", b"0180", b"1.", b".5", b"12.3456789012345678901234567890",
     b"90.000000000000000000000000000001", b"89.999999999999999999999999999999"]
)  # fmt: skip
signs = st.sampled_from([b"+", b"-", b"", b"++"])
times = st.sampled_from(
    [b"1621464827", b"1621464827.5", b"1621464827.959498503", b"1621464828.000000000",
     b"1621464827.9594985031", b"-1", b"1e9", b"1621464827.", b"99999999999999999999",
     b"1621464829"]
)  # fmt: skip
skews = st.sampled_from(
    [b"+0.000000000", b"-0.100000000", b"+1.5", b"0.000000000", b"+123.000000001"]
)
clients = st.sampled_from([b"kiwi", b"apple", b"c1", b"c2", b"\xe2\x82\xac"])
servers = st.sampled_from([b"Hill", b"Smith", b"Campbell"])


@st.composite
def at_lines(draw: st.DrawFn) -> bytes:
    location = draw(signs) + draw(degrees) + draw(signs) + draw(degrees)
    fields = [b"AT", draw(servers), draw(skews), draw(clients), location, draw(times)]
    line = b" ".join(fields)
    return draw(st.sampled_from([line, line, line, line + b" ", b" " + line, line + b"\r"]))


other_lines = st.sampled_from(
    [b"", b"MARK 0123abcd 7", b"MARK", b"RESUME", b"AT", b"IAMAT kiwi +1+1 1", b"hello"]
)
line_runs = st.lists(st.one_of(at_lines(), at_lines(), at_lines(), other_lines), max_size=12)
# Runs of which most are entirely valid, so the run path is really taken.
valid_runs = st.lists(
    st.builds(
        lambda server, skew, client, lat, lng, time: (
            b"AT %s %s %s +%s-%s %s" % (server, skew, client, lat, lng, time)
        ),
        servers,
        st.sampled_from([b"+0.000000000", b"-0.100000000", b"+2.000000001"]),
        clients,
        st.sampled_from([b"0", b"34.068930", b"90", b"090.000"]),
        st.sampled_from([b"118.445127", b"180", b"7"]),
        st.sampled_from([b"1621464827", b"1621464827.5", b"1621464827.959498503"]),
    ),
    min_size=2,
    max_size=12,
)


def as_record(line: bytes) -> Record | None:
    at = parse_at(line)
    return None if at is None else (at.client_id, at.client_time_ns, at.line, at.skew)


@given(st.one_of(line_runs, valid_runs))
def test_a_run_parses_as_its_lines_do_or_not_at_all(lines: list[bytes]) -> None:
    records = parse_at_run(lines)
    if records is not None:
        assert records == [as_record(line) for line in lines]


@given(valid_runs)
def test_lines_as_servers_write_them_take_the_run_path(lines: list[bytes]) -> None:
    assert parse_at_run(lines) == [as_record(line) for line in lines]


def test_the_run_path_is_taken_for_lines_as_servers_write_them() -> None:
    lines = [b"AT Hill +0.100000000 c%d +34.068930-118.445127 1700000000.000000000" % i
             for i in range(3)]  # fmt: skip
    assert parse_at_run(lines) == [as_record(line) for line in lines]
    assert parse_at_run([*lines, b"AT Hill +0.1 c9 +1+1 1"]) is None


records = st.lists(
    st.builds(
        lambda client, time, server: as_record(
            b"AT %s +0.000000000 %s +1+1 %d" % (server, client, time)
        ),
        clients,
        st.integers(0, 4),
        servers,
    ),
    max_size=16,
)


def table_state(table: LocationTable) -> tuple[object, ...]:
    held = [(c, table.line(c)) for c in table.clients()]
    return held, table.seq, table.evicted, table.last_evicted


@given(records, records, st.integers(0, 4), st.none() | st.integers(1, 50))
def test_offer_many_is_offer_one_at_a_time(
    before: list[Record], run: list[Record], cap: int, first_number: int | None
) -> None:
    one, many = LocationTable(cap), LocationTable(cap)
    many.epoch = one.epoch
    journaled_one: list[bytes] = []
    journaled_many: list[bytes] = []
    for table, journal in ((one, journaled_one), (many, journaled_many)):
        for client_id, _, line, _ in before:
            at = parse_at(line)
            assert at is not None
            assert at.client_id == client_id
            table.offer(at, from_client=False)
        table.on_store = journal.append
    stored_one = []
    for index, record in enumerate(run):
        if first_number is not None:
            one.seq = first_number + index - 1
        at = parse_at(record[2])
        assert at is not None
        if one.offer(at, from_client=False):
            stored_one.append(record)
    assert many.offer_many(run, first_number) == stored_one
    assert table_state(many) == table_state(one)
    assert journaled_many == journaled_one
    assert [one._records[c][2] for c in one.clients()] == [
        many._records[c][2] for c in many.clients()
    ]


def server(cap: int) -> ServerState:
    limits = dataclasses.replace(DEFAULT_LIMITS, max_clients=cap, max_future=3600)
    return ServerState("Smith", ["Hill", "Campbell", "Jaquez"], limits=limits)


def server_state(state: ServerState) -> tuple[object, ...]:
    counters = state.counters
    owed = {peer: state.take(peer, 100) for peer in state.peers}
    return (
        table_state(state.table),
        owed,
        state.flooded(),
        counters.lines_at,
        counters.lines_invalid,
        counters.stored_from_peers,
        counters.flood_lag.counts,
        counters.flood_lag.sum,
    )


@settings(max_examples=200)
@given(
    st.lists(st.one_of(valid_runs, line_runs), min_size=1, max_size=4),
    st.integers(0, 4),
    st.booleans(),
)
def test_a_peer_run_is_its_lines_one_at_a_time(
    reads: list[list[bytes]], cap: int, future: bool
) -> None:
    one, many = server(cap), server(cap)
    many.table.epoch = one.table.epoch
    # A neighbour that keeps marks, owed something now and then.
    for state in (one, many):
        state.resync("Hill", (b"-", 0))
        state.resync("Campbell", (b"-", 0))
    now = NOW - (10**13 if future else 0)
    for lines in reads:
        replies_one = [one.handle(line, now, peer="Hill") for line in lines]
        handled = many.handle_peer_run(lines, now, "Hill")
        assert all(reply is None for reply in replies_one[:handled])
        replies_many = [many.handle(line, now, peer="Hill") for line in lines[handled:]]
        assert replies_one[handled:] == replies_many
        assert server_state(many) == server_state(one)


def reference_feed(buffer: bytearray, data: bytes, max_line: int) -> tuple[list[bytes], bool]:
    """The framing rule line by line, as LineBuffer.feed had it before it split in bulk."""
    buffer += data
    lines = []
    start = 0
    while (end := buffer.find(b"\n", start)) >= 0:
        line_end = end - 1 if end > start and buffer[end - 1] == 0x0D else end
        if line_end - start > max_line:
            return lines, True
        lines.append(bytes(buffer[start:line_end]))
        start = end + 1
    del buffer[:start]
    pending = len(buffer)
    return lines, pending > max_line + 1 or (pending == max_line + 1 and buffer[-1] != 0x0D)


@given(st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\x00", b"\n")), max_size=8),
       st.integers(1, 6), st.sampled_from([b"\r", b"\n", b"\r\n", b"x"]))  # fmt: skip
def test_bulk_framing_is_the_line_by_line_rule(
    reads: list[bytes], max_line: int, sprinkle: bytes
) -> None:
    reads = [data.replace(b"\x01", sprinkle) for data in reads]
    # Reads split line by line and reads split in bulk, against the rule.
    for bulk_read in (1, 1 << 20):
        with unittest.mock.patch.object(framing, "BULK_READ", bulk_read):
            framer = LineBuffer(max_line)
            reference = bytearray()
            for data in reads:
                lines, too_long = framer.feed(data)
                expected, failed = reference_feed(reference, data, max_line)
                assert lines == expected
                assert isinstance(too_long, LineTooLong) == failed
                if failed:
                    break


def test_a_connection_takes_a_resync_read_as_a_run_and_answers_the_rest() -> None:
    state = server(0)
    connection = Connection(state)
    connection.receive(b"PEER Hill 1\n", NOW)
    assert connection.next_exchange() is not None
    assert connection.peer == "Hill"
    good = [b"AT Hill +0.000000000 c%d +1+1 %d" % (i, i) for i in range(500)]
    connection.receive(b"\n".join([*good, b"MARK 0123abcd 9", b"bad", b""]), NOW)
    exchange = connection.next_exchange()
    assert exchange is not None
    assert exchange.received == [*good, b"MARK 0123abcd 9", b"bad"]
    assert exchange.output() == b"? bad\n"
    assert len(state.table) == 500
    assert state.counters.lines_at == 502
    assert state.marks.all()


journal_entries = st.lists(
    st.one_of(
        valid_runs,
        line_runs.map(lambda lines: [line for line in lines if line.startswith(b"AT ")]),
        st.builds(lambda seq: [Position(b"0123abcd", seq)], st.integers(1, 40)),
        st.just([Mark("Hill", b"feed", 3)]),
    ),
    max_size=6,
).map(lambda groups: [entry for group in groups for entry in group])


@given(journal_entries, st.integers(0, 4), st.integers(1, 5))
def test_a_journal_loads_in_runs_as_it_does_record_by_record(
    entries: list[Entry], cap: int, run_length: int
) -> None:
    expected = server(cap)
    number, highest = None, 0
    for entry in entries:
        if isinstance(entry, bytes):
            number, highest = durable._apply_one_by_one(expected.table, [entry], number, highest)
        elif isinstance(entry, Mark):
            expected.marks.restore(entry)
        else:
            expected.table.epoch, number = entry.epoch, entry.seq
    if number is not None:
        expected.table.seq = highest + durable.RESTART_SEQ_GAP
    loaded = server(cap)
    loaded.table.epoch = expected.table.epoch
    with unittest.mock.patch.object(durable, "LOAD_RUN", run_length):
        assert durable._apply(loaded, entries) == len(expected.table)
    assert table_state(loaded.table) == table_state(expected.table)
    assert loaded.table.epoch == expected.table.epoch
    assert loaded.marks.all() == expected.marks.all()
    assert [loaded.table._records[c][2] for c in loaded.table.clients()] == [
        expected.table._records[c][2] for c in expected.table.clients()
    ]
