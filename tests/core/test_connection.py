"""A connection's conversation without sockets: framing, peers, order, backpressure."""

from trioherd.core.connection import MAX_QUERIES, Connection
from trioherd.core.places import error_response
from trioherd.core.state import ServerState

NOW = 1621464828_000000000


def smith() -> ServerState:
    return ServerState("Smith", ["Hill", "Singleton", "Campbell"])


def test_one_read_answered_in_order_with_queries_and_who_is_talking() -> None:
    state = smith()
    connection = Connection(state)
    connection.receive(
        b"IAMAT a +1+1 5\nWHATSAT a 10 2\nnonsense\nPEER Hill 1\n"
        b"AT Hill +0.000000000 b +2+2 6\nIAMAT c +1+1 5\n",
        NOW,
    )
    exchange = connection.next_exchange()
    assert exchange is not None
    assert connection.next_exchange() is None
    assert connection.peer == exchange.joined == "Hill"
    assert exchange.received[2] == b"nonsense"
    assert exchange.replies[0].startswith(b"AT Smith ")
    assert exchange.replies[1] == b""  # the WHATSAT's slot
    assert exchange.queries == [(1, state.handle(b"WHATSAT a 10 2", NOW))]
    assert exchange.replies[2:] == [b"? nonsense\n", b"? IAMAT c +1+1 5\n"]
    assert exchange.flooded == ["Hill", "Singleton", "Campbell"]
    assert state.table.line(b"b") == b"AT Hill +0.000000000 b +2+2 6"
    assert exchange.answer(1, error_response("down")) == "UNKNOWN_ERROR: down"
    assert exchange.output().startswith(exchange.replies[0] + b"AT Smith ")
    assert not connection.finished


def test_lines_split_across_reads_and_a_last_line_at_eof() -> None:
    connection = Connection(smith())
    connection.receive(b"IAMAT a +1+1", NOW)
    assert connection.next_exchange() is None
    connection.receive(b" 5\r\nIAMAT b +1+1 5", NOW)
    first = connection.next_exchange()
    assert first is not None
    assert first.received == [b"IAMAT a +1+1 5"]
    connection.receive(b"", NOW)
    last = connection.next_exchange()
    assert last is not None
    assert last.received == [b"IAMAT b +1+1 5"]
    assert connection.finished


def test_an_over_long_line_is_answered_last_and_finishes_the_connection() -> None:
    connection = Connection(smith(), max_line=16)
    connection.receive(b"IAMAT a +1+1 5\n" + b"x" * 40, NOW)
    exchange = connection.next_exchange()
    assert exchange is not None
    assert exchange.replies[-1] == b"? " + b"x" * 16 + b"\n"
    assert exchange.too_long == 16
    assert connection.finished
    connection.receive(b"IAMAT b +1+1 5\n", NOW)
    assert connection.next_exchange() is None


def test_pipelined_whatsats_come_out_a_bounded_number_at_a_time_in_order() -> None:
    state = smith()
    connection = Connection(state)
    connection.receive(b"IAMAT w +1+1 5\n" + b"WHATSAT w 50 20\n" * 100, NOW)
    slots = []
    while (exchange := connection.next_exchange()) is not None:
        assert len(exchange.queries) <= MAX_QUERIES
        slots.append(len(exchange.queries))
    assert sum(slots) == 100
    assert len(slots) >= 100 // MAX_QUERIES


def test_clients_records_are_journaled_once_before_any_reply_or_link_takes_them() -> None:
    """A group commit: the stores of several clients' reads share one write.

    What the journal writes is whatever was stored since its last write, so
    the first reply made (or the first batch a link takes) writes for all;
    none of them leaves before it is written.
    """
    state = smith()
    writes: list[int] = []
    stored: list[bytes] = []
    state.table.on_store = stored.append

    def write() -> None:
        if stored:
            writes.append(len(stored))
            stored.clear()

    state.write_stored = write
    first, second = Connection(state), Connection(state)
    first.receive(b"IAMAT a +1+1 5\n", NOW)
    second.receive(b"IAMAT b +2+2 5\n", NOW)
    one, two = first.next_exchange(), second.next_exchange()
    assert one is not None
    assert two is not None
    assert writes == []  # stored, not yet written: nothing has left
    assert one.output().startswith(b"AT Smith ")
    assert writes == [2]  # both clients' records, in one write
    assert two.output().startswith(b"AT Smith ")
    assert writes == [2]  # nothing new to write

    third = Connection(state)
    third.receive(b"IAMAT c +3+3 5\n", NOW)
    assert third.next_exchange() is not None
    assert b" c " in state.take("Hill")  # a link takes the record ...
    assert writes == [2, 1]  # ... only once it is written


def test_a_neighbours_read_is_journaled_at_once() -> None:
    state = smith()
    calls: list[None] = []
    state.write_stored = lambda: calls.append(None)
    connection = Connection(state)
    connection.receive(b"PEER Hill 1\nAT Hill +0.000000000 b +2+2 6\n", NOW)
    assert connection.next_exchange() is not None
    assert calls == [None]
