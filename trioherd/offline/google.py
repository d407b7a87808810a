"""Offline places laid out as Google's Places Nearby Search lays out its answers.

The index finds places; this module dresses them as Google would, so that a
WHATSAT reply from the offline source reads like one from Google. GeoNames
publishes the data under CC BY 4.0, so every answer carries
:data:`ATTRIBUTION`.
"""

from __future__ import annotations

import math
from typing import Final

from trioherd.offline.index import EARTH_RADIUS_M, Place, PlaceIndex

__all__ = ["ATTRIBUTION", "ICON", "nearby_response", "place_result"]

#: The credit GeoNames' licence asks for, as Google's ``html_attributions`` holds it.
ATTRIBUTION: Final = (
    'Place data from <a href="https://www.geonames.org/">GeoNames</a>, '
    'licensed under <a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>'
)

#: The icon Google gives places of type ``locality``.
ICON: Final = "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/geocode-71.png"

# Viewports: a square of side 0.02·√population km, i.e. an area of one km²
# per 2,500 people, between 1 km and 100 km across.
_VIEWPORT_M_PER_SQRT_POP: Final = 10.0
_VIEWPORT_MIN_HALF_M: Final = 500.0
_VIEWPORT_MAX_HALF_M: Final = 50_000.0


def nearby_response(
    index: PlaceIndex, lat: float, lng: float, radius_m: float, limit: int
) -> dict[str, object]:
    """:meth:`PlaceIndex.nearby` laid out as a Google Places Nearby Search response.

    The keys are ``html_attributions`` (:data:`ATTRIBUTION`), ``results``
    (each one as :func:`place_result` makes it) and ``status`` (``"OK"``, or
    ``"ZERO_RESULTS"`` when nothing is near).

    Raises:
        ValueError: as :meth:`PlaceIndex.nearby`.
    """
    results = [place_result(place) for place in index.nearby(lat, lng, radius_m, limit)]
    return {
        "html_attributions": [ATTRIBUTION],
        "results": results,
        "status": "OK" if results else "ZERO_RESULTS",
    }


def place_result(place: Place) -> dict[str, object]:
    """One place as a Nearby Search result, with Google's keys in Google's order.

    ``geometry`` (``location``, and a ``viewport`` that is a rough square of
    ~0.02·√population km a side, 1 to 100 km; near the antimeridian its
    ``southwest.lng`` may exceed ``northeast.lng``, as with Google),
    ``icon``, ``name``, ``place_id`` and ``reference`` (both
    ``"geonames:<geonameid>"``), ``scope`` (``"GOOGLE"``), ``types``
    (``["locality", "political"]``) and ``vicinity`` (``"<name>, <country
    code>"``).
    """
    half_m = min(
        max(_VIEWPORT_M_PER_SQRT_POP * math.sqrt(place.population), _VIEWPORT_MIN_HALF_M),
        _VIEWPORT_MAX_HALF_M,
    )
    dlat = math.degrees(half_m / EARTH_RADIUS_M)
    cos_lat = math.cos(math.radians(place.lat))
    if dlat >= 180.0 * cos_lat:  # so near a pole that the box spans all longitudes
        east, west = 180.0, -180.0
    else:
        dlng = dlat / cos_lat
        east, west = _wrap_lng(place.lng + dlng), _wrap_lng(place.lng - dlng)
    place_id = f"geonames:{place.geonameid}"
    return {
        "geometry": {
            "location": {"lat": place.lat, "lng": place.lng},
            "viewport": {
                "northeast": {"lat": min(place.lat + dlat, 90.0), "lng": east},
                "southwest": {"lat": max(place.lat - dlat, -90.0), "lng": west},
            },
        },
        "icon": ICON,
        "name": place.name,
        "place_id": place_id,
        "reference": place_id,
        "scope": "GOOGLE",
        "types": ["locality", "political"],
        "vicinity": f"{place.name}, {place.country_code}" if place.country_code else place.name,
    }


def _wrap_lng(lng: float) -> float:
    if lng > 180.0:
        return lng - 360.0
    if lng < -180.0:
        return lng + 360.0
    return lng
