"""Shaping Places results into a WHATSAT reply, with no I/O.

Every Places source (the embedded offline one, Google over HTTP) produces a
dict in the layout of a Google Places Nearby Search response; this module
turns it into the bytes of a WHATSAT reply exactly as protocol.md lays them
out, and makes the Google-shaped answer for a source that failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_NEWLINES = re.compile(r"\n{2,}")


def google_json(response: Mapping[str, Any]) -> str:
    """JSON printed as Google prints it: three-space indent, ``" : "`` after keys."""
    try:
        return json.dumps(response, indent=3, separators=(",", " : "), ensure_ascii=False)
    except UnicodeEncodeError:  # pragma: no cover - json raises this only for odd input
        return json.dumps(response, indent=3, separators=(",", " : "))


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
