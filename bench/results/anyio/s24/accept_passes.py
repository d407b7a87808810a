"""Loop passes and selector registrations per connection, in accept_cost.py's server.

    PYTHONPATH=. python bench/results/anyio/s24/accept_passes.py   (counts: no lock needed)

Why pausing at accept costs a connection what ``accept_cost.py`` shows:
asyncio's loop passes (``_run_once``) and its selector's ``register`` and
``unregister`` (one ``epoll_ctl`` each, behind ``add_reader`` and
``remove_reader``; the listening socket's one of each is in every way)
counted over 500 connections, per connection, for each of its three ways.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
from collections import Counter
from typing import Any

import anyio
from anyio.abc import SocketListener

from bench.results.anyio.s24 import accept_cost

counts: Counter[str] = Counter()


def counting(name: str, method: Any) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return method(*args, **kwargs)

    return counted


async def main() -> None:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(128)
    port = listening.getsockname()[1]
    async with await SocketListener.from_socket(listening) as listener:
        for way in accept_cost.WAYS:
            accept_cost.way = way
            counts.clear()
            await accept_cost.block(listener, port)
            per = {key: round(value / accept_cost.CONNECTIONS, 2) for key, value in counts.items()}
            print(f"{way}: {per}")


if __name__ == "__main__":
    loop_class: Any = asyncio.base_events.BaseEventLoop
    loop_class._run_once = counting("passes", loop_class._run_once)
    selector: Any = selectors.EpollSelector
    selector.register = counting("register", selector.register)
    selector.unregister = counting("unregister", selector.unregister)
    accept_cost.CONNECTIONS = 500
    anyio.run(main, backend="asyncio")
