"""``--metrics-port`` on anyio (mirrors ``trioherd/metrics_server.py``).

The same responses (:func:`trioherd.metrics.http_answer`) from an anyio
listener, one task of the process's top task group, on either backend.
"""

from __future__ import annotations

import socket
from functools import partial

import anyio
from anyio.abc import SocketListener, SocketStream, TaskStatus

from bench.anyio_herd.stream import receive
from trioherd.core.config import BindError
from trioherd.metrics import MAX_REQUEST_HEAD, MetricsBoard, http_answer

#: A scraper that has not sent its request head by then is dropped.
READ_TIMEOUT = 5.0


async def serve_metrics(
    board: MetricsBoard,
    host: str,
    port: int,
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Answer ``/metrics`` and ``/healthz`` on ``host:port`` until cancelled.

    Reports the port it listens on (``port`` 0: the OS picks).

    Raises:
        BindError: the address cannot be listened on.
    """
    try:
        sock = socket.create_server((host, port))
    except OSError as exc:
        raise BindError.from_os_error(host, port, exc) from None
    async with await SocketListener.from_socket(sock) as listener:
        task_status.started(sock.getsockname()[1])
        await listener.serve(partial(_answer, board))


async def _answer(board: MetricsBoard, stream: SocketStream) -> None:
    try:
        async with stream:
            head = b""
            with anyio.move_on_after(READ_TIMEOUT) as reading:
                while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST_HEAD:
                    data = await receive(stream)
                    if not data:
                        break
                    head += data
            if head and not reading.cancelled_caught:
                await stream.send(http_answer(head, board))
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass  # the scraper went away: nothing to tell it
