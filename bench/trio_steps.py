"""``python -m bench.trio_steps NAME ...``: trioherd, counting its run loop's task steps and passes.

The same server and command line as ``python -m trioherd``, run with a
:class:`trio.abc.Instrument` that counts task steps (each time a task runs
until its next schedule point) and passes of the run loop (each wait for
I/O). A thread writes the counts, four times a second, to
``trioherd-steps-PID.json`` in the temporary directory, where
``python -m bench.cpu_split --impls trio@steps`` reads them before and after
its window: schedule points per WHATSAT. The instrument's hooks cost CPU of
their own, so this variant's CPU figures are not trio's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import trio


def counts_path(pid: int) -> Path:
    """Where the server with process ID ``pid`` writes its counts."""
    return Path(tempfile.gettempdir()) / f"trioherd-steps-{pid}.json"


class StepCounter(trio.abc.Instrument):
    """Counts task steps and run-loop passes."""

    def __init__(self) -> None:
        self.steps = 0
        self.passes = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1

    def before_io_wait(self, timeout: float) -> None:
        self.passes += 1


def _write_counts(counter: StepCounter, path: Path, stop: threading.Event) -> None:
    while not stop.wait(0.25):
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps({"steps": counter.steps, "passes": counter.passes}))
        scratch.replace(path)


def main() -> int:
    """Run trioherd's command line with the counter in every ``trio.run``."""
    counter = StepCounter()
    path = counts_path(os.getpid())
    stop = threading.Event()
    writer = threading.Thread(target=_write_counts, args=(counter, path, stop), daemon=True)
    writer.start()
    real_run = trio.run

    def run(*args: Any, **kwargs: Any) -> Any:
        kwargs["instruments"] = [*kwargs.get("instruments", ()), counter]
        return real_run(*args, **kwargs)

    trio.run = run  # type: ignore[assignment]
    from trioherd.cli import main as trioherd_main

    try:
        return trioherd_main()
    finally:
        stop.set()
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
