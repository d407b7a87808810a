"""Hill's CPU per WHATSAT from a py-spy profile, in a unit contention cannot skew.

    python -m bench.profile_units FOLDED...

On a shared two-core machine a profile's absolute figures say more about the
other processes than about the server: py-spy counts a thread that waits for
a core inside a system call as busy there (a ``send`` that wakes the reader
on loopback is where it gets preempted most). Two things survive:

* samples in Python code, leaving out those whose innermost frame is a
  system call's caller (``send``, ``recv``, ``epoll``), which both herds
  make alike, one each per message;
* a ruler: the shared core (``trioherd/core/``: parsing the line, decoding
  the Places answer, shaping the reply) runs the same code on the same
  bytes once per WHATSAT in every herd, so the samples it gets measure how
  much CPU one WHATSAT's worth of work got.

This prints, per profile (collapsed stacks, ``py-spy record --format raw``,
as ``bench.profile`` writes them), the Python samples per WHATSAT in
*core units* (1.0 = the samples of the shared core's work for one
WHATSAT), split by part of the server as :mod:`bench.profile` splits them,
and by a few functions of interest. Ratios of these between profiles of the
same workload compare CPU per WHATSAT with the machine's load divided out.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.profile import part_of

#: Innermost frames that are a system call's caller: left out.
SYSTEM_CALLS = (
    "LeanStream.send_all (",
    "LeanStream.send_nowait (",
    "LeanStream.receive_some (",
    "_SelectorSocketTransport.write (",
    "_SelectorSocketTransport._read_ready__data_received (",
    "EpollIOManager._epoll_wait (",
    "EpollSelector.select (",
    "Condition.wait (",
)
#: The ruler: once per WHATSAT, the same work in every herd.
RULER = "core (shared protocol)"
#: Functions whose inclusive share is printed.
FUNCTIONS = (
    "HttpPlaces.nearby (",
    "parse_places_answer (",
    "whatsat_reply (",
    "Request.__init__ (",
    "Response.__init__ (",
    "ClientSession._request (",
    "LeanTransport.handle_async_request (",
    "CancelScope.",
    "unrolled_run (",
)


def units(folded: Path) -> dict[str, float]:
    """Core units per WHATSAT: ``python`` in all, each part and each function."""
    parts: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    ruler = python = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if any(frames[-1].startswith(call) for call in SYSTEM_CALLS):
            continue
        python += count
        part = next((part_of(f) for f in reversed(frames) if part_of(f) != "other"), "other")
        parts[part] += count
        if part == RULER:
            ruler += count
        for function in FUNCTIONS:
            if any(f.startswith(function) for f in frames):
                functions[function.rstrip(" (")] += count
    if not ruler:
        raise SystemExit(f"{folded}: no samples of the ruler ({RULER})")
    result = {"python": python / ruler}
    result.update({f"part: {p}": n / ruler for p, n in parts.most_common()})
    result.update({f"in {f}": n / ruler for f, n in functions.most_common()})
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Print each profile's figures."""
    for name in sys.argv[1:] if argv is None else argv:
        print(f"== {name}")
        for label, value in units(Path(name)).items():
            print(f"  {value:6.2f}  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
