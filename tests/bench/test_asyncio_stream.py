"""The asyncio herd's one write path, on both event loops it runs on."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable

import pytest
import uvloop

from bench.asyncio_herd.stream import send_all

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


async def _write_after_reset() -> BaseException | None:
    """Let a client reset its connection, then write to it from the server."""
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Wait until the server has seen the reset (an error or EOF).
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        try:
            for _ in range(3):
                await send_all(writer, b"AT Hill +0.1 kiwi +1+1 1.0\n")
        except BaseException as exc:  # the outcome is the point
            outcome.set_result(exc)
        else:
            outcome.set_result(None)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        _, client = await asyncio.open_connection("127.0.0.1", port)
        # SO_LINGER with a zero timeout: close() sends RST, not FIN.
        sock = client.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        return await asyncio.wait_for(outcome, 10)


async def _write_after_close() -> BaseException | None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        try:
            await send_all(writer, b"IAMAT kiwi +1+1 1.0\n")
        except BaseException as exc:  # the outcome is the point
            return exc
        return None


@pytest.mark.parametrize("loop", LOOPS)
def test_write_to_reset_connection_is_a_connection_error(loop: str) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        outcome = runner.run(_write_after_reset())
    assert isinstance(outcome, ConnectionResetError)


@pytest.mark.parametrize("loop", LOOPS)
def test_write_after_close_is_a_connection_error(loop: str) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        outcome = runner.run(_write_after_close())
    assert isinstance(outcome, ConnectionResetError)
