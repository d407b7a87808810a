#!/bin/bash
# The backoff cap A/B of bench/results/faults/README.md: the partition fault
# (4 rounds of 5 s, both herds) at commit 96c5327 (BACKOFF_CAP = 1.0) and at
# the same tree with BACKOFF_CAP = 2.0 (the cap before it), interleaved, 3 runs
# each. Run from the worktree root: bash bench/results/faults/backoff/run.sh
set -eu
HERE=$(pwd)
OUT=$HERE/bench/results/faults/backoff
BEFORE=$(mktemp -d)
git archive 96c5327 | tar -x -C "$BEFORE"
sed -i 's/^BACKOFF_CAP = 1.0/BACKOFF_CAP = 2.0/' "$BEFORE/trioherd/core/link.py"
for i in 1 2 3; do
  for v in after before; do
    if [ $v = after ]; then D=$HERE; else D=$BEFORE; fi
    echo "$v $i start $(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/runs.log"
    (cd "$D" && PYTHONPATH=$D python -m bench.faults --impls trio,asyncio --faults partition \
      --partitions 4 --seconds 5 --out "$OUT/cap-$v-$i.json")
    echo "$v $i end $(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/runs.log"
  done
done
