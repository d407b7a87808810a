"""Outbound links have the OS drop them when their bytes stay unacknowledged.

Without ``TCP_USER_TIMEOUT``, a link across a partition between hosts keeps
its connection while TCP's retransmissions back off, and carries updates
again only at the next retransmission after the heal (11 s after a 15 s
cut, measured; bench/results/faults/README.md).
"""

from __future__ import annotations

import socket

import pytest
import trio

from trioherd.core.link import UNACKNOWLEDGED_LIMIT
from trioherd.serving import limit_unacknowledged
from trioherd.stream import LEAN_STREAMS, LeanStream

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "TCP_USER_TIMEOUT"), reason="this OS has no TCP_USER_TIMEOUT"
)


def _limit_ms(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)


def test_the_limit_is_set_on_a_socket_and_is_a_few_seconds() -> None:
    with socket.socket() as sock:
        assert _limit_ms(sock) == 0  # the OS's default: none
        limit_unacknowledged(sock)
        assert _limit_ms(sock) == int(UNACKNOWLEDGED_LIMIT * 1000)
    assert 1.0 <= UNACKNOWLEDGED_LIMIT <= 5.0


async def test_a_trio_link_connects_with_the_limit() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    stream = await LEAN_STREAMS.connect("127.0.0.1", port)
    try:
        assert isinstance(stream, LeanStream)
        assert _limit_ms(stream._sock) == int(UNACKNOWLEDGED_LIMIT * 1000)
    finally:
        await stream.aclose()
        for listener in listeners:
            await listener.aclose()
