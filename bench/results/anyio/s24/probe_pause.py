"""When anyio's asyncio SocketStream reads, watched from inside (anyio 4.16).

    PYTHONPATH=. python bench/results/anyio/s24/probe_pause.py

The case of ``bench/anyio_herd/upstream_accept_pause.py`` (an echo handler,
a peer that sends 10 MiB and reads nothing, its first 32 KiB sent before
the accept), with the stream's private transport and protocol watched:

* whether the transport reads when the stream is accepted (or connected);
* how many reads (``data_received``) and bytes the transport took while
  the handler was in ``send``, and while it waited in ``receive``;
* the most reads in one waiting ``receive``, and the most bytes queued.

Cases: the stream from anyio's ``accept``; from the herd's ``accept``,
which pauses it (``pause_until_asked`` in ``bench/anyio_herd/stream.py``);
from ``anyio.connect_tcp``. Each accepted stream gets a task of its own, as
in the herd and in anyio's ``serve``. Not a benchmark: no lock needed.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream

from bench.anyio_herd.stream import accept
from bench.anyio_herd.upstream_accept_pause import FIRST, flood, small_buffers


@dataclass
class Watch:
    reading_at_start: bool = False
    queued_at_start: int = 0
    in_send: bool = False
    in_wait: bool = False
    reads_in_send: int = 0
    bytes_in_send: int = 0
    reads_in_wait: int = 0
    reads_this_wait: int = 0
    most_reads_one_wait: int = 0
    reads_elsewhere: int = 0
    most_queued: int = 0


def watched(stream: SocketStream, watch: Watch) -> None:
    transport: Any = stream._transport  # type: ignore[attr-defined]
    protocol: Any = stream._protocol  # type: ignore[attr-defined]
    watch.reading_at_start = transport.is_reading()
    watch.queued_at_start = sum(map(len, protocol.read_queue))
    data_received = protocol.data_received
    resume, pause = transport.resume_reading, transport.pause_reading

    def counting(data: bytes) -> None:
        data_received(data)
        if watch.in_send:
            watch.reads_in_send += 1
            watch.bytes_in_send += len(data)
        elif watch.in_wait:
            watch.reads_in_wait += 1
            watch.reads_this_wait += 1
            watch.most_reads_one_wait = max(watch.most_reads_one_wait, watch.reads_this_wait)
        else:
            watch.reads_elsewhere += 1
        watch.most_queued = max(watch.most_queued, sum(map(len, protocol.read_queue)))

    def resuming() -> None:
        # anyio's receive resumes the transport only when it is about to wait.
        watch.in_wait, watch.reads_this_wait = True, 0
        resume()

    def pausing() -> None:
        watch.in_wait = False
        pause()

    protocol.data_received = counting
    transport.resume_reading, transport.pause_reading = resuming, pausing


async def echo(stream: SocketStream, watch: Watch) -> None:
    stream.extra(SocketAttribute.raw_socket).setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    async with stream:
        try:
            while True:
                data = await stream.receive()
                watch.in_send = True
                try:
                    await stream.send(data)
                finally:
                    watch.in_send = False
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass


async def accepted(pause: bool) -> tuple[int, Watch]:
    watch = Watch()
    # As the herd makes its listeners: from a socket it binds itself.
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    listener = await SocketListener.from_socket(listening)

    async def serve() -> None:
        # As the herd's HerdServer._accept (and anyio's serve): accept, and
        # give the stream to a task of its own.
        async with anyio.create_task_group() as handlers:
            while True:
                stream = await (accept(listener, print) if pause else listener.accept())
                watched(stream, watch)
                handlers.start_soon(echo, stream, watch)

    with socket.socket() as sock:
        small_buffers(sock)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"x" * FIRST)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(serve)
            sent = await anyio.to_thread.run_sync(flood, sock)
            tg.cancel_scope.cancel()
    return sent, watch


async def connected() -> tuple[int, Watch]:
    watch = Watch()
    with socket.socket() as server:
        small_buffers(server)
        server.bind(("127.0.0.1", 0))
        server.listen()

        def peer() -> int:
            sock, _ = server.accept()
            with sock:
                return flood(sock)

        async with anyio.create_task_group() as tg:
            stream = await anyio.connect_tcp("127.0.0.1", server.getsockname()[1])
            watched(stream, watch)
            tg.start_soon(echo, stream, watch)
            sent = await anyio.to_thread.run_sync(peer)
            tg.cancel_scope.cancel()
    return sent, watch


def main() -> None:
    cases = [
        ("accept", lambda: accepted(False)),
        ("the herd's accept (paused)", lambda: accepted(True)),
        ("connect_tcp", connected),
    ]
    for name, case in cases:
        sent, w = anyio.run(case, backend="asyncio")
        print(
            f"{name}: peer sent {sent:,} B; reading when accepted: {w.reading_at_start} "
            f"({w.queued_at_start:,} B queued); "
            f"reads while in send: {w.reads_in_send} ({w.bytes_in_send:,} B); "
            f"reads while waiting in receive: {w.reads_in_wait}, at most "
            f"{w.most_reads_one_wait} per wait; other reads: {w.reads_elsewhere}; "
            f"most queued: {w.most_queued:,} B"
        )


if __name__ == "__main__":
    main()
