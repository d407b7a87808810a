"""``--metrics-port`` on asyncio (mirrors ``trioherd/metrics_server.py``).

The same responses (:func:`trioherd.metrics.http_answer`) from an
``asyncio.Server``; the caller closes it when the herd stops, since no
TaskGroup owns the connection tasks ``start_server`` makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from functools import partial

from trioherd.core.config import BindError
from trioherd.metrics import MAX_REQUEST_HEAD, MetricsBoard, http_answer

READ_TIMEOUT = 5.0


async def serve_metrics(board: MetricsBoard, host: str, port: int) -> asyncio.Server:
    """An ``asyncio.Server`` answering ``/metrics`` and ``/healthz`` on ``host:port``.

    Raises:
        BindError: the address cannot be listened on.
    """
    try:
        sock = socket.create_server((host, port))
    except OSError as exc:
        raise BindError.from_os_error(host, port, exc) from None
    return await asyncio.start_server(partial(_answer, board), sock=sock)


async def _answer(
    board: MetricsBoard, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = b""
        async with asyncio.timeout(READ_TIMEOUT):
            while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST_HEAD:
                data = await reader.read(4096)
                if not data:
                    break
                head += data
        if head:
            writer.write(http_answer(head, board))
            await writer.drain()
    except (OSError, TimeoutError):
        pass  # the scraper went away or never asked: nothing to tell it
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
