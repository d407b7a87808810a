"""Shaping Places results into a WHATSAT reply, with no I/O.

Every Places source (the embedded offline one, Google over HTTP) produces a
dict in the layout of a Google Places Nearby Search response; this module
turns it into the bytes of a WHATSAT reply exactly as docs/protocol.md lays them
out, and makes the Google-shaped answer for a source that failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import quote_plus


@dataclass(frozen=True, slots=True)
class PlacesQuery:
    """A WHATSAT to answer: the stored AT line, and what to ask Places for."""

    at_line: bytes
    latitude: float
    longitude: float
    radius_m: float
    bound: int


@dataclass(frozen=True, slots=True)
class PlacesAnswer:
    """A Places endpoint's HTTP answer, not decoded yet.

    An HTTP source returns this rather than the decoded response, so that
    the decoding (the biggest single piece of a WHATSAT's CPU) runs
    where the reply is shaped: in the reply's turn at the CPU
    (``trioherd/turns.py``), right before the shaping reads what it made.
    Decoded as soon as it arrived, each answer waiting for its turn held
    a tree of a few hundred objects instead of one ``bytes``: at 200
    concurrent WHATSATs that cost Hill a fifth of its CPU per WHATSAT on
    trio and on asyncio, as much as having no turns at all saved
    (bench/results/http/s22/README.md); and the decoding escaped the
    turns' bound on heavy work per pass of the event loop.
    """

    status_code: int
    body: bytes

    def decode(self) -> dict[str, Any]:
        """The Nearby Search response: :func:`parse_places_answer`."""
        return parse_places_answer(self.status_code, self.body)


#: What a source answers: a Google-shaped response, or an HTTP answer still to decode.
NearbyResponse = dict[str, Any] | PlacesAnswer


def decoded(response: NearbyResponse) -> dict[str, Any]:
    """``response`` as a Google-shaped dict, decoding it if it is a :class:`PlacesAnswer`."""
    return response.decode() if isinstance(response, PlacesAnswer) else response


class PlacesSource(Protocol):
    """Where WHATSAT gets its places from, on either event loop."""

    #: A short description for the startup log.
    description: str
    #: Whether :meth:`nearby` computes its answer here, with no I/O to wait
    #: for (the offline index): the layers then ask it one query at a time,
    #: each in a turn at the CPU, rather than all of an exchange's at once
    #: to overlap their waits (``trioherd/turns.py``).
    computed_here: bool

    async def nearby(self, query: PlacesQuery) -> NearbyResponse:
        """A Google-shaped Nearby Search response for ``query``, or the HTTP
        answer that holds it (:class:`PlacesAnswer`, decoded when the reply
        is made); never raises for a failure of the source itself."""
        ...


_NEWLINES = re.compile(r"\n{2,}")


def google_json(response: Mapping[str, Any]) -> str:
    """JSON printed as Google prints it: three-space indent, ``" : "`` after keys.

    The same text as ``json.dumps(response, indent=3, separators=(",", " : "),
    ensure_ascii=False)``, in about half the time (243 against 433 us for a
    15-place response on our benchmark machine): with an indent, the
    standard library falls back from its C encoder to a generator-based
    Python one. Here strings, the bulk of a Places response, still go
    through the C string encoder, and the structure is written by one
    recursive function (tests/core/test_places.py holds the two equal).
    Unlike ``json.dumps`` it does not look for reference cycles: Places
    data is a tree.

    Raises:
        TypeError: a value JSON cannot hold.
    """
    parts: list[str] = []
    _write_json(response, "\n", parts)
    return "".join(parts)


_INDENT = "   "
_encode_string = json.encoder.encode_basestring


def _write_json(value: object, newline: str, parts: list[str]) -> None:
    # Exact types first, and the common leaves (strings, floats) written in
    # place rather than by a call: json.loads and our index make nothing
    # else, and this function is the cost of a WHATSAT reply.
    append = parts.append
    kind = type(value)
    if kind is dict:
        items = cast(dict[object, object], value)
        if not items:
            append("{}")
            return
        inner = newline + _INDENT
        separator = "{" + inner
        for key, item in items.items():
            key_text = _encode_string(key) if type(key) is str else _json_key(key)
            leaf = type(item)
            if leaf is str:
                append(separator + key_text + " : " + _encode_string(cast(str, item)))
            elif leaf is float:
                append(separator + key_text + " : " + _json_float(cast(float, item)))
            else:
                append(separator + key_text + " : ")
                _write_json(item, inner, parts)
            separator = "," + inner
        append(newline + "}")
    elif kind is list:
        elements = cast(list[object], value)
        if not elements:
            append("[]")
            return
        inner = newline + _INDENT
        separator = "[" + inner
        for element in elements:
            if type(element) is str:
                append(separator + _encode_string(element))
            else:
                append(separator)
                _write_json(element, inner, parts)
            separator = "," + inner
        append(newline + "]")
    elif kind is str:
        append(_encode_string(cast(str, value)))
    elif kind is float:
        append(_json_float(cast(float, value)))
    elif kind is int:
        append(int.__repr__(cast(int, value)))
    elif value is None:
        append("null")
    elif value is True:
        append("true")
    elif value is False:
        append("false")
    elif isinstance(value, str):
        append(_encode_string(value))
    elif isinstance(value, int):
        append(int.__repr__(value))
    elif isinstance(value, float):
        append(_json_float(value))
    elif isinstance(value, Mapping):
        _write_json(dict(value), newline, parts)
    elif isinstance(value, list | tuple):
        _write_json(list(value), newline, parts)
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _json_float(value: float) -> str:
    # As json.dumps: repr, with JavaScript's names for what JSON lacks
    # ("inf", "-inf" and "nan" are the only reprs that end in a letter).
    text = float.__repr__(value)
    if text[-1] in "0123456789":
        return text
    return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"


def _json_key(key: object) -> str:
    # json.dumps turns these keys into strings; any other key is an error.
    if isinstance(key, str):
        return _encode_string(key)
    if key is True:
        return '"true"'
    if key is False:
        return '"false"'
    if key is None:
        return '"null"'
    if isinstance(key, int):
        return '"' + int.__repr__(key) + '"'
    if isinstance(key, float):
        return '"' + _json_float(key) + '"'
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def whatsat_reply(at_line: bytes, response: Mapping[str, Any], bound: int) -> bytes:
    """The reply to a WHATSAT, written in one piece.

    Args:
        at_line: the stored AT line for the client, without its ending.
        response: a Google-shaped Nearby Search response.
        bound: the most results to keep.

    Returns:
        The AT line, ``\\n``, the JSON with its results cut to ``bound``,
        runs of newlines squeezed to one and no trailing newline, then
        ``\\n\\n``.
    """
    shaped = dict(response)
    results = shaped.get("results")
    if isinstance(results, list):
        shaped["results"] = results[:bound]
    text = _NEWLINES.sub("\n", google_json(shaped)).rstrip("\n")
    # A lone surrogate from a source's JSON cannot be UTF-8; escape it rather
    # than fail the reply.
    return at_line + b"\n" + text.encode("utf-8", "backslashreplace") + b"\n\n"


def metres(radius_m: float) -> str:
    """A radius for a Nearby Search URL: plain decimal metres, to the millimetre.

    Never an exponent (``1e-05``), which an endpoint may refuse.
    """
    text = f"{radius_m:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "0") else "0.001"


def request_headers(library: str) -> list[tuple[bytes, bytes]]:
    """The headers of every Nearby Search request but ``Host``, as an HTTP client sends them.

    Args:
        library: the HTTP library and its version, for the ``User-Agent``
            (``httpx/0.28.1``).
    """
    return [
        (b"Accept", b"*/*"),
        (b"Accept-Encoding", b"gzip, deflate"),
        (b"User-Agent", f"trioherd {library}".encode()),
    ]


class NearbyEndpoint:
    """What every HTTP Places source says to one Nearby Search endpoint, and of its failures.

    The layers differ in their HTTP library, semaphore and timeout; the
    request they send and the reply a failed request gets are the same, and
    are here.

    Args:
        url: the endpoint, as the layer's HTTP library normalises it.
        key: the API key sent as ``key=``; it appears nowhere else, and is
            cut out of the text of a failure.
        timeout: the bound on one request, in seconds, for the reply that
            says it ran out.
        via: the HTTP library, named in the description where the layer
            offers more than one.
    """

    def __init__(self, url: str, key: str | None, timeout: float, via: str = "") -> None:
        self.url = url
        # What every target starts and ends with, encoded once here.
        self._prefix = url + ("&" if "?" in url else "?") + "location="
        self._key_param = "&key=" + quote_plus(key) if key else ""
        self._key = key
        self._timeout = timeout
        with_key = "with an API key" if key else "without an API key"
        library = f" ({via})" if via else ""
        self.description = f"Nearby Search over HTTP{library} at {url} ({with_key})"

    def params(self, query: PlacesQuery) -> dict[str, str]:
        """The query parameters that ask for ``query``'s places."""
        params = {
            "location": f"{query.latitude!r},{query.longitude!r}",
            "radius": metres(query.radius_m),
        }
        if self._key:
            params["key"] = self._key
        return params

    def target(self, query: PlacesQuery) -> str:
        """The URL that asks for ``query``'s places: the endpoint and :meth:`params`.

        The same text as the endpoint and ``urlencode(self.params(query))``
        (tests/core/test_places.py holds them equal), in a sixth of the time
        (1.2 against 7.4 us): a float's repr and :func:`metres` are made of
        digits, ``.``, ``-``, ``e``, ``+`` and the letters of ``inf`` and
        ``nan``, of which ``urlencode`` escapes only ``+``; the comma between
        the two is escaped here as it would be.
        """
        location = f"{query.latitude!r}%2C{query.longitude!r}&radius={metres(query.radius_m)}"
        if "+" in location:  # an exponent: 1e+16
            location = location.replace("+", "%2B")
        return self._prefix + location + self._key_param

    def failed(self, exc: BaseException) -> dict[str, Any]:
        """The response for a request that failed with the HTTP library's ``exc``.

        The class name says what failed (``ConnectError``, ``ReadError``...);
        the message, where there is one, says why. Neither names the
        request's URL, and the key is cut out in case a message quotes it.
        """
        detail = str(exc)
        name = type(exc).__name__
        message = (
            f"Places request failed: {name}: {detail}"
            if detail
            else f"Places request failed: {name}"
        )
        if self._key:
            message = message.replace(self._key, "<key>")
        return error_response(message)

    def timed_out(self) -> dict[str, Any]:
        """The response for a request that ran out of time."""
        return error_response(f"Places request timed out after {self._timeout:g} s")


def parse_places_answer(status_code: int, body: bytes) -> dict[str, Any]:
    """A Places endpoint's HTTP answer as a Nearby Search response.

    Google's own statuses (``REQUEST_DENIED``, ``OVER_QUERY_LIMIT``...) pass
    through as Google sent them; an answer that is not a Nearby Search
    response at all becomes ``UNKNOWN_ERROR`` saying what was wrong.
    """
    if status_code != 200:
        return error_response(f"Places answered HTTP {status_code}")
    try:
        response = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return error_response("Places answered with a body that is not JSON")
    if not isinstance(response, dict) or not isinstance(response.get("status"), str):
        return error_response("Places answered with JSON that is not a Nearby Search response")
    return response


def error_response(message: str, status: str = "UNKNOWN_ERROR") -> dict[str, Any]:
    """A Google-shaped response for a Places source that failed.

    Keys are in Google's (alphabetical) order, as in its own error replies.
    """
    return {
        "error_message": message,
        "html_attributions": [],
        "results": [],
        "status": status,
    }
