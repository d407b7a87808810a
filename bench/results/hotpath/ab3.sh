set -e
out=bench/results/hotpath/ab3; mkdir -p $out
py=/work/venv/bin/python
for round in 1 2 3; do
  for tree in base noeager new; do
    case $tree in base) root=/tmp/hotpath-base;; noeager) root=/tmp/hotpath-noeager;; new) root=$PWD;; esac
    (cd "$root" && PYTHONPATH=$root $py -m bench.sched_trace --impl trio --seconds 3 --strace \
      --out "$OLDPWD/$out/trace-$tree-$round.json") > "$out/trace-$tree-$round.txt" 2>&1
  done
done
