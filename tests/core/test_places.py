"""google_json against the standard library's pretty-printer it replaces."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioherd.core.places import NearbyEndpoint, PlacesQuery, google_json
from trioherd.offline.cache import load_index
from trioherd.offline.nearby import nearby_search


def stdlib(value: Any) -> str:
    return json.dumps(value, indent=3, separators=(",", " : "), ensure_ascii=False)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    # Lone surrogates too: json.dumps passes them through, and so must we.
    | st.text(st.characters(codec=None))
)
keys = st.text() | st.integers() | st.floats() | st.booleans() | st.none()
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=40,
)


@given(documents)
def test_same_text_as_json_dumps(document: Any) -> None:
    assert google_json(document) == stdlib(document)


def test_same_text_for_a_real_places_response() -> None:
    response = nearby_search(load_index(), {"location": "34.06893,-118.445127", "radius": "50000"})
    assert google_json(response) == stdlib(response)


def test_subclasses_and_mappings_as_json_dumps() -> None:
    class Name(str):
        pass

    class Count(int):
        pass

    document = OrderedDict([("a", [Name("x"), Count(3), 2.5, math.inf]), ("b", OrderedDict())])
    assert google_json(document) == stdlib(document)


@pytest.mark.parametrize("bad", [{"a": object()}, {(1, 2): "tuple key"}, [b"bytes"]])
def test_what_json_cannot_hold_is_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError):
        stdlib(bad)
    with pytest.raises(TypeError):
        google_json(bad)


_QUERY = PlacesQuery(b"AT x", 34.068930, -118.445127, 10_000.0, 5)


def test_nearby_target_joins_the_endpoint_and_the_parameters() -> None:
    plain = NearbyEndpoint("http://places.test/nearby", "k&y", 5.0)
    assert plain.target(_QUERY) == (
        "http://places.test/nearby?location=34.06893%2C-118.445127&radius=10000&key=k%26y"
    )
    # An endpoint that has a query of its own keeps it.
    with_query = NearbyEndpoint("http://places.test/nearby?lang=en", None, 5.0)
    assert with_query.target(_QUERY).startswith("http://places.test/nearby?lang=en&location=")
    assert "key=" not in with_query.target(_QUERY)


@pytest.mark.parametrize(
    ("latitude", "longitude", "radius_m"),
    [
        (34.068930, -118.445127, 10_000.0),
        (-0.0, 1e-05, 0.0004),
        (1e16, -1e-300, 50_000.0),
        (math.inf, -math.inf, math.nan),
        (89.99999999999999, 180.0, 1.5),
    ],
)
def test_nearby_target_is_what_urlencode_makes(
    latitude: float, longitude: float, radius_m: float
) -> None:
    query = PlacesQuery(b"AT x", latitude, longitude, radius_m, 5)
    for key in (None, "k&y+z=/ \u00e9"):
        endpoint = NearbyEndpoint("http://places.test/nearby", key, 5.0)
        expected = endpoint.url + "?" + urlencode(endpoint.params(query))
        assert endpoint.target(query) == expected


@given(st.floats(), st.floats(), st.floats())
def test_nearby_target_is_what_urlencode_makes_for_any_floats(
    latitude: float, longitude: float, radius_m: float
) -> None:
    query = PlacesQuery(b"AT x", latitude, longitude, radius_m, 5)
    endpoint = NearbyEndpoint("http://places.test/nearby?lang=en", "k", 5.0)
    assert endpoint.target(query) == endpoint.url + "&" + urlencode(endpoint.params(query))


def test_a_failure_names_the_error_but_never_the_key() -> None:
    endpoint = NearbyEndpoint("http://places.test/nearby", "sekrit", 2.5)
    failed = endpoint.failed(ConnectionError("refused for key=sekrit"))
    assert failed["status"] == "UNKNOWN_ERROR"
    assert (
        failed["error_message"] == "Places request failed: ConnectionError: refused for key=<key>"
    )
    assert endpoint.failed(TimeoutError())["error_message"] == "Places request failed: TimeoutError"
    assert endpoint.timed_out()["error_message"] == "Places request timed out after 2.5 s"
