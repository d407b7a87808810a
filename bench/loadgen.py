"""The load generator: cheap herd clients on uvloop, in processes of their own.

The benchmark's figures are only worth something if the load generator is
not what limits them, and it shares two cores with five server processes.
So it is written to cost as little as possible per request:

* uvloop, and raw :class:`asyncio.Protocol` callbacks rather than streams or
  tasks per request: a reply is handled in one ``data_received`` call that
  records its latency and writes the next request, with no coroutine, future
  or buffer object in between;
* messages are formatted with one ``bytes % tuple`` and sent with one
  ``transport.write``; replies are recognised by their last bytes, not parsed;
* latencies go into an ``array('q')`` of nanoseconds, not a list of objects.

It runs as ``python -m bench.loadgen worker``, driven by the benchmark over
stdin and stdout (one JSON document a line), in as many processes as
``--loadgen-procs`` asks, so it never shares an event loop with the
benchmark's own probe. The protocol of a worker:

1. read a *job* (one JSON line on stdin) and prepare it: open connections,
   register client IDs;
2. write ``{"ready": ...}``, then block until ``{"start_ns", "end_ns"}``
   arrives on stdin (both ``time.monotonic_ns()`` values, which on Linux are
   CLOCK_MONOTONIC and so the same clock in every process);
3. run the load from at once until ``end_ns``, counting only what completes
   inside ``[start_ns, end_ns]`` (before that is warm-up), write the result
   as JSON to the job's ``result_path`` and ``{"result": path}`` to stdout.

``python -m bench.loadgen ceiling --port P`` is the trivial server the load
generator's own ceiling is measured against: it answers every line with a
canned AT line, as cheaply as Python can.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import resource
import socket
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, cast

#: Where every benchmark client says it is: UCLA, as in the course's examples.
LOCATION = b"+34.068930-118.445127"
#: What a WHATSAT asks for: 10 km around the client, at most 5 places.
WHATSAT_ARGS = b"10 5"
#: A WHATSAT reply whose Places answer really came back.
PLACES_OK = (b'"status" : "OK"', b'"status" : "ZERO_RESULTS"')
#: What a herd server asks our Places server for such a WHATSAT: asked
#: directly, it measures what the Places server alone can do.
PLACES_REQUEST = (
    b"GET /maps/api/place/nearbysearch/json?location=34.06893,-118.445127&radius=10000 "
    b"HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
)
#: Connections being opened at once while preparing. Each counts until it
#: has had one reply, so the server has accepted it: at most this many wait
#: in its accept queue. Kept under the smallest listen backlog a server
#: might have (asyncio's default is 100; both herds ask for the kernel's
#: maximum): past the backlog, Linux drops the handshake's last ACK, the client thinks
#: it is connected, and the server only takes the connection when a
#: SYN-ACK retransmission (1, 3, 7, 15... s later) gets through.
CONNECT_CONCURRENCY = 64
#: The IAMAT every idle connection sends once: the same client and time on
#: all of them, so the table holds one record however many there are.
IDLE_HELLO = b"IAMAT idle-client " + LOCATION + b" 1621464827.959498503\n"
#: How long a worker waits for replies still in flight after the end.
DRAIN_S = 2.0

Job = dict[str, Any]


def raise_nofile_limit() -> tuple[int, int]:
    """Raise this process's open-file soft limit to its hard limit.

    Returns:
        The ``(soft, hard)`` limits now in force. Child processes started
        afterwards inherit them.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop if uvloop is installed, else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a bench dependency
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def encode_samples(samples: array[int]) -> str:
    """Latency samples (``array('q')``) as base64 text for a JSON line."""
    return base64.b64encode(samples.tobytes()).decode("ascii")


def decode_samples(text: str) -> array[int]:
    """The inverse of :func:`encode_samples`."""
    samples = array("q")
    samples.frombytes(base64.b64decode(text))
    return samples


def _nodelay(transport: asyncio.BaseTransport) -> None:
    # asyncio and uvloop both set TCP_NODELAY on TCP connections; say so
    # explicitly, since a 40 ms Nagle stall would swamp every figure.
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def iamat_line(client_id: bytes, time_ns: int) -> bytes:
    """An IAMAT line (with its ``\\n``) for ``client_id`` at POSIX ``time_ns``."""
    return b"IAMAT %s %s %d.%09d\n" % (client_id, LOCATION, time_ns // 10**9, time_ns % 10**9)


class _Window:
    """The measurement window and what completed inside it."""

    __slots__ = ("completed", "end_ns", "errors", "samples", "start_ns")

    def __init__(self) -> None:
        self.start_ns = 0
        self.end_ns = 0
        self.completed = 0
        self.errors = 0
        self.samples = array("q")

    def record(self, sent_ns: int, now: int, ok: bool) -> None:
        if self.start_ns <= now <= self.end_ns:
            if ok:
                self.completed += 1
                self.samples.append(now - sent_ns)
            else:
                self.errors += 1

    def figures(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "errors": self.errors,
            "window_s": (self.end_ns - self.start_ns) / 1e9,
            "samples": encode_samples(self.samples),
        }


class _Client(asyncio.Protocol):
    """One persistent connection of a closed loop: one request in flight."""

    __slots__ = (
        "buffer",
        "busy",
        "client_id",
        "current_id",
        "last_time_ns",
        "loop_",
        "sent_ns",
        "seq",
        "slot",
        "terminator",
        "transport",
        "waiter",
    )

    def __init__(self, loop_: ClosedLoop, slot: int) -> None:
        self.loop_ = loop_
        self.slot = slot
        self.client_id = b"%s%d" % (loop_.prefix, slot)
        self.current_id = self.client_id
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.sent_ns = 0
        self.seq = 0
        self.last_time_ns = 0
        self.busy = False
        self.terminator = b"\n"
        self.waiter: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but are one.
        self.transport = cast(asyncio.Transport, transport)
        _nodelay(transport)

    def send_iamat(self, client_id: bytes) -> None:
        # The client time must grow for the server to store (and so flood)
        # each IAMAT: never reuse a time, even within one clock tick.
        now = max(time.time_ns(), self.last_time_ns + 1)
        self.last_time_ns = now
        self.current_id = client_id
        self._write(iamat_line(client_id, now), b"\n")

    def send_next(self) -> None:
        loop_ = self.loop_
        if loop_.http:
            self._write(PLACES_REQUEST, b"")
        elif loop_.whatsat:
            self.current_id = self.client_id
            self._write(b"WHATSAT %s %s\n" % (self.client_id, WHATSAT_ARGS), b"\n\n")
        elif loop_.fresh_ids:
            self.seq += 1
            self.send_iamat(b"%s-%d" % (self.client_id, self.seq))
        else:
            self.send_iamat(self.client_id)

    def _write(self, message: bytes, terminator: bytes) -> None:
        assert self.transport is not None
        self.terminator = terminator
        self.busy = True
        self.sent_ns = time.monotonic_ns()
        self.transport.write(message)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        # One request is in flight, so the reply is complete when the bytes
        # end with its terminator: "\n" after an AT line, "\n\n" after a
        # WHATSAT's JSON (which never holds a blank line), "\n" after "? ...".
        if self.loop_.http:
            complete = _http_complete(buffer)
        else:
            complete = buffer.endswith(self.terminator) or (
                buffer.startswith(b"?") and buffer.endswith(b"\n")
            )
        if not complete:
            self.buffer = buffer
            return
        self.buffer = b""
        self.busy = False
        if self.waiter is not None:
            waiter, self.waiter = self.waiter, None
            if not waiter.done():
                waiter.set_result(buffer)
            return
        self.loop_.replied(self, buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))
        if self.busy:
            self.busy = False
            self.loop_.dropped += 1
        self.loop_.check_idle()


def _http_complete(buffer: bytes) -> bool:
    """Whether ``buffer`` holds a whole HTTP response with a Content-Length body."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = buffer[:head_end].lower()
    start = head.find(b"\r\ncontent-length:")
    if start < 0:
        return True  # no body announced: the head is the response
    end = head.find(b"\r\n", start + 2)
    value = head[start + len(b"\r\ncontent-length:") : end if end >= 0 else len(head)]
    return len(buffer) >= head_end + 4 + int(value)


class ClosedLoop:
    """N persistent clients, each sending its next request when the last is answered.

    Job fields: ``host``, ``port``, ``clients``, ``first_slot`` (client
    numbering, so several workers use distinct IDs), ``id_prefix``,
    ``message`` (``iamat``, ``whatsat``, or ``http``: a Nearby Search GET
    to our Places server, for its own ceiling), ``fresh_ids`` (a new client ID per
    IAMAT rather than a growing time) and ``record_acks`` (return every
    acknowledged client ID with its time).
    """

    def __init__(self, job: Job) -> None:
        self.host: str = job["host"]
        self.port: int = job["port"]
        self.slots = range(job["first_slot"], job["first_slot"] + job["clients"])
        self.prefix: bytes = job["id_prefix"].encode()
        self.whatsat = job.get("message", "iamat") == "whatsat"
        self.http = job.get("message") == "http"
        self.fresh_ids = bool(job.get("fresh_ids", False))
        self.record_acks = bool(job.get("record_acks", False))
        self.clients: list[_Client] = []
        self.window = _Window()
        self.sending = False
        self.dropped = 0
        self.acks: list[tuple[str, int]] = []
        self._idle: asyncio.Event | None = None

    async def prepare(self) -> dict[str, Any]:
        """Connect every client, and have one exchange on each before the load.

        The first exchange proves the server accepted the connection, so
        every client takes part from the start; for WHATSAT it is the IAMAT
        that tells the herd where the client is.
        """
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect(slot: int) -> _Client:
            async with limit:
                _, client = await loop.create_connection(
                    lambda: _Client(self, slot), self.host, self.port
                )
                client.waiter = loop.create_future()
                if self.http:
                    client.send_next()
                else:
                    client.send_iamat(client.client_id)
                reply = await asyncio.wait_for(client.waiter, 30)
            if not reply.startswith((b"AT ", b"HTTP/1.1 200")):
                raise RuntimeError(f"first request refused: {reply[:80]!r}")
            return client

        started = time.monotonic()
        self.clients = list(await asyncio.gather(*(connect(s) for s in self.slots)))
        return {"connected": len(self.clients), "connect_s": time.monotonic() - started}

    def replied(self, client: _Client, reply: bytes) -> None:
        """A reply arrived: record it and, until the end, send the next request."""
        now = time.monotonic_ns()
        if self.http:
            ok = reply.startswith(b"HTTP/1.1 200")
        elif self.whatsat:
            ok = reply.startswith(b"AT ") and any(s in reply for s in PLACES_OK)
        else:
            ok = reply.startswith(b"AT ")
        self.window.record(client.sent_ns, now, ok)
        if ok and self.record_acks:
            self.acks.append((client.current_id.decode(), now))
        if self.sending and now < self.window.end_ns:
            client.send_next()
        else:
            self.check_idle()

    def check_idle(self) -> None:
        """Wake :meth:`run` once no request is in flight."""
        if self._idle is not None and not any(c.busy for c in self.clients):
            self._idle.set()

    async def run(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        """Run the closed loop until ``end_ns``; measure inside ``[start_ns, end_ns]``."""
        self.window.start_ns, self.window.end_ns = start_ns, end_ns
        self._idle = asyncio.Event()
        self.sending = True
        for client in self.clients:
            client.send_next()
        await asyncio.sleep(max(0.0, (end_ns - time.monotonic_ns()) / 1e9))
        self.sending = False
        # Let replies still in flight land (they may be acknowledgements a
        # recovery check needs), then hang up.
        self.check_idle()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), DRAIN_S)
        in_flight = sum(c.busy for c in self.clients)
        for client in self.clients:
            if client.transport is not None:
                client.transport.close()
        result = self.window.figures()
        result.update(dropped=self.dropped, unanswered=in_flight)
        if self.record_acks:
            result["acks"] = self.acks
        return result


class _OneShot(asyncio.Protocol):
    """A churn client's connection: send one IAMAT, take one reply line, hang up."""

    __slots__ = ("buffer", "message", "reply", "transport")

    def __init__(self, message: bytes, reply: asyncio.Future[bytes]) -> None:
        self.message = message
        self.reply = reply
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but are one.
        self.transport = cast(asyncio.Transport, transport)
        _nodelay(transport)
        self.transport.write(self.message)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.buffer.endswith(b"\n") and not self.reply.done():
            self.reply.set_result(self.buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc or ConnectionError("closed before the reply"))


class Churn:
    """A few clients that each open a new connection per IAMAT, as the grading client does.

    Job fields: ``host``, ``port``, ``clients``, ``first_slot``, ``id_prefix``.
    """

    def __init__(self, job: Job) -> None:
        self.host: str = job["host"]
        self.port: int = job["port"]
        self.slots = range(job["first_slot"], job["first_slot"] + job["clients"])
        self.prefix: bytes = job["id_prefix"].encode()
        self.window = _Window()
        self.failures = 0

    async def prepare(self) -> dict[str, Any]:
        """Nothing to open in advance: every request connects anew."""
        return {"clients": len(self.slots)}

    async def _client(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        client_id = b"%s%d" % (self.prefix, slot)
        last = 0
        end_ns = self.window.end_ns
        while time.monotonic_ns() < end_ns:
            last = max(time.time_ns(), last + 1)
            reply: asyncio.Future[bytes] = loop.create_future()
            sent = time.monotonic_ns()
            transport: asyncio.BaseTransport | None = None
            try:
                transport, _ = await loop.create_connection(
                    partial(_OneShot, iamat_line(client_id, last), reply), self.host, self.port
                )
                answer = await asyncio.wait_for(reply, 10)
            except (OSError, TimeoutError):
                # Refused, reset, or out of ephemeral ports: count it, and
                # do not spin on a server that is not there.
                self.failures += 1
                await asyncio.sleep(0.01)
                continue
            finally:
                if transport is not None:
                    transport.close()
            self.window.record(sent, time.monotonic_ns(), answer.startswith(b"AT "))

    async def run(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        """Churn until ``end_ns``; measure inside ``[start_ns, end_ns]``."""
        self.window.start_ns, self.window.end_ns = start_ns, end_ns
        await asyncio.gather(*(self._client(slot) for slot in self.slots))
        result = self.window.figures()
        result["failures"] = self.failures
        return result


class IdleConnections:
    """Many idle client connections: the server's cost of one.

    Each sends :data:`IDLE_HELLO` once and waits for the reply, which proves
    the server accepted it and has read from it, then sits idle: a client
    that connected, said where it was, and stays connected.

    Job fields: ``host``, ``port``, ``connections``. They are opened by
    :meth:`prepare` and closed by :meth:`run`.
    """

    def __init__(self, job: Job) -> None:
        self.host: str = job["host"]
        self.port: int = job["port"]
        self.count: int = job["connections"]
        self.transports: list[asyncio.BaseTransport] = []

    async def prepare(self) -> dict[str, Any]:
        """Open the connections."""
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect() -> asyncio.BaseTransport:
            async with limit:
                reply: asyncio.Future[bytes] = loop.create_future()
                transport, _ = await loop.create_connection(
                    partial(_OneShot, IDLE_HELLO, reply), self.host, self.port
                )
                if not (await asyncio.wait_for(reply, 30)).startswith(b"AT "):
                    raise RuntimeError("the idle connection's IAMAT was refused")
                return transport

        started = time.monotonic()
        self.transports = list(await asyncio.gather(*(connect() for _ in range(self.count))))
        return {"connected": len(self.transports), "connect_s": time.monotonic() - started}

    async def run(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        """Close them all."""
        for transport in self.transports:
            transport.close()
        await asyncio.sleep(0)
        return {"closed": len(self.transports)}


class _Filler(asyncio.Protocol):
    """A pipelining connection: write a window of IAMATs, wait for as many replies."""

    __slots__ = ("errors", "expected", "received", "transport", "waiter")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = 0
        self.expected = 0
        self.errors = 0
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but are one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received += data.count(b"\n")
        # An invalid reply is "? IAMAT ..."; one split across two reads
        # would be missed, which is fine for a sanity count.
        self.errors += data.count(b"? IAMAT")
        if self.received >= self.expected and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed while filling"))


class TableFill:
    """Distinct client IDs, pipelined over a few connections, to grow a server's table.

    Job fields: ``host``, ``port``, ``connections``, ``count`` (client IDs),
    ``first`` (the first ID's number), ``window`` (lines per write).
    """

    def __init__(self, job: Job) -> None:
        self.host: str = job["host"]
        self.port: int = job["port"]
        self.connections: int = job["connections"]
        self.count: int = job["count"]
        self.first: int = job["first"]
        self.window: int = job["window"]
        self.fillers: list[_Filler] = []

    async def prepare(self) -> dict[str, Any]:
        """Open the connections."""
        loop = asyncio.get_running_loop()
        for _ in range(self.connections):
            _, filler = await loop.create_connection(_Filler, self.host, self.port)
            self.fillers.append(filler)
        return {"connected": len(self.fillers)}

    async def _fill(self, filler: _Filler, numbers: range) -> None:
        loop = asyncio.get_running_loop()
        assert filler.transport is not None
        for start in range(numbers.start, numbers.stop, self.window):
            stop = min(start + self.window, numbers.stop)
            now = time.time_ns()
            # Client IDs of 16 bytes, the size of "kiwi.cs.ucla.edu".
            batch = b"".join(
                iamat_line(b"client%010d" % number, now + number) for number in range(start, stop)
            )
            filler.expected += stop - start
            filler.waiter = loop.create_future()
            filler.transport.write(batch)
            await asyncio.wait_for(filler.waiter, 60)

    async def run(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        """Send every IAMAT and wait for every reply."""
        started = time.monotonic()
        share = -(-self.count // self.connections)
        ranges = [
            range(self.first + i * share, self.first + min(self.count, (i + 1) * share))
            for i in range(self.connections)
        ]
        await asyncio.gather(*(self._fill(f, r) for f, r in zip(self.fillers, ranges, strict=True)))
        elapsed = time.monotonic() - started
        for filler in self.fillers:
            assert filler.transport is not None
            filler.transport.close()
        return {
            "sent": self.count,
            "replies": sum(f.received for f in self.fillers),
            "errors": sum(f.errors for f in self.fillers),
            "elapsed_s": elapsed,
        }


KINDS: dict[str, Callable[[Job], ClosedLoop | Churn | IdleConnections | TableFill]] = {
    "closed": ClosedLoop,
    "churn": Churn,
    "idle": IdleConnections,
    "fill": TableFill,
}


def _emit(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


def worker() -> int:
    """Run one job under the stdin/stdout protocol of the module docstring."""
    raise_nofile_limit()
    job = json.loads(sys.stdin.readline())
    load = KINDS[job["kind"]](job)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        try:
            ready = runner.run(load.prepare())
        except (OSError, RuntimeError, TimeoutError) as exc:
            _emit({"error": f"{type(exc).__name__}: {exc}"})
            return 1
        _emit({"ready": ready})
        # Block here, outside the event loop: nothing is in flight, and the
        # benchmark starts every worker of a step at the same moment.
        line = sys.stdin.readline()
        if not line:
            return 1
        go = json.loads(line)
        result = runner.run(load.run(go["start_ns"], go["end_ns"]))
    # The result holds every latency sample (megabytes): it goes through a
    # file, and only the file's name through the pipe.
    path = Path(job["result_path"])
    path.write_text(json.dumps(result))
    _emit({"result": str(path)})
    return 0


#: The ceiling server's answer to any line.
CEILING_REPLY = b"AT Ceiling +0.000000001 client +34.068930-118.445127 1621464827.959498503\n"


class _CeilingConnection(asyncio.Protocol):
    __slots__ = ("transport",)

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but are one.
        self.transport = cast(asyncio.Transport, transport)
        _nodelay(transport)

    def data_received(self, data: bytes) -> None:
        lines = data.count(b"\n")
        if lines and self.transport is not None:
            self.transport.write(CEILING_REPLY * lines)


async def _serve_ceiling(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_CeilingConnection, "127.0.0.1", port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening {bound}", flush=True)
    async with server:
        await server.serve_forever()


def ceiling(port: int) -> int:
    """Serve canned AT replies on ``port`` until killed."""
    raise_nofile_limit()
    with (
        asyncio.Runner(loop_factory=new_event_loop) as runner,
        contextlib.suppress(KeyboardInterrupt),
    ):
        runner.run(_serve_ceiling(port))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="The benchmark's load generator (driven by python -m bench).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run one job given as JSON on stdin")
    serve = commands.add_parser("ceiling", help="a trivial server: the load generator's ceiling")
    serve.add_argument("--port", type=int, default=0, help="port (default 0: any)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.loadgen``."""
    args = build_parser().parse_args(argv)
    if args.command == "worker":
        return worker()
    return ceiling(args.port)


if __name__ == "__main__":
    sys.exit(main())
