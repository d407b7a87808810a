"""bench.pass_trace's record of loop passes and collector pauses, on a real trio loop."""

from __future__ import annotations

import gc
import socket

import trio

from bench.pass_trace import Passes, _TrioHooks


def test_a_trio_loop_records_its_passes_and_what_each_wait_handed_back() -> None:
    passes = Passes()
    hooks = _TrioHooks(passes)
    a, b = socket.socketpair()

    async def main() -> None:
        passes.start()
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                for _ in range(5):
                    await trio.lowlevel.wait_readable(a)
                    a.recv(1)

            nursery.start_soon(reader)
            for _ in range(5):
                # Each byte wakes the reader through a wait for I/O.
                b.send(b"x")
                await trio.testing.wait_all_tasks_blocked()
        passes.stop()

    try:
        trio.run(main, instruments=[hooks])
    finally:
        a.close()
        b.close()
    report = passes.report()
    assert report["passes"] >= 5
    # At least five waits handed back the reader's socket.
    assert sum(1 for ready, _ in report["sequence"] if ready) >= 5
    assert report["work_us"]["p50"] > 0
    assert report["window_s"] > 0


def test_a_collection_while_recording_is_timed_by_generation() -> None:
    passes = Passes()
    gc.callbacks.append(passes.collector)
    try:
        gc.collect()  # not recording: not counted
        passes.start()
        gc.collect()
        passes.stop()
    finally:
        gc.callbacks.remove(passes.collector)
    report = passes.report()
    assert report["gc"]["2"]["count"] == 1
    assert report["gc"]["2"]["max_ms"] > 0
    assert report["gc"]["0"]["count"] == 0
