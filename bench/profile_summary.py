"""Where a py-spy profile's samples went: ``python -m bench.profile_summary FILE...``.

Reads py-spy's speedscope files and prints, for each, the share of samples
(idle ones left out) by package (``trio``, ``httpx``, ``httpcore``...,
counting a sample once for every package on its stack: inclusive) and the
functions with the most samples of their own (self time).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Frames where a thread waits rather than works.
IDLE = re.compile(r"^(select|poll|epoll_wait|_run_once|get_events|wait|acquire)\b")


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for marker in ("trioherd/", "bench/"):
        if path.startswith(marker) or f"/{marker}" in path:
            return marker + path.split(marker, 1)[1]
    if "lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1]
    return path


def summarise(document: dict[str, Any], top: int) -> str:
    """The report for one speedscope document."""
    frames = document["shared"]["frames"]
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for profile in document["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            leaf = frames[stack[-1]]
            if IDLE.match(leaf["name"]) and "site-packages" not in leaf.get("file", ""):
                continue
            total += weight
            self_time[f"{leaf['name']} ({_package(leaf.get('file', '?'))})"] += weight
            for package in {_package(frames[i].get("file", "?")).split("/")[0] for i in stack}:
                inclusive[package] += weight
    lines = [f"busy time sampled: {total:.2f} s", "", "inclusive share by package:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "self time, top functions:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_summary")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    for path in args.files:
        print(f"== {path.name}")
        print(summarise(json.loads(path.read_text()), args.top))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
