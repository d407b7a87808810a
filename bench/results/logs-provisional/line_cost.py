"""CPU per logged line on the event loop's thread: stdlib logging (as before issue 13) vs LineLog.

Run from the repository's root:

    PYTHONPATH=. python bench/results/logs-provisional/line_cost.py

It logs what a server logs for one IAMAT (the line in, the AT line out) a
number of times, in rounds alternating between the two ways, and prints
the CPU time (time.process_time: this thread plus the writer thread) per
IAMAT of each, min-max over the rounds, as JSON. The old way is rebuilt
here from the stdlib as trioherd had it: a Logger, a QueueHandler
(formatting on the calling thread), a QueueListener thread writing a
FileHandler with a filter.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import tempfile
import time
from pathlib import Path

from trioherd.logs import HerdLogs

LINE = b"IAMAT client42 +34.068930-118.445127 1621464827.959498503"
REPLY = b"AT Hill +0.263873386 client42 +34.068930-118.445127 1621464827.959498503\n"
CONN = "conn 17 127.0.0.1:51234"
COUNT = 20_000
ROUNDS = 5


def stdlib_way(directory: Path) -> float:
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = logging.FileHandler(directory / "old.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(lambda record: record.name == "trioherd.Hill")
    logger = logging.Logger("trioherd.Hill", logging.INFO)
    logger.addHandler(logging.handlers.QueueHandler(q))
    listener = logging.handlers.QueueListener(q, handler, respect_handler_level=True)
    listener.start()
    start = time.process_time()
    for _ in range(COUNT):
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s < %s", CONN, LINE.decode("utf-8", "backslashreplace"))
            logger.info("%s > %s", CONN, REPLY.rstrip(b"\n").decode("utf-8", "backslashreplace"))
    listener.stop()
    handler.close()
    return (time.process_time() - start) / COUNT


def linelog_way(directory: Path) -> float:
    start = time.process_time()
    with HerdLogs(directory, ["Hill"], echo_errors=False) as logs:
        lines = logs.lines("Hill")
        for _ in range(COUNT):
            lines.received(CONN, [LINE])
            lines.sent(CONN, [REPLY])
    return (time.process_time() - start) / COUNT


def main() -> None:
    results: dict[str, list[float]] = {"stdlib": [], "linelog": []}
    for _ in range(ROUNDS):
        for name, way in (("stdlib", stdlib_way), ("linelog", linelog_way)):
            with tempfile.TemporaryDirectory() as directory:
                results[name].append(way(Path(directory)) * 1e6)
    summary = {
        name: {"us_per_iamat_min": min(v), "us_per_iamat_max": max(v), "rounds": v}
        for name, v in results.items()
    }
    print(json.dumps({"count": COUNT, "rounds": ROUNDS, "cpu_us": summary}, indent=1))


if __name__ == "__main__":
    main()
