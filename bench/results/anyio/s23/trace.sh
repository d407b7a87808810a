#!/bin/sh
# Hill's run loop per IAMAT at N=100 (bench.sched_trace), trio and anyio-trio,
# in a tree at COMMIT (with this tree's tracer copied in) and in this tree,
# interleaved, each under the shared lock; STRACE=--strace adds system calls.
#   sh bench/results/anyio/s23/trace.sh OUT_DIR ROUNDS [COMMIT]   (from the worktree root)
set -e
out=${1:-bench/results/anyio/s23/trace}; rounds=${2:-1}; commit=${3:-01dd204}
base=$(mktemp -d /tmp/anyio-s23-trace-XXXXXX)
# a directory of its own: two runs at once must not share one
git archive "$commit" | tar -x -C "$base"
cp bench/sched_trace.py "$base/bench/"   # the tracer, same in both trees
mkdir -p "$out"
py=/work/venv/bin/python
for round in $(seq "$rounds"); do
  for tree in base new; do
    if [ "$tree" = base ]; then root=$base; else root=$PWD; fi
    (cd "$root" && flock /tmp/bench.lock env PYTHONPATH=$root $py -m bench.sched_trace \
      --impl trio,anyio-trio --seconds 4 $STRACE --out "$OLDPWD/$out/$tree-$round.json") \
      > "$out/$tree-$round.txt" 2>&1
  done
done
rm -rf "$base"
