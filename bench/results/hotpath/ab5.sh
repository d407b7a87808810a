#!/bin/sh
# Interleaved A/B/C at IAMAT N=100 (bench.sched_trace, Hill CPU per reply) and
# the unloaded flood (bench.flood_probe): base = 134e824 (before this branch),
# lazy = base + the lazy read deadline (trioherd/server.py of the branch),
# head = the branch (lazy deadline + links that write at once when idle).
#   sh bench/results/hotpath/ab5.sh   (from the worktree root)
set -e
out=bench/results/hotpath/ab5; mkdir -p $out
py=/work/venv/bin/python; head=$(git rev-parse HEAD)
rm -rf /tmp/hotpath-base /tmp/hotpath-lazy /tmp/hotpath-head
for tree in base lazy head; do mkdir -p /tmp/hotpath-$tree; done
git archive 134e824 | tar -x -C /tmp/hotpath-base
git archive 134e824 | tar -x -C /tmp/hotpath-lazy
git show "$head:trioherd/server.py" > /tmp/hotpath-lazy/trioherd/server.py
git archive "$head" | tar -x -C /tmp/hotpath-head
for tree in base lazy head; do cp bench/sched_trace.py /tmp/hotpath-$tree/bench/; done
for round in 1 2 3; do
  for tree in base lazy head; do
    root=/tmp/hotpath-$tree
    (cd "$root" && PYTHONPATH=$root $py -m bench.sched_trace --impl trio --seconds 3 \
      --out "$OLDPWD/$out/trace-$tree-$round.json") > "$out/trace-$tree-$round.txt" 2>&1
    if [ "$tree" != lazy ]; then
      (cd "$root" && PYTHONPATH=$root $py -m bench.flood_probe --impl trioherd --count 300) \
        > "$out/flood-$tree-$round.txt" 2>&1
    fi
  done
done
