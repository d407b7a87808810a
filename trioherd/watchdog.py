"""What every herd does the same way around a shutdown, with no event loop.

A graceful stop gives answers in progress :data:`SHUTDOWN_GRACE` seconds;
:func:`exit_after` is the backstop that holds even if the event loop is
stuck (a client that never reads, a long piece of synchronous work): a
thread that ends the process, with status 0, once the time is up.
"""

from __future__ import annotations

import os
import sys
import threading


def exit_after(seconds: float) -> threading.Timer:
    """End the process with status 0 in ``seconds`` unless it has ended by then."""
    timer = threading.Timer(seconds, _exit_now, (seconds,))
    # A daemon thread does not itself keep the process alive.
    timer.daemon = True
    timer.start()
    return timer


def _exit_now(seconds: float) -> None:
    # Not logging: a log handler's lock may be held by the stuck loop.
    try:
        sys.stderr.write(f"still stopping after {seconds:g} s: exiting now\n")
        sys.stderr.flush()
    finally:
        os._exit(0)


def open_door_warning(host: str, port: int) -> str:
    """What a server says at start when it has no herd secret."""
    return (
        f"no herd secret: any process that can reach {host}:{port} can join the "
        "herd as a neighbour and rewrite every client's location (--herd-secret-file)"
    )
