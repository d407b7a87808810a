"""The benchmark's port helper: ports no outgoing connection can take meanwhile."""

from __future__ import annotations

import socket

from bench.procs import LOWEST_PORT, ephemeral_range, free_ports


def test_ports_are_distinct_free_and_outside_the_ephemeral_range() -> None:
    low, high = ephemeral_range()
    ports = free_ports(20)
    assert len(set(ports)) == 20
    for port in ports:
        assert port >= LOWEST_PORT
        assert not low <= port <= high
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # still free: raises if not
