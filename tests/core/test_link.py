"""The outbound link's decisions without sockets: handshake, backoff, replies, wording."""

import dataclasses

import pytest

from trioherd.core.limits import DEFAULT_LIMITS
from trioherd.core.link import BACKOFF_CAP, BACKOFF_FIRST, LinkClosed, LinkProtocol, LinkRejected
from trioherd.core.state import ServerState

NOW = 1621464828_000000000


def link(uniform: float = 1.0) -> tuple[ServerState, LinkProtocol]:
    state = ServerState("Smith", ["Hill", "Campbell"])
    return state, LinkProtocol(state, "Hill", uniform=lambda a, b: uniform)


def test_connecting_sends_the_handshake_and_owes_the_whole_table() -> None:
    state, protocol = link()
    state.handle(b"IAMAT a +1+1 5", NOW)
    state.take("Hill")
    assert not protocol.owes()
    assert protocol.connected() == b"PEER Smith 1\nRESUME\n"
    assert protocol.up
    # Not known to answer: owed the whole table at once, no marks...
    batch = protocol.take()
    assert batch.startswith(b"AT Smith ")
    assert b"MARK" not in batch
    # ...until it answers after all.
    state.handle(b"IAMAT b +1+1 5", NOW)
    assert protocol.receive(b"RESUME - 0\n") == []
    assert protocol.take().endswith(b"MARK %s 2\n" % state.table.epoch)


def test_a_neighbour_that_asked_us_is_asked_where_to_resume() -> None:
    state, protocol = link()
    state.handle(b"IAMAT a +1+1 5", NOW)
    state.take("Hill")
    # Hill's own link to us asked RESUME: Hill speaks it.
    assert state.handle(b"RESUME", NOW, "Hill") == b"RESUME - 0\n"
    assert protocol.connected() == b"PEER Smith 1\nRESUME\n"
    # Nothing is owed until the neighbour says where to resume.
    assert not protocol.owes()
    assert protocol.take() == b""
    assert protocol.receive(b"RESUME - 0\n") == []
    assert protocol.take().startswith(b"AT Smith ")


def test_backoff_doubles_to_a_cap_with_jitter_and_resets_when_up() -> None:
    _, protocol = link()
    delays = []
    for _ in range(10):
        protocol.cannot_connect(ConnectionRefusedError(111, "Connection refused"))
        delays.append(protocol.backoff())
    assert delays[0] == BACKOFF_FIRST
    assert delays[1] == 2 * BACKOFF_FIRST
    assert delays[-1] == BACKOFF_CAP
    # A link that comes back (a healed partition) is retried within a second.
    assert max(delays) <= 1.0
    _, half = link(uniform=0.5)
    half.cannot_connect(OSError())
    assert half.backoff() == BACKOFF_FIRST / 2


def test_only_the_first_failure_of_an_outage_is_said_aloud() -> None:
    _, protocol = link()
    refused = ConnectionRefusedError(111, "Connection refused")
    assert protocol.cannot_connect(refused) == (
        "link to Hill: cannot connect: Connection refused",
        True,
    )
    assert protocol.cannot_connect(refused)[1] is False
    protocol.connected()
    assert protocol.cannot_connect(refused)[1] is True


def test_replies_refusals_and_eof() -> None:
    _, protocol = link()
    protocol.connected()
    assert protocol.receive(b"? AT bad\n? A") == ["link to Hill < ? AT bad"]
    assert protocol.receive(b"T worse\n") == ["link to Hill < ? AT worse"]
    with pytest.raises(LinkRejected):
        protocol.receive(b"? PEER Smith 1\n")
    with pytest.raises(LinkClosed) as closed:
        protocol.receive(b"")
    assert protocol.dropped(closed.value) == ("link to Hill: closed by Hill", False)
    assert protocol.dropped(LinkRejected("? PEER Smith 1"))[1] is True
    assert protocol.dropped(ConnectionResetError(104, "Connection reset by peer")) == (
        "link to Hill: dropped: Connection reset by peer",
        False,
    )
    assert not protocol.up


def test_a_first_hops_reply_waits_until_its_batch_is_written() -> None:
    state, protocol = link()
    # Down: the reply need not wait, the resync will carry the record.
    state.handle(b"IAMAT a +1+1 5", NOW)
    assert protocol.hand_over() is None
    protocol.connected()
    protocol.take()  # the resync
    protocol.written(protocol.taken)
    state.handle(b"IAMAT b +1+1 5", NOW)
    first = protocol.hand_over()
    state.handle(b"IAMAT c +1+1 5", NOW)
    second = protocol.hand_over()
    assert first is not None
    assert second is not None
    assert protocol.on_wire < first < second
    # One batch holds both first hops; neither reply goes before it is written.
    batch = protocol.take()
    assert batch.count(b"\n") == 2
    taken = protocol.taken
    assert protocol.on_wire < first
    protocol.written(taken)
    assert protocol.on_wire >= second


def test_a_backed_up_or_dropped_link_releases_the_waiting_replies() -> None:
    state, protocol = link()
    protocol.connected()
    protocol.take()
    state.handle(b"IAMAT a +1+1 5", NOW)
    mark = protocol.hand_over()
    assert mark is not None
    assert protocol.on_wire < mark
    # The link backs up before the record is even taken: the reply goes,
    # the record stays owed.
    protocol.release()
    assert protocol.on_wire >= mark
    assert protocol.owes()


def test_a_record_the_table_forgot_holds_no_reply_once_nothing_is_owed() -> None:
    limits = dataclasses.replace(DEFAULT_LIMITS, max_clients=1)
    state = ServerState("Smith", ["Hill", "Campbell"], limits=limits)
    protocol = LinkProtocol(state, "Hill")
    protocol.connected()
    protocol.take()
    state.handle(b"IAMAT a +1+1 5", NOW)
    mark = protocol.hand_over()
    assert mark is not None
    # Hill's own update evicts a before a is sent, and is not owed back to Hill.
    state.handle(b"AT Hill +0.000000001 b +1+1 5", NOW, "Hill")
    assert not protocol.owes()
    # The link's sender, finding nothing owed, releases the waiting reply.
    protocol.release()
    assert protocol.on_wire >= mark
