"""``python -m trioherd.client``: talk to a herd server without netcat.

Examples::

    python -m trioherd.client 127.0.0.1:8000 IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 now
    python -m trioherd.client Hill WHATSAT kiwi.cs.ucla.edu 10 5
    printf 'IAMAT a +1+1 now\\nWHATSAT a 5 1\\n' | python -m trioherd.client Hill

The message is the words after the address, joined by spaces; with none,
messages are read from standard input, one per line. A time field of
``now`` in an IAMAT becomes the current time to the nanosecond. The client
sends everything, half-closes the connection, and prints what the server
sends until it closes its side.

With ``--tls-ca FILE`` it speaks TLS, and accepts only a server certificate
that chains to a CA in FILE and names the host it connects to. TLS has no
half-close, so the client reads until every message has its reply (one
line each; a WHATSAT's, when it starts with ``AT``, up to its blank line),
then closes.

Exit status, for scripts: 0 when every message was answered and none with
``? ...``; 1 when the server cannot be reached, answers nothing, or does
not finish answering in time; 2 for a bad command line; 3 when the server rejected a message
(a reply line starts with ``?``), its replies printed all the same.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from trioherd.core.config import CS131_HERD, ConfigError, HerdConfig, load_herd
from trioherd.core.tls import TlsError, client_context
from trioherd.options import OneLineParser

#: The program's name as the console script; ``python -m`` passes its own.
PROG = "trioherd-client"

#: Exit statuses (see the module's docstring).
EXIT_UNREACHABLE = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3


def now_field() -> str:
    """The current POSIX time with nine decimals."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return f"{seconds}.{nanos:09d}"


def fill_in_now(message: str) -> str:
    """Replace an IAMAT's time field ``now`` by the current time."""
    fields = message.split()
    if len(fields) == 4 and fields[0] == "IAMAT" and fields[3] == "now":
        return " ".join([*fields[:3], now_field()])
    return message


def resolve(target: str, herd: HerdConfig) -> tuple[str, int]:
    """``HOST:PORT`` or a server name of ``herd`` as an address.

    Raises:
        ValueError: neither form fits; the message says why.
    """
    host, sep, port = target.rpartition(":")
    if sep:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad port in {target!r}")
        return host.strip("[]") or "127.0.0.1", int(port)
    try:
        server = herd[target]
    except ConfigError as exc:
        raise ValueError(f"{target!r} is neither HOST:PORT nor a server name: {exc}") from None
    return server.host, server.port


async def exchange(address: tuple[str, int], payload: bytes) -> bytes:
    """Send ``payload``, half-close, and return everything the server sends back.

    Raises:
        OSError: the connection failed.
    """
    stream = await trio.open_tcp_stream(*address)
    chunks: list[bytes] = []

    async def send() -> None:
        await stream.send_all(payload)
        await stream.send_eof()

    async with stream, trio.open_nursery() as nursery:
        # Read while sending: a server answers as it reads and stops
        # reading a client that leaves its replies unread (backpressure),
        # so a long payload sent before reading would never finish.
        nursery.start_soon(send)
        while chunk := await stream.receive_some(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def replies_complete(messages: Sequence[bytes], data: bytes) -> bool:
    """Whether ``data`` holds a whole reply to each of ``messages`` (lines without endings)."""
    start = 0
    for message in messages:
        end = data.find(b"\n", start)
        if end < 0:
            return False
        if data.startswith(b"AT ", start) and message.split(b" ", 1)[0] == b"WHATSAT":
            # The AT line, the JSON, and a blank line.
            end = data.find(b"\n\n", end)
            if end < 0:
                return False
            end += 1
        start = end + 1
    return True


async def exchange_tls(address: tuple[str, int], payload: bytes, context: ssl.SSLContext) -> bytes:
    """:func:`exchange` over TLS: read until every line of ``payload`` is answered.

    Raises:
        OSError: the connection or the TLS handshake failed.
    """
    host, port = address
    messages = payload.splitlines()
    tcp = await trio.open_tcp_stream(host, port)
    stream = trio.SSLStream(tcp, context, server_hostname=host, https_compatible=True)
    data = b""
    try:
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(stream.send_all, payload)
            while not replies_complete(messages, data):
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                data += chunk
            nursery.cancel_scope.cancel()
    except* trio.BrokenResourceError as group:
        # The handshake failed (a certificate not trusted), or the connection broke.
        cause = group.exceptions[0]
        raise ConnectionError(f"TLS failed: {cause.__cause__ or cause}") from cause
    return data


def rejected(reply: bytes) -> bool:
    """Whether the server answered any message with ``? ...``.

    Only a reply line can start with ``?``: a WHATSAT's JSON lines start
    with a brace, a space or a quote.
    """
    return reply.startswith(b"?") or b"\n?" in reply


def build_parser(prog: str = PROG) -> OneLineParser:
    """The command line."""
    parser = OneLineParser(
        prog=prog,
        description="Send messages to a herd server and print its replies.",
        epilog="Example: %(prog)s 127.0.0.1:8000 IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 now. "
        f"Exit status: 0 all answered; {EXIT_UNREACHABLE} cannot connect or no complete reply "
        f"in time; {EXIT_USAGE} bad command line; {EXIT_REJECTED} a reply was '? ...'.",
    )
    parser.add_argument("target", metavar="HOST:PORT|NAME", help="a server address or name")
    parser.add_argument(
        "message",
        nargs=argparse.REMAINDER,
        help="the message's words; none: read messages from standard input",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="herd TOML file for server names (default: the CS 131 herd)",
    )
    parser.add_argument(
        "--tls-ca",
        type=Path,
        metavar="FILE",
        help="speak TLS, accepting a server certificate that chains to a CA in FILE",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up after this long (default: 10)",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        herd = CS131_HERD if args.config is None else load_herd(args.config)
        address = resolve(args.target, herd)
        context = None if args.tls_ca is None else client_context(args.tls_ca)
    except (ConfigError, ValueError, TlsError) as exc:
        parser.error(str(exc))
    messages = [" ".join(args.message)] if args.message else sys.stdin.read().splitlines()
    payload = "".join(fill_in_now(m) + "\n" for m in messages).encode()

    async def exchange_in_time() -> bytes:
        with trio.fail_after(args.timeout):
            if context is not None:
                return await exchange_tls(address, payload, context)
            return await exchange(address, payload)

    try:
        reply = trio.run(exchange_in_time)
    except trio.TooSlowError:
        print(f"{prog}: error: no complete reply within {args.timeout:g} s", file=sys.stderr)
        return EXIT_UNREACHABLE
    except OSError as exc:
        host, port = address
        print(
            f"{prog}: error: cannot talk to {host}:{port}: {exc.strerror or exc}", file=sys.stderr
        )
        return EXIT_UNREACHABLE
    if messages and not reply:
        print(f"{prog}: error: the server closed the connection without answering", file=sys.stderr)
        return EXIT_UNREACHABLE
    sys.stdout.buffer.write(reply)
    sys.stdout.flush()
    return EXIT_REJECTED if rejected(reply) else 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m trioherd.client"))
