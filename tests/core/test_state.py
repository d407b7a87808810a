"""The server's rules without sockets: the table, flooding, WHATSAT, peers."""

import json

from hypothesis import given
from hypothesis import strategies as st

from trioherd.core.messages import parse_at
from trioherd.core.places import PlacesQuery, error_response, whatsat_reply
from trioherd.core.state import Outbox, PeerJoined, ServerState
from trioherd.core.table import LocationTable

NOW = 1621464828_000000000


def smith() -> ServerState:
    return ServerState("Smith", ["Hill", "Singleton", "Campbell"])


def owed(state: ServerState) -> dict[str, bytes]:
    return {peer: state.take(peer) for peer in state.peers}


def test_iamat_is_answered_stored_and_flooded_to_every_neighbour() -> None:
    state = smith()
    reply = state.handle(b"IAMAT kiwi +34.068930-118.445127 1621464827.5", NOW)
    line = b"AT Smith +0.500000000 kiwi +34.068930-118.445127 1621464827.5"
    assert reply == line + b"\n"
    assert state.table.line(b"kiwi") == line
    assert owed(state) == {
        "Hill": line + b"\n",
        "Singleton": line + b"\n",
        "Campbell": line + b"\n",
    }


def test_stale_and_equal_iamats_are_answered_but_change_nothing() -> None:
    state = smith()
    state.handle(b"IAMAT kiwi +1+1 100", NOW)
    owed(state)
    stale = state.handle(b"IAMAT kiwi +2+2 99.999999999", NOW)
    assert stale == b"AT Smith +1621464728.000000001 kiwi +2+2 99.999999999\n"
    tied = state.handle(b"IAMAT kiwi +3+3 100.000000000", NOW + 1)
    assert tied == b"AT Smith +1621464728.000000001 kiwi +3+3 100.000000000\n"
    assert state.table.line(b"kiwi") == b"AT Smith +1621464728.000000000 kiwi +1+1 100"
    assert owed(state) == {"Hill": b"", "Singleton": b"", "Campbell": b""}


def test_peer_update_is_flooded_to_all_but_its_source_and_not_answered() -> None:
    state = smith()
    line = b"AT Hill +0.100000000 kiwi +1+1 100"
    assert state.handle(line, NOW, peer="Hill") is None
    assert owed(state) == {"Hill": b"", "Singleton": line + b"\n", "Campbell": line + b"\n"}
    # The same update again changes nothing, so the flood stops here.
    assert state.handle(line, NOW, peer="Singleton") is None
    assert owed(state) == {"Hill": b"", "Singleton": b"", "Campbell": b""}


def test_ties_between_peers_are_broken_the_same_way_everywhere() -> None:
    low = b"AT Campbell +0.100000000 kiwi +1+1 100"
    high = b"AT Hill +0.100000000 kiwi +2+2 100"
    for order in ([low, high], [high, low]):
        state = smith()
        for line in order:
            state.handle(line, NOW, peer="Singleton")
        assert state.table.line(b"kiwi") == high


def test_an_at_line_on_a_client_connection_is_invalid() -> None:
    state = smith()
    line = b"AT Hill +0.100000000 kiwi +1+1 100"
    assert state.handle(line, NOW) == b"? " + line + b"\n"
    assert len(state.table) == 0


def test_invalid_peer_line_is_answered_with_a_question_mark() -> None:
    assert smith().handle(b"IAMAT kiwi +1+1 5", NOW, peer="Hill") == b"? IAMAT kiwi +1+1 5\n"


def test_handshake_from_a_neighbour_only() -> None:
    state = smith()
    assert state.handle(b"PEER Hill 1", NOW) == PeerJoined("Hill")
    assert state.handle(b"PEER Hill 1 future=yes", NOW) == PeerJoined("Hill")
    assert state.handle(b"PEER Jaquez 1", NOW) == b"? PEER Jaquez 1\n"
    assert state.handle(b"PEER Hill 2", NOW) == b"? PEER Hill 2\n"


def test_whatsat_asks_places_about_the_stored_location() -> None:
    state = smith()
    state.handle(b"IAMAT kiwi +34.068930-118.445127 1621464827.5", NOW)
    query = state.handle(b"WHATSAT kiwi 10 5", NOW)
    assert query == PlacesQuery(
        b"AT Smith +0.500000000 kiwi +34.068930-118.445127 1621464827.5",
        34.068930,
        -118.445127,
        10000.0,
        5,
    )


def test_whatsat_for_an_unknown_client_is_invalid() -> None:
    assert smith().handle(b"WHATSAT nobody 10 5", NOW) == b"? WHATSAT nobody 10 5\n"


def test_anything_else_is_invalid_and_echoed() -> None:
    state = smith()
    for line in [b"", b"   ", b"HELLO", b"IAMAT", b"WHATSAT kiwi 10 5 extra", b"\xff\xfe"]:
        assert state.handle(line, NOW) == b"? " + line + b"\n"


def test_resync_owes_the_whole_table() -> None:
    state = smith()
    for i in range(3):
        state.handle(b"IAMAT c%d +1+1 5" % i, NOW)
    owed(state)
    state.resync("Campbell")
    batch = state.take("Campbell")
    assert batch.splitlines() == [state.table.line(b"c%d" % i) for i in range(3)]


def test_outbox_sends_each_client_once_with_its_latest_record() -> None:
    table = LocationTable()
    box = Outbox()
    for t in (1, 2, 3):
        at = parse_at(b"AT Hill +0.000000000 kiwi +1+1 %d" % t)
        assert at is not None
        table.offer(at, from_client=False)
        box.add([at.client_id])
    assert box.take(table) == b"AT Hill +0.000000000 kiwi +1+1 3\n"
    assert len(box) == 0


def test_outbox_hands_out_big_backlogs_in_batches() -> None:
    table = LocationTable()
    box = Outbox()
    for i in range(10):
        at = parse_at(b"AT Hill +0.000000000 c%d +1+1 5" % i)
        assert at is not None
        table.offer(at, from_client=False)
        box.add([at.client_id])
    assert len(box.take(table, limit=4).splitlines()) == 4
    assert len(box.take(table, limit=4).splitlines()) == 4
    assert len(box.take(table, limit=4).splitlines()) == 2
    assert box.take(table) == b""


updates = st.lists(
    st.tuples(
        st.sampled_from(["Hill", "Jaquez", "Campbell"]),
        st.integers(0, 5),
        st.sampled_from([b"+1+1", b"+2+2"]),
    ),
    min_size=1,
    max_size=12,
)


@given(updates, st.randoms())
def test_any_delivery_order_converges(records: list[tuple[str, int, bytes]], rnd) -> None:  # type: ignore[no-untyped-def]
    lines = [b"AT %s +0.000000000 kiwi %s %d" % (s.encode(), loc, t) for s, t, loc in records]
    winners = set()
    for _ in range(3):
        shuffled = lines[:]
        rnd.shuffle(shuffled)
        state = smith()
        for line in shuffled:
            state.handle(line, NOW, peer="Hill")
        winners.add(state.table.line(b"kiwi"))
    assert len(winners) == 1


def test_whatsat_reply_layout() -> None:
    response = {
        "html_attributions": [],
        "results": [{"name": f"place {i}", "note": "a\n\n\nb"} for i in range(5)],
        "status": "OK",
    }
    reply = whatsat_reply(b"AT Hill +0.1 kiwi +1+1 5", response, 2)
    at_line, _, rest = reply.partition(b"\n")
    assert at_line == b"AT Hill +0.1 kiwi +1+1 5"
    assert reply.endswith(b"}\n\n")
    body = rest[:-2]
    assert b"\n\n" not in body
    assert body.startswith(b'{\n   "html_attributions" : [],\n   "results" : [\n      {\n')
    assert [r["name"] for r in json.loads(body)["results"]] == ["place 0", "place 1"]


def test_whatsat_reply_keeps_non_ascii_as_utf8() -> None:
    reply = whatsat_reply(b"AT", {"results": [{"name": "Zürich"}], "status": "OK"}, 1)
    assert "Zürich".encode() in reply


def test_error_response_is_google_shaped() -> None:
    body = whatsat_reply(b"AT", error_response("timed out"), 5).split(b"\n", 1)[1]
    assert json.loads(body) == {
        "error_message": "timed out",
        "html_attributions": [],
        "results": [],
        "status": "UNKNOWN_ERROR",
    }


def test_flooded_reports_each_neighbour_owed_new_records_once() -> None:
    state = smith()
    state.handle(b"IAMAT a +1+1 5", NOW)
    state.handle(b"IAMAT b +1+1 5", NOW)
    assert state.flooded() == ["Hill", "Singleton", "Campbell"]
    assert state.flooded() == []
    state.handle(b"AT Hill +0.000000000 c +2+2 6", NOW, peer="Hill")
    assert state.flooded() == ["Singleton", "Campbell"]
    assert state.owes("Hill")
    assert state.owes("Campbell")
