"""google_json against the standard library's pretty-printer it replaces."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioherd.core.places import google_json
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
