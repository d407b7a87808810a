"""``--metrics-port`` on trio: a small HTTP responder, one task of the herd's process.

It runs in the process's top nursery, beside the herd (``trioherd/cli.py``),
so it lives and dies with it: no thread, no second event loop. The
responses are made by :func:`trioherd.metrics.http_answer`; this module only
reads a request head and writes the answer, one request per connection.
"""

from __future__ import annotations

import socket
from functools import partial

import trio

from trioherd.core.config import BindError
from trioherd.metrics import MAX_REQUEST_HEAD, MetricsBoard, http_answer

#: A scraper that has not sent its request head by then is dropped.
READ_TIMEOUT = 5.0


async def serve_metrics(
    board: MetricsBoard,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
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
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    async with listener:
        task_status.started(sock.getsockname()[1])
        await trio.serve_listeners(partial(_answer, board), [listener])


async def _answer(board: MetricsBoard, stream: trio.SocketStream) -> None:
    try:
        async with stream:
            head = b""
            with trio.move_on_after(READ_TIMEOUT) as reading:
                while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST_HEAD:
                    data = await stream.receive_some(4096)
                    if not data:
                        break
                    head += data
            if head and not reading.cancelled_caught:
                await stream.send_all(http_answer(head, board))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the scraper went away: nothing to tell it
