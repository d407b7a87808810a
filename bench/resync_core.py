"""``python -m bench.resync_core``: the shared core's CPU per record, in process, no sockets.

What the receiving end of a resync and a restart cost without an event
loop or a socket in the way, to compare builds of the core on a shared
machine (CPU seconds from ``time.process_time``, so other processes'
load skews them less than wall time):

* ``resync``: ``--clients`` AT lines, as Hill writes them, fed to a peer
  :class:`~trioherd.core.connection.Connection` of a fresh server with a
  journal (in a temporary directory), 64 KiB per read;
* ``load``: that journal loaded into a fresh server (``open_journal``);
* ``iamat``: ``--iamats`` IAMATs, one per read, from 100 client
  connections of a server with two neighbours (Hill's hot path in the
  IAMAT workload), and as many flood hops (an AT line and a MARK per read)
  at a neighbour; CPU per line.

It imports whatever ``trioherd`` is on the path, so the same command run
from two checkouts compares them; ``--rounds`` repeats it all.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from trioherd import durable
from trioherd.core.connection import Connection
from trioherd.core.state import ServerState

PROG = "python -m bench.resync_core"
READ = 65536
NOW = 1_700_000_100 * 10**9


def resync_and_load(clients: int) -> dict[str, float]:
    """CPU microseconds per record: a fresh resync's receiver, then its journal's load."""
    data = b"".join(
        b"AT Hill +0.100000000 c%d +34.068930-118.445127 1700000000.000000000\n" % c
        for c in range(clients)
    )
    log = logging.getLogger("bench.resync_core")
    with tempfile.TemporaryDirectory(prefix="trioherd-resync-core-") as tmp:
        state = ServerState("Jaquez", ["Hill"])
        journal = durable.open_journal(Path(tmp), state, log)
        journal.start()
        connection = Connection(state)
        connection.receive(b"PEER Hill 1\n", NOW)
        while connection.next_exchange() is not None:
            pass
        started = time.process_time()
        for start in range(0, len(data), READ):
            connection.receive(data[start : start + READ], NOW)
            while (exchange := connection.next_exchange()) is not None:
                exchange.output()
        resync = time.process_time() - started
        assert len(state.table) == clients
        journal.close()
        again = ServerState("Jaquez", ["Hill"])
        started = time.process_time()
        durable.open_journal(Path(tmp), again, log).close()
        load = time.process_time() - started
        assert len(again.table) == clients
    return {"resync_us": resync / clients * 1e6, "load_s": load, "load_us": load / clients * 1e6}


def iamat(lines: int) -> dict[str, float]:
    """CPU microseconds per line: IAMATs at Hill, and flood hops at a neighbour."""
    hill = ServerState("Hill", ["Jaquez", "Smith"])
    clients = [Connection(hill) for _ in range(100)]
    iamats = [
        b"IAMAT c%d +34.068930-118.445127 %d.123456789\n" % (i % 1000, 1_700_000_000 + i)
        for i in range(lines)
    ]
    started = time.process_time()
    for i, line in enumerate(iamats):
        client = clients[i % 100]
        client.receive(line, NOW)
        while (exchange := client.next_exchange()) is not None:
            exchange.output()
        if i % 16 == 0:
            hill.take("Jaquez")
            hill.take("Smith")
    at_hill = time.process_time() - started
    smith = ServerState("Smith", ["Hill", "Campbell"])
    link = Connection(smith)
    link.receive(b"PEER Hill 1\n", NOW)
    link.next_exchange()
    floods = [
        b"AT Hill +0.100000000 c%d +34.068930-118.445127 %d.123456789\nMARK 0123abcd %d\n"
        % (i % 1000, 1_700_000_000 + i, i)
        for i in range(lines)
    ]
    started = time.process_time()
    for flood in floods:
        link.receive(flood, NOW)
        while (exchange := link.next_exchange()) is not None:
            exchange.output()
        smith.take("Campbell")
    hop = time.process_time() - started
    return {"iamat_us": at_hill / lines * 1e6, "flood_hop_us": hop / lines * 1e6}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1_000_000, help="records resynced")
    parser.add_argument("--iamats", type=int, default=100_000, help="IAMATs and flood hops")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--label", default="", help="a name for this build in the output")
    args = parser.parse_args(argv)
    for round_ in range(args.rounds):
        result: dict[str, object] = {"label": args.label, "round": round_ + 1}
        if args.clients:
            result.update(resync_and_load(args.clients))
        if args.iamats:
            result.update(iamat(args.iamats))
        with open("/proc/loadavg") as loadavg:
            result["load_average"] = loadavg.read().split()[:3]
        rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
        print(json.dumps(rounded))
    return 0


if __name__ == "__main__":
    sys.exit(main())
