"""Issue 12's rules in the core: the peer handshake, caps, timeouts, hidden addresses."""

import json

import pytest

from trioherd.core import auth
from trioherd.core.connection import PLACES_FAILED, Connection
from trioherd.core.limits import DEFAULT_LIMITS, Admission, Limits
from trioherd.core.link import LinkProtocol, LinkRejected
from trioherd.core.messages import NS_PER_SECOND, parse_at
from trioherd.core.places import PlacesAnswer, error_response
from trioherd.core.state import ServerState
from trioherd.core.table import LocationTable

NOW = 1621464828_000000000
SECRET = b"correct horse battery staple"


def smith(secret: bytes | None = SECRET, limits: Limits = DEFAULT_LIMITS) -> ServerState:
    return ServerState("Smith", ["Hill", "Singleton", "Campbell"], limits=limits, secret=secret)


def hill(secret: bytes | None = SECRET) -> ServerState:
    return ServerState("Hill", ["Smith", "Jaquez"], secret=secret)


def answer_of(connection: Connection, data: bytes) -> bytes:
    connection.receive(data, NOW)
    out = b""
    while (exchange := connection.next_exchange()) is not None:
        out += exchange.output()
    return out


def test_both_sides_prove_the_secret_then_records_flow() -> None:
    hill_state = hill()
    hill_state.handle(b"IAMAT kiwi +1+1 5", NOW)
    link = LinkProtocol(hill_state, "Smith")
    smith_state = smith()
    responder = Connection(smith_state)
    hello = link.connected()
    assert hello.startswith(b"PEER Hill 1 nonce=")
    assert not link.owes()
    assert link.take() == b""
    challenge = answer_of(responder, hello)
    assert challenge.startswith(b"PEER Smith 1 nonce=")
    assert b" proof=" in challenge
    assert responder.peer is None  # not yet
    link.receive(challenge)
    batch = link.take()
    assert batch.startswith(b"PROOF ")
    assert b"\nAT Hill " in batch
    # Proven, the link asks where to resume (docs/peer-protocol.md).
    assert answer_of(responder, batch).startswith(b"RESUME ")
    assert responder.peer == "Hill"
    assert smith_state.table.line(b"kiwi") == hill_state.table.line(b"kiwi")


def test_a_replayed_handshake_is_refused() -> None:
    link = LinkProtocol(hill(), "Smith")
    hello = link.connected()
    proof_line = handshake_from(link, hello, Connection(smith()))
    # An eavesdropper replays both of Hill's lines on a new connection:
    # Smith's nonce is new, so the old proof is worthless.
    replay = Connection(smith())
    out = answer_of(replay, hello + proof_line + b"AT Hill +0.000000001 victim +1+1 99\n")
    # proof_line is Hill's PROOF, then its RESUME: the PROOF is refused.
    assert b"? " + proof_line.split(b"\n")[0] + b"\n" in out
    assert replay.peer is None
    assert replay.finished


def handshake_from(link: LinkProtocol, hello: bytes, responder: Connection) -> bytes:
    link.receive(answer_of(responder, hello))
    return link.take()


@pytest.mark.parametrize(
    "forged",
    [
        b"PEER Hill 1\n",
        b"PEER Hill 1 auth=anything\n",
        b"PEER Hill 1 nonce=" + b"0" * 32 + b"\nPROOF " + b"0" * 64 + b"\n",
        b"PEER Hill 1 nonce=" + b"0" * 32 + b"\nAT Hill +0.1 victim +1+1 99\n",
    ],
)
def test_forged_handshakes_are_refused_and_store_nothing(forged: bytes) -> None:
    state = smith()
    connection = Connection(state)
    connection.receive(forged + b"AT Hill +0.000000001 victim +1+1 99\n", NOW)
    refused = []
    while (exchange := connection.next_exchange()) is not None:
        refused.append(exchange.refused)
    assert connection.peer is None
    assert any(refused)
    assert state.table.line(b"victim") is None


def test_a_neighbour_with_another_secret_is_refused_by_the_initiator() -> None:
    link = LinkProtocol(hill(b"another secret, just as long"), "Smith")
    challenge = answer_of(Connection(smith()), link.connected())
    with pytest.raises(LinkRejected, match="failed to prove"):
        link.receive(challenge)


def test_a_secret_initiator_refuses_an_open_neighbour() -> None:
    link = LinkProtocol(hill(), "Smith")
    link.connected()
    # An open server accepts the hello silently; its first line is no proof.
    with pytest.raises(LinkRejected, match="unexpected answer"):
        link.receive(b"AT Smith +0.1 x +1+1 5\n")


def test_proofs_differ_by_role_so_one_cannot_be_reflected() -> None:
    args = (b"Hill", b"Smith", b"a" * 32, b"b" * 32)
    assert auth.proof(SECRET, auth.INITIATOR, *args) != auth.proof(SECRET, auth.RESPONDER, *args)
    assert not auth.proof_holds(SECRET, b"zz", auth.INITIATOR, *args)


def test_without_a_secret_the_handshake_is_the_course_one() -> None:
    link = LinkProtocol(hill(None), "Smith")
    assert link.connected() == b"PEER Hill 1\nRESUME\n"
    assert not link.handshaking
    responder = Connection(smith(None))
    assert answer_of(responder, b"PEER Hill 1\n") == b""
    assert responder.peer == "Hill"


def test_the_table_forgets_the_least_recently_updated_past_its_cap() -> None:
    state = smith(limits=Limits(max_clients=3))
    for client in (b"a", b"b", b"c"):
        state.handle(b"IAMAT %s +1+1 5" % client, NOW)
    state.handle(b"IAMAT a +1+1 6", NOW)  # a is now the most recent
    state.handle(b"IAMAT d +1+1 5", NOW)
    assert list(state.table.clients()) == [b"c", b"a", b"d"]
    assert state.table.evicted == 1


def test_a_full_table_stays_at_its_cap() -> None:
    table = LocationTable(max_clients=1_000)
    for n in range(3_000):
        at = parse_at(b"AT Hill +0.100000000 client-%d +1+1 5" % n)
        assert at is not None
        assert table.offer(at, from_client=True)
    assert len(table) == 1_000
    assert table.evicted == 2_000
    assert next(table.clients()) == b"client-2000"


def test_an_iamat_time_far_ahead_is_invalid_and_pins_nothing() -> None:
    state = smith(limits=Limits(max_future=60))
    ahead = NOW // NS_PER_SECOND + 61
    line = b"IAMAT kiwi +1+1 %d" % ahead
    assert state.handle(line, NOW) == b"? " + line + b"\n"
    assert state.table.line(b"kiwi") is None
    assert state.handle(b"IAMAT kiwi +1+1 %d" % (ahead - 2), NOW) != b"? "
    assert state.table.line(b"kiwi") is not None
    forged = b"AT Hill +0.000000001 pinned +1+1 99999999999999999999"
    assert state.handle(forged, NOW, peer="Hill") == b"? " + forged + b"\n"


def test_a_failed_places_answer_hides_where_places_is() -> None:
    connection = Connection(smith(None))
    connection.receive(b"IAMAT a +1+1 5\nWHATSAT a 10 2\n", NOW)
    exchange = connection.next_exchange()
    assert exchange is not None
    detail = "ConnectError: all attempts to connect to 127.0.0.1:23080 failed"
    assert exchange.answer(1, error_response(detail)) == f"UNKNOWN_ERROR: {detail}"
    body = json.loads(exchange.replies[1].split(b"\n", 1)[1])
    assert body["error_message"] == PLACES_FAILED
    assert b"127.0.0.1" not in exchange.output()


def test_read_timeouts_idle_then_line_then_none_for_a_link() -> None:
    limits = Limits(idle_timeout=10, line_timeout=2)
    connection = Connection(smith(None, limits), opened_ns=NOW)
    assert connection.read_timeout(NOW + 4 * NS_PER_SECOND) == (6.0, "idle for 10 s")
    connection.receive(b"IAMA", NOW + 5 * NS_PER_SECOND)
    assert connection.read_timeout(NOW + 6 * NS_PER_SECOND) == (1.0, "line unfinished for 2 s")
    # More of the same line does not restart its deadline.
    connection.receive(b"T", NOW + 6 * NS_PER_SECOND)
    assert connection.read_timeout(NOW + 6 * NS_PER_SECOND) == (1.0, "line unfinished for 2 s")
    connection.receive(b" a +1+1 5\nPEER Hill 1\n", NOW + 6 * NS_PER_SECOND)
    while connection.next_exchange() is not None:
        pass
    assert connection.read_timeout(NOW + 99 * NS_PER_SECOND) is None


def test_a_lazy_read_deadline_stays_until_the_core_s_comes_sooner_or_near() -> None:
    limits = Limits(idle_timeout=10, line_timeout=2)
    connection = Connection(smith(None, limits), opened_ns=NOW)
    idle_at = NOW + 10 * NS_PER_SECOND
    # Nothing armed: arm the core's deadline.
    assert connection.deadline_to_arm(None, NOW) == idle_at
    # A whole line 1 s later moves the core's idle deadline later: the armed
    # one stays, 9 s away.
    connection.receive(b"IAMAT a +1+1 5\n", NOW + NS_PER_SECOND)
    assert connection.deadline_to_arm(idle_at, NOW + NS_PER_SECOND) == idle_at
    # Under half a timeout away: moved to the core's.
    assert connection.deadline_to_arm(idle_at, NOW + 6 * NS_PER_SECOND) == NOW + 11 * NS_PER_SECOND
    # A line begun comes sooner than the armed idle deadline: moved at once.
    connection.receive(b"IAMA", NOW + 2 * NS_PER_SECOND)
    assert connection.deadline_to_arm(idle_at, NOW + 2 * NS_PER_SECOND) == NOW + 4 * NS_PER_SECOND
    # A neighbour's link has none: cleared.
    connection.receive(b"T a +1+1 5\nPEER Hill 1\n", NOW + 3 * NS_PER_SECOND)
    while connection.next_exchange() is not None:
        pass
    assert connection.deadline_to_arm(idle_at, NOW + 3 * NS_PER_SECOND) is None


def test_a_read_timer_that_fires_is_a_timeout_only_once_the_core_s_deadline_passed() -> None:
    limits = Limits(idle_timeout=10, line_timeout=2)
    connection = Connection(smith(None, limits), opened_ns=NOW)
    connection.receive(b"IAMAT a +1+1 5\n", NOW + NS_PER_SECOND)
    # A lazy timer armed for NOW + 10 s fires then: the core's idle deadline
    # moved on to NOW + 11 s, so the layer reads on.
    assert connection.timed_out(False, NOW + 10 * NS_PER_SECOND) is None
    assert connection.timed_out(False, NOW + 11 * NS_PER_SECOND) == "idle for 10 s"
    # Cutting an answer short is a timeout whatever the deadline.
    assert connection.timed_out(True, NOW + 10 * NS_PER_SECOND) == "idle for 10 s"
    connection.receive(b"IAMA", NOW + 12 * NS_PER_SECOND)
    assert connection.timed_out(False, NOW + 14 * NS_PER_SECOND) == "line unfinished for 2 s"
    # A neighbour's link never times out its reads.
    connection.receive(b"T a +1+1 5\nPEER Hill 1\n", NOW + 13 * NS_PER_SECOND)
    while connection.next_exchange() is not None:
        pass
    assert connection.timed_out(True, NOW + 99 * NS_PER_SECOND) is None


def test_admission_caps_overall_and_per_address() -> None:
    admission = Admission(Limits(max_connections=3, max_per_address=2))
    assert admission.admit("127.0.0.1") is None
    assert admission.admit("127.0.0.1") is None
    assert admission.admit("127.0.0.1") is not None
    assert admission.admit("127.0.0.2") is None
    assert admission.admit("127.0.0.3") is not None
    admission.release("127.0.0.1")
    assert admission.admit("127.0.0.3") is None
    assert admission.refused == 2


def test_an_outbox_to_a_neighbour_that_is_down_stays_within_the_cap() -> None:
    state = smith(limits=Limits(max_clients=10))
    for n in range(100):
        state.handle(b"IAMAT c%d +1+1 5" % n, NOW)
    assert len(state._outboxes["Hill"]) == 10
    batch = state.take("Hill", limit=1000)
    assert batch.count(b"\n") == 10
    assert not state.owes("Hill")


def test_an_undecoded_http_answer_is_decoded_when_its_reply_is_made() -> None:
    body = json.dumps({"html_attributions": [], "results": [{"name": "x"}] * 3, "status": "OK"})
    replies = []
    for answer in (PlacesAnswer(200, body.encode()), json.loads(body)):
        connection = Connection(smith(None))
        connection.receive(b"IAMAT a +1+1 5\nWHATSAT a 10 2\n", NOW)
        exchange = connection.next_exchange()
        assert exchange is not None
        assert exchange.answer(1, answer) is None
        replies.append(exchange.output())
    assert replies[0] == replies[1]
    assert b'"name" : "x"' in replies[0]
    # A failed HTTP answer gets the same hiding as any failure.
    connection = Connection(smith(None))
    connection.receive(b"IAMAT a +1+1 5\nWHATSAT a 10 2\n", NOW)
    exchange = connection.next_exchange()
    assert exchange is not None
    assert exchange.answer(1, PlacesAnswer(200, b"<html>")) == (
        "UNKNOWN_ERROR: Places answered with a body that is not JSON"
    )
    assert PLACES_FAILED.encode() in exchange.output()
