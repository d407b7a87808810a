"""Parsing and formatting messages: every rule of docs/protocol.md, exact to the nanosecond."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioherd.core import messages
from trioherd.core.messages import (
    At,
    IAmAt,
    format_at,
    format_hello,
    format_skew,
    invalid,
    parse_at,
    parse_hello,
    parse_iamat,
    parse_location,
    parse_time_ns,
    parse_whatsat,
)

KIWI = b"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"


def test_the_example_of_protocol_md() -> None:
    iamat = parse_iamat(KIWI.split())
    assert iamat == IAmAt(
        b"kiwi.cs.ucla.edu",
        b"+34.068930-118.445127",
        b"1621464827.959498503",
        1621464827_959498503,
    )
    at = format_at(b"Hill", 1621464828_223371889, iamat)
    assert at.line == (
        b"AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
    )
    assert parse_at(at.line) == at


@pytest.mark.parametrize(
    ("field", "ns"),
    [
        (b"1621464827", 1621464827_000000000),
        (b"1621464827.5", 1621464827_500000000),
        (b"1621464827.000000001", 1621464827_000000001),
        (b"0", 0),
        (b"0.999999999", 999999999),
    ],
)
def test_times_are_exact_nanoseconds(field: bytes, ns: int) -> None:
    assert parse_time_ns(field) == ns


@pytest.mark.parametrize(
    "field",
    [
        b"",
        b"1.",
        b".5",
        b"+1",
        b"-1",
        b"1.1234567890",
        b"1e9",
        b"nan",
        b"1,5",
        b"\xff",
        b"1" * 21,
        b"1 2",
    ],
)
def test_bad_times(field: bytes) -> None:
    assert parse_time_ns(field) is None


@pytest.mark.parametrize(
    ("server_ns", "client_ns", "skew"),
    [
        (10_500_000_000, 10_000_000_000, b"+0.500000000"),
        (10_000_000_000, 10_000_000_000, b"+0.000000000"),
        (10_000_000_000, 10_000_000_001, b"-0.000000001"),
        (10_000_000_000, 12_250_000_000, b"-2.250000000"),
        (10**30, 0, b"+1000000000000000000000.000000000"),
    ],
)
def test_skew_is_signed_with_nine_decimals(server_ns: int, client_ns: int, skew: bytes) -> None:
    assert format_skew(server_ns, client_ns) == skew


@pytest.mark.parametrize(
    ("field", "lat", "lng"),
    [
        (b"+34.068930-118.445127", 34.068930, -118.445127),
        (b"-90+180", -90.0, 180.0),
        (b"+90.0-180.000", 90.0, -180.0),
        (b"+0+0", 0.0, 0.0),
        (b"-0.5+0.25", -0.5, 0.25),
    ],
)
def test_locations(field: bytes, lat: float, lng: float) -> None:
    location = parse_location(field)
    assert location is not None
    assert (location.latitude, location.longitude) == (lat, lng)


@pytest.mark.parametrize(
    "field",
    [
        b"34.068930-118.445127",
        b"+34.068930",
        b"+90.1+0",
        b"-0+180.0001",
        b"+34.-118",
        b"+34.0 -118.0",
        b"+1000+0",
        b"++1+1",
        b"+1+1+1",
        b"+a+1",
        b"",
    ],
)
def test_bad_locations(field: bytes) -> None:
    assert parse_location(field) is None


@pytest.mark.parametrize(
    "line",
    [
        b"IAMAT kiwi +34-118",  # three fields
        b"IAMAT kiwi +34-118 1 extra",  # five
        b"iamat kiwi +34-118 1",  # the command is case-sensitive
        b"IAMAT kiwi 34-118 1",
        b"IAMAT kiwi +34-118 -1",
    ],
)
def test_bad_iamat(line: bytes) -> None:
    assert parse_iamat(line.split()) is None


def test_iamat_fields_are_split_on_ascii_whitespace_only() -> None:
    assert parse_iamat(b" IAMAT\tkiwi\x0b+1+1\x0c5 \r".split()) is not None
    # A non-breaking space (0xA0) is part of a field, not a separator.
    assert parse_iamat(b"IAMAT kiwi\xa0x +1+1 5".split()) == IAmAt(
        b"kiwi\xa0x", b"+1+1", b"5", 5 * 10**9
    )


@pytest.mark.parametrize(
    ("line", "radius", "bound"),
    [
        (b"WHATSAT kiwi 10 5", 10.0, 5),
        (b"WHATSAT kiwi 50 20", 50.0, 20),
        (b"WHATSAT kiwi 0.5 1", 0.5, 1),
        (b"WHATSAT kiwi .5 01", 0.5, 1),
    ],
)
def test_whatsat(line: bytes, radius: float, bound: int) -> None:
    whatsat = parse_whatsat(line.split())
    assert whatsat is not None
    assert (whatsat.client_id, whatsat.radius_km, whatsat.bound) == (b"kiwi", radius, bound)


@pytest.mark.parametrize(
    "line",
    [
        b"WHATSAT kiwi 51 5",
        b"WHATSAT kiwi 0 5",
        b"WHATSAT kiwi -1 5",
        b"WHATSAT kiwi 10 0",
        b"WHATSAT kiwi 10 21",
        b"WHATSAT kiwi 10 2.5",
        b"WHATSAT kiwi nan 5",
        b"WHATSAT kiwi inf 5",
        b"WHATSAT kiwi 1e1 5",
        b"WHATSAT kiwi 10",
        b"WHATSAT kiwi 10 5 5",
        b"WHATSAT kiwi 50.0000001 5",
        b"WHATSAT kiwi +5 5",
    ],
)
def test_bad_whatsat(line: bytes) -> None:
    assert parse_whatsat(line.split()) is None


@pytest.mark.parametrize(
    "line",
    [
        b"AT Hill +0.1 kiwi +1+1 5",  # skew without nine decimals
        b"AT Hill 0.100000000 kiwi +1+1 5",  # unsigned skew
        b"AT Hill +0.100000000 kiwi +1+1",
        b"AT Hill +0.100000000 kiwi 1+1 5",
        b"IAMAT Hill +0.100000000 kiwi +1+1 5",
    ],
)
def test_bad_at(line: bytes) -> None:
    assert parse_at(line) is None


def test_hello_round_trip_and_options() -> None:
    line = format_hello(b"Hill", {b"auth": b"s3cret"})
    assert line == b"PEER Hill 1 auth=s3cret\n"
    hello = parse_hello(line.split())
    assert hello is not None
    # Options no version defines are accepted and ignored.
    assert (hello.name, hello.version, hello.options) == (b"Hill", 1, {b"auth": b"s3cret"})
    assert parse_hello(b"PEER Hill".split()) is None
    assert parse_hello(b"PEER Hill one".split()) is None
    assert parse_hello(b"PEER Hill 1 novalue".split()) is None


def test_invalid_echoes_the_line() -> None:
    assert invalid(b"HELLO  there ") == b"? HELLO  there \n"


client_ids = st.binary(min_size=1, max_size=30).map(lambda b: b"".join(b.split()) or b"x")
times = st.tuples(st.integers(0, 10**12), st.integers(0, 10**9 - 1), st.integers(0, 9))


@st.composite
def iamats(draw: st.DrawFn) -> IAmAt:
    seconds, nanos, digits = draw(times)
    fraction = f"{nanos:09d}"[:digits]
    time_field = f"{seconds}.{fraction}" if digits else f"{seconds}"
    lat = draw(st.integers(-90_000000, 90_000000))
    lng = draw(st.integers(-180_000000, 180_000000))
    location = f"{lat / 1e6:+.6f}{lng / 1e6:+.6f}".encode()
    iamat = parse_iamat([b"IAMAT", draw(client_ids), location, time_field.encode()])
    assert iamat is not None
    return iamat


@given(iamats(), st.integers(0, 2 * 10**21))
def test_format_then_parse_gives_back_the_same(iamat: IAmAt, received_ns: int) -> None:
    at = format_at(b"Campbell", received_ns, iamat)
    assert parse_at(at.line) == at
    assert parse_at(b"  " + at.line + b"\r") == at
    skew = at.skew
    sign = -1 if skew.startswith(b"-") else 1
    whole, fraction = skew[1:].split(b".")
    assert sign * (int(whole) * 10**9 + int(fraction)) == received_ns - iamat.client_time_ns


@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_raise(line: bytes) -> None:
    fields = line.split()
    parse_iamat(fields)
    parse_whatsat(fields)
    parse_hello(fields)
    at = parse_at(line)
    if at is not None:
        assert isinstance(at, At)
    for field in fields:
        parse_time_ns(field)
        parse_location(field)


@given(
    st.lists(
        st.sampled_from(
            [
                b"IAMAT",
                b"WHATSAT",
                b"AT",
                b"PEER",
                b"+1+1",
                b"5",
                b"1.5",
                b"x",
                b"\xff",
                b"-0.000000001",
            ]
        ),
        max_size=8,
    )
)
def test_near_miss_messages_never_raise(fields: list[bytes]) -> None:
    parse_iamat(fields)
    parse_whatsat(fields)
    parse_hello(fields)
    parse_at(b" ".join(fields))


@given(
    st.sampled_from([b"Hill", b"Smith", b"x\x00y"]),
    st.from_regex(rb"\A[+-]\d{1,22}\.\d{8,10}\Z"),
    st.sampled_from([b"kiwi", b"\xff\xfe"]),
    st.from_regex(rb"\A[+-]\d{1,4}(\.\d{0,3})?[+-]\d{1,4}(\.\d{0,3})?\Z"),
    st.from_regex(rb"\A\d{1,21}(\.\d{0,10})?\Z"),
)
def test_parse_at_fast_path_agrees_with_the_general_one(
    server: bytes, skew: bytes, client: bytes, location: bytes, client_time: bytes
) -> None:
    line = b"AT %s %s %s %s %s" % (server, skew, client, location, client_time)
    fast = parse_at(line)
    written = messages._AT_WRITTEN
    try:
        messages._AT_WRITTEN = re.compile(rb"(?!)")
        general = parse_at(line)
    finally:
        messages._AT_WRITTEN = written
    assert fast == general
