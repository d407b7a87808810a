"""Per-call CPU of the anyio herd's per-read and per-record operations, on trio and asyncio.

    PYTHONPATH=. python bench/results/anyio/s23/micro.py   (under the bench lock)

Each figure is the best of 5 repeats of N calls, in microseconds per call.
The scopes here are timed, not waited in: they hold no checkpoint (ASYNC100).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import anyio
import trio

from trioherd.core.connection import Connection
from trioherd.core.state import ServerState

N = 20000


def best(label: str, step: Callable[[], object]) -> None:
    """Print the best of 5 timings of ``step`` N times."""
    runs = []
    for _ in range(5):
        start = time.process_time_ns()
        for _ in range(N):
            step()
        runs.append((time.process_time_ns() - start) / N / 1000)
    print(f"{label:55} {min(runs):6.3f} us")


def core_rules() -> None:
    """The core's per-read deadline calls: the eager layer's and the lazy one's."""
    connection = Connection(ServerState("Hill", ["Jaquez", "Smith"]), opened_ns=time.time_ns())
    connection.receive(b"IAMAT a +1+1 5\n", time.time_ns())
    armed = connection.deadline_to_arm(None, time.time_ns())
    best(
        "Connection.read_timeout(now) (before: every read)",
        lambda: connection.read_timeout(time.time_ns()),
    )
    best(
        "Connection.deadline_to_arm(armed, now) (after: every read)",
        lambda: connection.deadline_to_arm(armed, time.time_ns()),
    )


async def main() -> None:
    best("anyio.Event()", anyio.Event)
    best("trio.Event()", trio.Event)
    best("anyio.current_time()", anyio.current_time)
    best("trio.current_time()", trio.current_time)
    best("time.time_ns()", time.time_ns)
    with anyio.CancelScope() as scope:  # noqa: ASYNC100

        def move_and_clear() -> None:
            scope.deadline = anyio.current_time() + 300
            scope.deadline = math.inf

        best("anyio scope: deadline set, then inf", move_and_clear)
    with trio.CancelScope() as tscope:  # noqa: ASYNC100

        def tmove_and_clear() -> None:
            tscope.deadline = trio.current_time() + 300
            tscope.deadline = math.inf

        best("trio scope: deadline set, then inf", tmove_and_clear)

    def enter_exit() -> None:
        with anyio.CancelScope():  # noqa: ASYNC100
            pass

    best("anyio.CancelScope() entered and left", enter_exit)

    def move_on_after() -> None:
        with anyio.move_on_after(300):  # noqa: ASYNC100
            pass

    best("anyio.move_on_after(300) entered and left", move_on_after)

    def tenter_exit() -> None:
        with trio.CancelScope():  # noqa: ASYNC100
            pass

    best("trio.CancelScope() entered and left", tenter_exit)


async def on_asyncio() -> None:
    best("[asyncio] anyio.Event()", anyio.Event)
    best("[asyncio] anyio.current_time()", anyio.current_time)
    with anyio.CancelScope() as scope:  # noqa: ASYNC100

        def move_and_clear() -> None:
            scope.deadline = anyio.current_time() + 300
            scope.deadline = math.inf

        best("[asyncio] anyio scope: deadline set, then inf", move_and_clear)

    def enter_exit() -> None:
        with anyio.CancelScope():  # noqa: ASYNC100
            pass

    best("[asyncio] anyio.CancelScope() entered and left", enter_exit)


core_rules()
anyio.run(main, backend="trio")
anyio.run(on_asyncio, backend="asyncio")
