#!/bin/sh
# Interleaved A/B of the anyio herd at another commit (default 01dd204, the
# run before the full run at ea66b08) and this tree: IAMAT N=100 with trio and
# anyio-trio (and IMPLS if given) in each tree, one bench run per tree per
# round, so each tree's anyio-trio/trio ratio is taken within one run.
#   sh bench/results/anyio/s23/ab.sh OUT_DIR ROUNDS [COMMIT] [IMPLS]  (from the worktree root)
# Each bench run takes the shared lock (/tmp/bench.lock) for itself.
set -e
out=${1:-bench/results/anyio/s23/ab}; rounds=${2:-3}; commit=${3:-01dd204}
impls=${4:-trio,anyio-trio}
base=$(mktemp -d /tmp/anyio-s23-base-XXXXXX)
# a directory of its own: two runs at once must not share one
git archive "$commit" | tar -x -C "$base"
mkdir -p "$out"
py=/work/venv/bin/python
for round in $(seq "$rounds"); do
  for tree in base new; do
    if [ "$tree" = base ]; then root=$base; else root=$PWD; fi
    uptime > "$out/$tree-$round.txt"
    (cd "$root" && flock /tmp/bench.lock env PYTHONPATH=$root $py -m bench --workloads iamat \
      --impls "$impls" --rounds 1 --duration 3 --iamat-clients 100 --no-plots \
      --out "$OLDPWD/$out/$tree-$round") >> "$out/$tree-$round.txt" 2>&1
  done
done
rm -rf "$base"
