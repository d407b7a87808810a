#!/bin/sh
# Base (82be1ac, before the accept pause) against head, interleaved, each run
# anyio-asyncio and asyncio in the same bench run, under the bench lock:
#   sh bench/results/anyio/s24/run_ab.sh iamat "base head head base"
#   sh bench/results/anyio/s24/run_ab.sh churn "head base base head"
# from the worktree root; base is extracted to /tmp/anyio-s24-base with
#   git archive 82be1ac | tar -x -C /tmp/anyio-s24-base
# Runs go to bench/results/anyio/s24/WORKLOAD-TREE-K/ (K numbers each tree's runs,
# counting the .log files too), with the load average before and after on stdout.
WORKLOAD=$1
ORDER=$2
OUT=$(pwd)/bench/results/anyio/s24
for which in $ORDER; do
  n=$(ls -d $OUT/$WORKLOAD-$which-* 2>/dev/null | wc -l); n=$((n+1))
  if [ $which = base ]; then TREE=/tmp/anyio-s24-base; else TREE=$(pwd); fi
  echo "$which-$n start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd $TREE && PYTHONPATH=$TREE flock /tmp/bench.lock /work/venv/bin/python -m bench \
    --workloads $WORKLOAD --impls anyio-asyncio,asyncio --rounds 3 --duration 3 --no-plots \
    --out $OUT/$WORKLOAD-$which-$n) > $OUT/$WORKLOAD-$which-$n.log 2>&1
  echo "$which-$n end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
done
