"""Line framing: endings, splits across reads, EOF, the length limit."""

from hypothesis import given
from hypothesis import strategies as st

from trioherd.core.framing import LineBuffer, LineTooLong


def feed_all(buffer: LineBuffer, chunks: list[bytes]) -> tuple[list[bytes], LineTooLong | None]:
    lines: list[bytes] = []
    for chunk in chunks:
        got, too_long = buffer.feed(chunk)
        lines += got
        if too_long:
            return lines, too_long
    last = buffer.close()
    return lines + ([last] if last is not None else []), None


def test_lines_come_out_without_endings_and_crlf_is_dropped() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"IAMAT a +1+1 1\nWHATSAT a 1 1\r\npartial") == (
        [b"IAMAT a +1+1 1", b"WHATSAT a 1 1"],
        None,
    )
    assert buffer.feed(b" line\n") == ([b"partial line"], None)
    assert buffer.close() is None


def test_only_one_cr_before_lf_is_an_ending() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"a\r\r\n\rb\n") == ([b"a\r", b"\rb"], None)


def test_cr_and_lf_split_across_reads() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"abc\r") == ([], None)
    assert buffer.feed(b"\n") == ([b"abc"], None)


def test_last_line_without_newline_is_a_message_at_eof() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"one\ntwo") == ([b"one"], None)
    assert buffer.close() == b"two"
    assert LineBuffer().close() is None


def test_empty_lines_are_lines() -> None:
    assert LineBuffer().feed(b"\n\r\n") == ([b"", b""], None)


def test_a_line_at_the_limit_is_accepted_one_over_is_not() -> None:
    buffer = LineBuffer(max_line=8)
    assert buffer.feed(b"12345678\r\n") == ([b"12345678"], None)
    lines, too_long = buffer.feed(b"123456789\n")
    assert lines == []
    assert too_long == LineTooLong(b"12345678")


def test_an_endless_line_is_cut_off_without_waiting_for_its_end() -> None:
    buffer = LineBuffer(max_line=16)
    assert buffer.feed(b"ok\n" + b"x" * 10) == ([b"ok"], None)
    assert buffer.feed(b"x" * 6) == ([], None)  # exactly 16 pending
    assert buffer.feed(b"\r") == ([], None)  # 16 + a CR that may end the line
    _lines, too_long = buffer.feed(b"x")
    assert too_long == LineTooLong(b"x" * 16)
    # After that the stream is dead: nothing more comes out.
    assert buffer.feed(b"\nmore\n") == ([], None)
    assert buffer.close() is None


def test_lines_before_an_overlong_one_in_the_same_read_are_kept() -> None:
    buffer = LineBuffer(max_line=4)
    lines, too_long = buffer.feed(b"a\nb\n" + b"y" * 9 + b"\n")
    assert lines == [b"a", b"b"]
    assert too_long == LineTooLong(b"yyyy")


def test_one_byte_reads_are_linear() -> None:
    buffer = LineBuffer()
    line = b"z" * 60_000
    out: list[bytes] = []
    for byte in line + b"\n":
        got, _ = buffer.feed(bytes([byte]))
        out += got
    assert out == [line]


@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=20), st.data())
def test_any_split_into_reads_gives_the_same_lines(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    got, too_long = feed_all(LineBuffer(), chunks)
    expected = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    assert too_long is None
    assert got == expected


@given(st.lists(st.binary(max_size=200), max_size=20), st.integers(1, 64))
def test_arbitrary_bytes_never_raise_and_never_exceed_the_limit(
    chunks: list[bytes], limit: int
) -> None:
    buffer = LineBuffer(max_line=limit)
    lines, too_long = feed_all(buffer, chunks)
    assert all(len(line) <= limit for line in lines)
    if too_long is not None:
        assert len(too_long.prefix) == limit


def test_receive_is_feed_for_bytes_and_close_at_eof() -> None:
    buffer = LineBuffer()
    assert buffer.receive(b"IAMAT a\nWHATSAT") == ([b"IAMAT a"], None)
    assert buffer.receive(b"") == ([b"WHATSAT"], None)
    assert LineBuffer().receive(b"") == ([], None)
    assert LineBuffer().receive(b"done\r\n") == ([b"done"], None)
    lines, too_long = LineBuffer(max_line=3).receive(b"toolong\n")
    assert lines == []
    assert too_long is not None
    assert too_long.prefix == b"too"
