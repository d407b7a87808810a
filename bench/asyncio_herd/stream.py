"""Writing to a connection on asyncio, the same on both event loops.

Mirrors ``trioherd/stream.py`` in role: the one place the herd's writes go
through. The asyncio and uvloop transports disagree about a write to a
connection that is already closing (the peer reset it, or we closed it):
asyncio's drops the bytes and lets ``drain`` raise
:class:`ConnectionResetError`, uvloop's raises :class:`RuntimeError` at once.
:func:`send_all` turns both into :class:`ConnectionResetError`, an
:class:`OSError` like every other lost connection, so callers handle one kind.
"""

from __future__ import annotations

import asyncio

#: The most bytes one read asks for.
RECEIVE_SIZE = 65536


async def send_all(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write ``data`` and wait until the transport has room again.

    Raises:
        ConnectionResetError: the connection is closing or closed.
    """
    if writer.is_closing():
        raise ConnectionResetError("connection closed")
    writer.write(data)
    await writer.drain()
