"""The herd's messages: parsing and formatting, exact to the nanosecond.

Everything here works on ``bytes``: a client ID is any run of
non-white-space bytes, and replies copy the client's fields byte for byte.
Times are held as integer nanoseconds, never floats, because a double cannot
hold a POSIX time to the nanosecond (``1621464827.959498503`` is not a
double). Every parser returns ``None`` for bad input and never raises, so
arbitrary bytes from the network cannot crash a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NamedTuple

NS_PER_SECOND: Final = 1_000_000_000

#: Largest WHATSAT radius, in km, and largest bound on results.
MAX_RADIUS_KM: Final = 50
MAX_BOUND: Final = 20

# POSIX seconds with up to nine fractional digits. The integer part is capped
# at 20 digits: far beyond any real clock, and it keeps int() cheap (Python
# refuses int() of strings over 4300 digits, which would raise).
_TIME = re.compile(rb"(\d{1,20})(?:\.(\d{1,9}))?")
# ISO 6709 decimal degrees, latitude then longitude, each signed.
_LOCATION = re.compile(rb"([+-])(\d{1,3}(?:\.\d{1,30})?)([+-])(\d{1,3}(?:\.\d{1,30})?)")
# The time difference field of an AT line, as servers write it.
_SKEW = re.compile(rb"[+-]\d{1,21}\.\d{9}")
# A positive decimal number, for the WHATSAT radius: no sign, exponent,
# "inf" or "nan", which float() would accept.
_DECIMAL = re.compile(rb"\d{1,10}(?:\.\d{0,20})?|\.\d{1,20}")
_BOUND = re.compile(rb"\d{1,10}")


@dataclass(frozen=True, slots=True)
class Location:
    """A point in decimal degrees."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class IAmAt:
    """A client's IAMAT: where it is and when it says it was there."""

    client_id: bytes
    location: bytes
    client_time: bytes
    client_time_ns: int


@dataclass(frozen=True, slots=True)
class WhatsAt:
    """A client's WHATSAT: what is within ``radius_km`` of a client."""

    client_id: bytes
    radius_km: float
    bound: int


class At(NamedTuple):
    """An AT line: a location update as the server that took the IAMAT wrote it.

    ``line`` is the whole line without its ending: it travels between servers
    and back to WHATSAT clients unchanged. A named tuple, not a frozen
    dataclass, because a resync parses one per record, a million for a
    large table, and a tuple is made several times faster.
    """

    server: bytes
    skew: bytes
    client_id: bytes
    location: bytes
    client_time: bytes
    client_time_ns: int
    line: bytes


def parse_time_ns(field: bytes) -> int | None:
    """POSIX seconds with up to nine decimals, as integer nanoseconds."""
    match = _TIME.fullmatch(field)
    if match is None:
        return None
    seconds, fraction = match.groups()
    nanos = int(fraction.ljust(9, b"0")) if fraction else 0
    return int(seconds) * NS_PER_SECOND + nanos


def parse_location(field: bytes) -> Location | None:
    """``+34.068930-118.445127`` as a :class:`Location`, if in range."""
    match = _LOCATION.fullmatch(field)
    if match is None:
        return None
    lat_sign, lat, lng_sign, lng = match.groups()
    latitude = float(lat) * (-1 if lat_sign == b"-" else 1)
    longitude = float(lng) * (-1 if lng_sign == b"-" else 1)
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return Location(latitude, longitude)


def format_skew(server_ns: int, client_ns: int) -> bytes:
    """The AT line's time difference: always signed, always nine decimals."""
    diff = server_ns - client_ns
    sign = b"+" if diff >= 0 else b"-"
    seconds, nanos = divmod(abs(diff), NS_PER_SECOND)
    return b"%s%d.%09d" % (sign, seconds, nanos)


def parse_iamat(fields: list[bytes]) -> IAmAt | None:
    """Fields of an ``IAMAT client location time`` message, or ``None``."""
    if len(fields) != 4 or fields[0] != b"IAMAT":
        return None
    _, client_id, location, client_time = fields
    client_time_ns = parse_time_ns(client_time)
    if client_time_ns is None or parse_location(location) is None:
        return None
    return IAmAt(client_id, location, client_time, client_time_ns)


def parse_whatsat(fields: list[bytes]) -> WhatsAt | None:
    """Fields of a ``WHATSAT client radius_km bound`` message, or ``None``."""
    if len(fields) != 4 or fields[0] != b"WHATSAT":
        return None
    _, client_id, radius, bound = fields
    if _DECIMAL.fullmatch(radius) is None or _BOUND.fullmatch(bound) is None:
        return None
    radius_km = float(radius)
    bound_n = int(bound)
    if not (0 < radius_km <= MAX_RADIUS_KM and 1 <= bound_n <= MAX_BOUND):
        return None
    return WhatsAt(client_id, radius_km, bound_n)


# An AT line as servers write it (single spaces, no padding), in one match:
# the common case of a resync of a million lines. Its pieces are the
# patterns above; anything it does not match takes the general path.
_AT_WRITTEN = re.compile(
    rb"AT (\S+) ([+-]\d{1,21}\.\d{9}) (\S+) "
    rb"(([+-])(\d{1,3}(?:\.\d{1,30})?)([+-])(\d{1,3}(?:\.\d{1,30})?)) "
    rb"((\d{1,20})(?:\.(\d{1,9}))?)"
)


def parse_at(line: bytes) -> At | None:
    """An AT line from a peer (six fields), or ``None``."""
    # The fast path, taken by every line a server writes: one regex and as
    # few Python steps as can be, since a resync parses a million of them.
    match = _AT_WRITTEN.fullmatch(line)
    if match is not None:
        server, skew, client_id, location, _, lat, _, lng, client_time, seconds, fraction = (
            match.groups()
        )
        # The signs are outside the groups: the range is the magnitude's.
        if float(lat) > 90 or float(lng) > 180:
            return None
        time_ns = int(seconds) * NS_PER_SECOND
        if fraction:
            time_ns += int(fraction.ljust(9, b"0"))
        return At(server, skew, client_id, location, client_time, time_ns, line)
    stripped = line.strip()
    fields = stripped.split()
    if len(fields) != 6 or fields[0] != b"AT":
        return None
    _, server, skew, client_id, location, client_time = fields
    client_time_ns = parse_time_ns(client_time)
    if client_time_ns is None or _SKEW.fullmatch(skew) is None or parse_location(location) is None:
        return None
    return At(server, skew, client_id, location, client_time, client_time_ns, stripped)


# The same lines, many at once: a run of lines joined with b"\n", each of
# which must be an AT line in the form servers write, with latitude and
# longitude in range written into the pattern (magnitudes up to 90 and 180
# with any decimals, or exactly 90 or 180 with zeros), so no float is made.
# It is stricter than parse_at: a line it refuses may still be valid, and
# takes parse_at's path, which decides.
_LATITUDE = rb"0?(?:[0-8]?\d(?:\.\d{1,30})?|90(?:\.0{1,30})?)"
_LONGITUDE = rb"(?:(?:0?\d?\d|1[0-7]\d)(?:\.\d{1,30})?|180(?:\.0{1,30})?)"
_AT_RUN = re.compile(
    rb"(?m)^AT \S+ ([+-]\d{1,21}\.\d{9}) (\S+) [+-]"
    + _LATITUDE
    + rb"[+-]"
    + _LONGITUDE
    + rb" (\d{1,20})(?:\.(\d{1,9}))?$"
)

Record = tuple[bytes, int, bytes, bytes]
"""An AT line as a table stores it: ``(client ID, client time in ns, line, skew)``."""


def parse_at_run(lines: list[bytes]) -> list[Record] | None:
    """Many AT lines from a peer at once, if every one is in the form servers write.

    A resync brings a million such lines; this looks at a read's worth in
    one regex call and makes no object per line but the record. It returns
    ``None`` if any line is not an AT line as servers write it (a ``MARK``,
    a bad line, or a valid line written another way): the caller then takes
    :func:`parse_at` line by line. Where it returns records, they are what
    :func:`parse_at` makes of the same lines (tests/core/test_batch.py).
    """
    found = _AT_RUN.findall(b"\n".join(lines))
    # Each match is one whole line (no part of the pattern matches b"\n"),
    # so as many matches as lines means every line matched.
    if len(found) != len(lines):
        return None
    return [
        (
            client_id,
            int(seconds) * NS_PER_SECOND + (int(fraction.ljust(9, b"0")) if fraction else 0),
            line,
            skew,
        )
        for (skew, client_id, seconds, fraction), line in zip(found, lines, strict=True)
    ]


def format_at(server: bytes, received_ns: int, iamat: IAmAt) -> At:
    """The AT record for an IAMAT that ``server`` received at ``received_ns``."""
    skew = format_skew(received_ns, iamat.client_time_ns)
    line = b"AT %s %s %s %s %s" % (
        server,
        skew,
        iamat.client_id,
        iamat.location,
        iamat.client_time,
    )
    return At(
        server,
        skew,
        iamat.client_id,
        iamat.location,
        iamat.client_time,
        iamat.client_time_ns,
        line,
    )


#: The version of the peer protocol this code speaks (docs/peer-protocol.md).
PEER_PROTOCOL_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Hello:
    """The first line of a peer link: ``PEER name version [key=value ...]``.

    Options are there so the handshake can grow without a new version: a
    server ignores options it does not know. Authentication uses ``nonce``
    and ``proof`` (docs/peer-protocol.md).
    """

    name: bytes
    version: int
    options: dict[bytes, bytes]


def parse_hello(fields: list[bytes]) -> Hello | None:
    """Fields of a ``PEER`` handshake line, or ``None``."""
    if len(fields) < 3 or fields[0] != b"PEER" or _BOUND.fullmatch(fields[2]) is None:
        return None
    options: dict[bytes, bytes] = {}
    for option in fields[3:]:
        key, sep, value = option.partition(b"=")
        if not sep or not key:
            return None
        options[key] = value
    return Hello(fields[1], int(fields[2]), options)


def format_hello(name: bytes, options: dict[bytes, bytes] | None = None) -> bytes:
    """The handshake line (with its ``\\n``) a server sends on its outbound links."""
    parts = [b"PEER", name, b"%d" % PEER_PROTOCOL_VERSION]
    parts += [b"%s=%s" % item for item in (options or {}).items()]
    return b" ".join(parts) + b"\n"


def invalid(line: bytes) -> bytes:
    """The reply to anything that is not a valid command: ``? `` and the line."""
    return b"? " + line + b"\n"
