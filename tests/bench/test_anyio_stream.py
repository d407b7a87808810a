"""The anyio herd's accept: an accepted stream reads only when asked, on every loop."""

from __future__ import annotations

import fcntl
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import SocketAttribute, SocketListener, SocketStream

from bench.anyio_herd import stream as herd_stream
from bench.anyio_herd import upstream_accept_pause
from bench.anyio_herd.stream import accept, pause_until_asked

#: What the client has sent before the server accepts it, and after.
EARLY = b"IAMAT early +34.068930-118.445127 1621464827.959498503\n" * 100
LATE = b"IAMAT late +34.068930-118.445127 1621464827.959498503\n" * 100
BACKENDS = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


def unread(stream: SocketStream) -> int:
    """How many bytes wait in the kernel for the server to read them."""
    fd = stream.extra(SocketAttribute.raw_socket).fileno()
    (count,) = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))
    return int(count)


async def early_client(check: Any) -> None:
    """Accept a client whose lines are there first, let the loop run, then ``check(stream)``."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    listener = await SocketListener.from_socket(listening)
    with socket.socket() as client:
        client.connect(listening.getsockname())
        client.sendall(EARLY)
        async with listener:
            with anyio.fail_after(10):
                stream = await accept(listener, lambda error: None)
                client.sendall(LATE)
                async with stream:
                    # Ten turns of the loop: a transport left reading reads
                    # the waiting bytes in the first.
                    for _ in range(10):
                        await anyio.lowlevel.checkpoint()
                    await check(stream)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_accepted_stream_reads_nothing_before_it_is_asked(backend: str) -> None:
    async def check(stream: SocketStream) -> None:
        # Still in the kernel, where the client's sending stalls once it is
        # full. uvloop reads once as it accepts, before the stream can be
        # paused: then only what came after is still there.
        waiting = len(LATE) if backend == "uvloop" else len(EARLY + LATE)
        assert unread(stream) == waiting
        received = b""
        while len(received) < len(EARLY + LATE):
            received += await herd_stream.receive(stream)
        assert received == EARLY + LATE
        assert unread(stream) == 0

    name, options = BACKENDS[backend]
    anyio.run(early_client, check, backend=name, backend_options=options)


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_an_asyncio_stream_reads_only_while_a_receive_waits(backend: str) -> None:
    async def check(stream: SocketStream) -> None:
        transport = stream._transport  # type: ignore[attr-defined]
        assert not transport.is_reading()
        # A receive resumes reading only while it waits, as anyio meant.
        assert await herd_stream.receive(stream)
        assert not transport.is_reading()

    name, options = BACKENDS[backend]
    anyio.run(early_client, check, backend=name, backend_options=options)


def test_a_trio_stream_has_no_transport_to_pause() -> None:
    async def check(stream: SocketStream) -> None:
        assert not pause_until_asked(stream)

    anyio.run(early_client, check, backend="trio")


def test_an_unknown_anyio_or_stream_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    class Transport:
        paused = False

        def pause_reading(self) -> None:
            self.paused = True

    class Stream:
        _transport = Transport()

    stream: Any = Stream()
    assert pause_until_asked(stream)
    assert stream._transport.paused
    stream._transport = object()
    assert not pause_until_asked(stream)
    monkeypatch.setattr(herd_stream, "PRIVATE_TRANSPORT_KNOWN", False)
    stream._transport = Transport()
    assert not pause_until_asked(stream)
    assert not stream._transport.paused

    # On a real asyncio stream too: accepted as anyio hands it over, reading.
    async def check(stream: SocketStream) -> None:
        assert stream._transport.is_reading()  # type: ignore[attr-defined]

    anyio.run(early_client, check, backend="asyncio")


def test_anyio_still_reads_an_accepted_stream_unasked() -> None:
    # The reproduction written for anyio's issue tracker, on plain anyio.
    script = Path(upstream_accept_pause.__file__)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout + result.stderr
    accepted, connected, on_trio = lines
    assert connected.endswith("stalled, bounded")
    assert on_trio.endswith("stalled, bounded")
    fixed = (
        "anyio's accept no longer reads unasked: stream.pause_until_asked can go "
        "(bench/anyio_herd/NOTES.md)\n" + result.stdout
    )
    assert accepted.endswith("read ALL of it, unbounded"), fixed
    assert result.returncode == 1, fixed
