"""Google's Nearby Search API as our Places server speaks it, with no I/O.

:func:`nearby_search` takes the query parameters of a
``GET /maps/api/place/nearbysearch/json`` request and answers as Google's
legacy Nearby Search does: the same parameters, statuses and layout, with
places from the offline GeoNames index. The HTTP server around it
(``trioherd.places_server``) only moves bytes.

What is Google's and what is ours:

* ``location=LAT,LNG`` and ``radius`` (metres, at most 50 000) are required;
  a missing or malformed one is ``INVALID_REQUEST``, as with Google.
* ``key``: ignored unless the server is told to require one; then a missing
  or wrong key is ``REQUEST_DENIED``.
* Results rank by population (Google's default ranks by prominence), 20 to a
  page. With more, the response carries a ``next_page_token``; sending it
  back as ``pagetoken`` gives the next page. Our tokens are not secret: they
  encode the query and the offset, so the server keeps no state.
* Other parameters (``keyword``, ``type``, ``language``...) are ignored.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trioherd.core.places import error_response
from trioherd.offline.google import nearby_response
from trioherd.offline.index import PlaceIndex

#: The path of the Nearby Search endpoint.
NEARBY_PATH = "/maps/api/place/nearbysearch/json"
#: Google's largest radius, in metres.
MAX_RADIUS_M = 50_000.0
#: Results per page, as Google.
PAGE_SIZE = 20

_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*")


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """Which API keys the server accepts.

    Args:
        required: a request without a key is denied.
        expected: if set, the one key accepted.
    """

    required: bool = False
    expected: str | None = None


@dataclass(frozen=True, slots=True)
class NearbyRequest:
    """A valid Nearby Search request."""

    lat: float
    lng: float
    radius_m: float
    offset: int = 0


def _invalid(message: str) -> dict[str, Any]:
    return error_response(message, "INVALID_REQUEST")


def _denied(message: str) -> dict[str, Any]:
    return error_response(message, "REQUEST_DENIED")


def _number(text: str) -> float | None:
    return float(text) if _NUMBER.fullmatch(text) else None


def parse_request(params: Mapping[str, str]) -> NearbyRequest | dict[str, Any]:
    """The request in ``params``, or the ``INVALID_REQUEST`` response it deserves."""
    token = params.get("pagetoken")
    if token is not None:
        request = decode_page_token(token)
        if request is None:
            return _invalid("Invalid pagetoken parameter.")
        return request
    location = params.get("location")
    if location is None:
        return _invalid("Missing the location parameter.")
    lat_text, sep, lng_text = location.partition(",")
    lat, lng = _number(lat_text), _number(lng_text)
    if not sep or lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return _invalid(f"Invalid request. Invalid 'location' parameter: {location}")
    radius_text = params.get("radius")
    if radius_text is None:
        return _invalid("Missing the radius parameter.")
    radius = _number(radius_text)
    if radius is None or not 0 < radius <= MAX_RADIUS_M:
        return _invalid(f"Invalid request. Invalid 'radius' parameter: {radius_text}")
    return NearbyRequest(lat, lng, radius)


def encode_page_token(request: NearbyRequest) -> str:
    """A token for the page of ``request`` (its offset included)."""
    text = f"{request.lat!r},{request.lng!r},{request.radius_m!r},{request.offset}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> NearbyRequest | None:
    """The request a token stands for, or ``None`` if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        lat, lng, radius, offset = text.split(",")
        request = NearbyRequest(float(lat), float(lng), float(radius), int(offset))
    except ValueError:  # bad base64, bad UTF-8, wrong field count, bad number
        return None
    values = (request.lat, request.lng, request.radius_m)
    if not all(math.isfinite(v) for v in values) or request.offset < 0:
        return None
    if not (-90 <= request.lat <= 90 and 0 < request.radius_m <= MAX_RADIUS_M):
        return None
    return request


def nearby_search(
    index: PlaceIndex, params: Mapping[str, str], keys: KeyPolicy = KeyPolicy()
) -> dict[str, Any]:
    """Answer a Nearby Search request as Google would.

    Args:
        index: where places come from.
        params: the request's query parameters.
        keys: which API keys to accept.
    """
    key = params.get("key")
    if keys.required and not key:
        return _denied("You must use an API key to authenticate each request.")
    if keys.expected is not None and key != keys.expected:
        return _denied("The provided API key is invalid.")
    request = parse_request(params)
    if not isinstance(request, NearbyRequest):
        return request
    # One more than the page, to know whether there is a next page.
    found = nearby_response(
        index, request.lat, request.lng, request.radius_m, request.offset + PAGE_SIZE + 1
    )
    results = found.get("results")
    assert isinstance(results, list)
    page = results[request.offset : request.offset + PAGE_SIZE]
    response: dict[str, Any] = {"html_attributions": found.get("html_attributions", [])}
    if len(results) > request.offset + PAGE_SIZE:
        following = NearbyRequest(
            request.lat, request.lng, request.radius_m, request.offset + PAGE_SIZE
        )
        response["next_page_token"] = encode_page_token(following)
    response["results"] = page
    response["status"] = "OK" if page else "ZERO_RESULTS"
    return response
