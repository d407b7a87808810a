#!/bin/sh
# Interleaved A/B of trioherd before this branch (134e824) and after it, on
# the same machine at the same time: Hill's run loop per IAMAT at N=100
# (bench.sched_trace) and the unloaded flood (bench.flood_probe).
#   sh bench/results/hotpath/ab.sh OUT_DIR ROUNDS   (from the worktree root)
set -e
out=${1:-bench/results/hotpath/ab}; rounds=${2:-3}
base=/tmp/hotpath-base
rm -rf "$base" && mkdir -p "$base"
git archive 134e824 | tar -x -C "$base"
cp bench/sched_trace.py "$base/bench/"   # the tracer, same in both trees
mkdir -p "$out"
py=/work/venv/bin/python
for round in $(seq "$rounds"); do
  for tree in base new; do
    if [ "$tree" = base ]; then root=$base; else root=$PWD; fi
    (cd "$root" && PYTHONPATH=$root $py -m bench.sched_trace --impl trio --seconds 4 \
      --out "$OLDPWD/$out/trace-$tree-$round.json") > "$out/trace-$tree-$round.txt" 2>&1
    (cd "$root" && PYTHONPATH=$root $py -m bench.flood_probe --impl trioherd --count 300) \
      > "$out/flood-$tree-$round.txt" 2>&1
  done
done
